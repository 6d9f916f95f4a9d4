/** The response stage: guarded Graph actions, the approval endpoint's handler, the Graph client and adapter, the permissions they need. */
export { createResponder, defaultPlanSource, readAlertField, type PlanSource, type ResponderOptions } from './responder';
export { handleApprovalRequest, type ApprovalRequest, type ApprovalResponse } from './approval';
export { GraphActionsAdapter, createGraphActions } from './graphActions';
export { GraphHttp, GraphRequestError, isGraphRequestError, type GraphClientOptions, type GraphRetryOptions } from './graphClient';
export { ACTION_PERMISSIONS, READ_PERMISSIONS, DEFAULT_GRANTED_ACTIONS, permissionsToGrant, type GraphPermission } from './permissions';
export { responseConfigFromFile } from './config';
export { effectiveMode, isResponseMode, DEFAULT_CAPS, type CapLimits } from './guards';
export type { ActionLogEntry, ActionRecord, PlannedAction, ResponseConfig, ResponderDeps, ResponsePlan } from './types';
