/**
 * The approval endpoint's logic, host-agnostic: the Function (`functions/responseApproval.ts`,
 * `authLevel: 'function'`) passes its HttpRequest and returns what this returns.
 *
 *   GET                      → 200 { pending: [...] }       pending approvals, oldest first
 *   GET  ?actionId=act-…     → 200 { action: {...} }        one action record with its history
 *   POST { actionId, decision: "approve" | "reject", approver?, reason? }
 *                            → 200 { action: AlertAction }  the decision and, on approve, the outcome
 *
 * Who approved: with App Service Authentication (Easy Auth) in front, the platform sets
 * `x-ms-client-principal-name` and strips any client-sent copy, so that header is the approver and
 * the body's `approver` is ignored. With only a function key, the body's `approver` is required and
 * recorded as claimed by the key holder. Approve re-runs every guard against Graph before the write
 * (the object may have changed since it was queued); the cap does not apply to a human decision.
 */
import { isStateConflictError } from '../errors';
import { createResponseContext, executeVerified, finish, toAlertAction, verifyTarget } from './responder';
import type { ActionRecord, ResponderDeps } from './types';

export interface ApprovalRequest {
  method: string;
  headers: { get(name: string): string | null };
  query?: { get(name: string): string | null };
  json(): Promise<unknown>;
}

/** Shaped like `HttpResponseInit` of @azure/functions. */
export interface ApprovalResponse {
  status: number;
  jsonBody: unknown;
}

const ACTION_ID = /^act-[0-9a-f]{32}$/;
const EASY_AUTH_PRINCIPAL_HEADER = 'x-ms-client-principal-name';

export async function handleApprovalRequest(request: ApprovalRequest, deps: ResponderDeps): Promise<ApprovalResponse> {
  const context = createResponseContext(deps);
  const method = request.method.toUpperCase();
  if (method === 'GET') {
    const actionId = request.query?.get('actionId');
    if (actionId) {
      if (!ACTION_ID.test(actionId)) return problem(400, 'actionId must look like act-<32 hex>');
      const found = await context.store.read(actionId);
      return found ? { status: 200, jsonBody: { action: found.value } } : problem(404, `no action ${actionId}`);
    }
    const pending = await context.store.listPending();
    return { status: 200, jsonBody: { pending: pending.map(summary) } };
  }
  if (method !== 'POST') return problem(405, `method ${method} not allowed: use GET to list, POST to decide`);

  let body: unknown;
  try {
    body = await request.json();
  } catch {
    return problem(400, 'body must be JSON: { "actionId", "decision": "approve" | "reject", "approver", "reason" }');
  }
  const input = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const actionId = input.actionId;
  const decision = input.decision;
  const reason = typeof input.reason === 'string' ? input.reason.slice(0, 1000) : undefined;
  if (typeof actionId !== 'string' || !ACTION_ID.test(actionId)) return problem(400, 'actionId must look like act-<32 hex>');
  if (decision !== 'approve' && decision !== 'reject') return problem(400, 'decision must be "approve" or "reject"');
  const easyAuthPrincipal = request.headers.get(EASY_AUTH_PRINCIPAL_HEADER)?.trim();
  const claimedApprover = typeof input.approver === 'string' ? input.approver.trim().slice(0, 256) : '';
  const approver = easyAuthPrincipal || claimedApprover;
  if (!approver) return problem(400, 'approver is required (or put App Service Authentication in front so x-ms-client-principal-name names the caller)');
  const by = easyAuthPrincipal ? `${approver} (Entra authenticated)` : `${approver} (claimed; function key)`;

  const found = await context.store.read(actionId);
  if (!found) return problem(404, `no action ${actionId}`);
  if (found.value.outcome !== 'pendingApproval') return problem(409, `action ${actionId} is not waiting for approval: it is ${found.value.outcome} since ${found.value.decidedAt}`);

  const record: ActionRecord = { ...found.value, approval: { decision, approver: by, ...(reason ? { reason } : {}), decidedAt: new Date(context.now()).toISOString() } };
  // Take the decision first, by compare-and-swap: of two approvers racing, only one proceeds to the write.
  let etag: string;
  try {
    const decided = await finish(context, record, decision === 'approve' ? 'approved' : 'rejected', `${decision === 'approve' ? 'approved' : 'rejected'} by ${by}${reason ? `: ${reason}` : ''}`, { etag: found.etag, previousOutcome: 'pendingApproval' }, undefined, by);
    if (decision === 'reject') return { status: 200, jsonBody: { action: decided } };
    const reread = await context.store.read(actionId);
    etag = reread?.etag ?? '*';
  } catch (error) {
    if (isStateConflictError(error)) return problem(409, `action ${actionId} was decided by someone else a moment ago; reload`);
    throw error;
  }

  const verified = await verifyTarget(context, record);
  const result = verified.ok ? await executeVerified(context, record, verified) : verified;
  const action = await finish(context, record, result.outcome, result.reason, { etag, previousOutcome: 'approved' }, result.errorCode, by);
  return { status: 200, jsonBody: { action } };
}

function summary(record: ActionRecord) {
  return {
    ...toAlertAction(record),
    detectionId: record.detectionId,
    alertId: record.alertId,
    dedupKey: record.dedupKey,
    ...(record.blueprintAppId ? { blueprintAppId: record.blueprintAppId } : {}),
    ...(record.keyId ? { keyId: record.keyId } : {}),
  };
}

function problem(status: number, message: string): ApprovalResponse {
  return { status, jsonBody: { error: message } };
}
