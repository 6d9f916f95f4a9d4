/**
 * HTTP: lists response actions waiting for approval and records a human's approve / reject
 * (docs/response.md). `authLevel: 'function'`: a function key is required; put App Service
 * Authentication in front to record who approved.
 */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { azureHost } from '../src/host/azure';
import { withInvocationLog } from '../src/host/logging';
import { handleApprovalRequest } from '../src/response';

export async function responseApproval(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  return withInvocationLog(context, async () => {
    const host = await azureHost();
    const response = await handleApprovalRequest(request, host.responderDeps);
    return { status: response.status, jsonBody: response.jsonBody };
  });
}

app.http('responseApproval', { methods: ['GET', 'POST'], authLevel: 'function', route: 'response/approvals', handler: responseApproval });
