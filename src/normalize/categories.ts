/**
 * Which diagnostic categories agentwatch uses, and the record family (schema + normalizer) each
 * belongs to. Categories outside this table (ProvisioningLogs, ADFSSignInLogs,
 * AzureADGraphActivityLogs, Global Secure Access …) are skipped by category, never rejected.
 */

export type RecordFamily = 'signIn' | 'audit' | 'riskEvent' | 'riskyPrincipal' | 'graphActivity' | 'agentsInfo';

export const CATEGORY_FAMILIES: Readonly<Record<string, RecordFamily>> = {
  SignInLogs: 'signIn',
  NonInteractiveUserSignInLogs: 'signIn',
  ServicePrincipalSignInLogs: 'signIn',
  ManagedIdentitySignInLogs: 'signIn',
  MicrosoftServicePrincipalSignInLogs: 'signIn',
  AuditLogs: 'audit',
  UserRiskEvents: 'riskEvent',
  ServicePrincipalRiskEvents: 'riskEvent',
  AgentRiskEvents: 'riskEvent',
  RiskyUsers: 'riskyPrincipal',
  RiskyServicePrincipals: 'riskyPrincipal',
  RiskyAgents: 'riskyPrincipal',
  MicrosoftGraphActivityLogs: 'graphActivity',
  AgentsInfo: 'agentsInfo',
  AIAgentsInfo: 'agentsInfo',
};

/** Case-insensitive view: emitters are not consistent about casing (`SigninLogs` is the LA table name). */
const BY_LOWER = new Map<string, { family: RecordFamily; category: string }>(
  Object.entries(CATEGORY_FAMILIES).map(([category, family]) => [category.toLowerCase(), { family, category }]),
);
BY_LOWER.set('signinlogs', { family: 'signIn', category: 'SignInLogs' });

/** The family of a category, or `undefined` when agentwatch does not use it. */
export function familyOf(category: string): RecordFamily | undefined {
  const exact = CATEGORY_FAMILIES[category];
  if (exact) return exact;
  return BY_LOWER.get(category.toLowerCase())?.family;
}

export const USED_CATEGORIES: readonly string[] = Object.keys(CATEGORY_FAMILIES);

const CANONICAL_NAMES = new Map<string, string>(USED_CATEGORIES.map((name) => [name, name]));

/**
 * The same text as one shared string when it is a known category name exactly: every event of a
 * category then carries one string object, which the engine's per-category look-ups compare by
 * identity instead of hashing a fresh copy per record.
 */
export function sharedCategoryName(category: string): string {
  return CANONICAL_NAMES.get(category) ?? category;
}
