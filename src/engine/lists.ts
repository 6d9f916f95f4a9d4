/**
 * Global lists rules reference as `$lists.name`. These are the shipped defaults; a config file's
 * `lists:` entry of the same name replaces one (docs/rule-language.md §2).
 */
import { COPILOT_STUDIO_BLUEPRINT_APP_ID, MICROSOFT_TENANT_IDS, POWER_VIRTUAL_AGENTS_SERVICE_APP_ID } from '../normalize/types';

export const DEFAULT_LISTS: Readonly<Record<string, readonly (string | number)[]>> = {
  firstPartyAppIds: ['00000003-0000-0000-c000-000000000000', POWER_VIRTUAL_AGENTS_SERVICE_APP_ID, COPILOT_STUDIO_BLUEPRINT_APP_ID],
  microsoftTenantIds: [...MICROSOFT_TENANT_IDS],
  privilegedGroups: [],
  protectedPrincipals: [],
};

export function effectiveLists(overrides: Readonly<Record<string, readonly (string | number)[]>> | undefined): Record<string, readonly (string | number)[]> {
  return { ...DEFAULT_LISTS, ...(overrides ?? {}) };
}
