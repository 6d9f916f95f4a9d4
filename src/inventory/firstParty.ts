/**
 * Microsoft first-party applications: never the subject of `agent-id-admin-permission-grant`, never
 * acted on by the response stage. A principal is first-party when its owner tenant is one of
 * Microsoft's tenants or its app id is on this list (users extend it with config `firstPartyAppIds`).
 */
import { COPILOT_STUDIO_BLUEPRINT_APP_ID, MICROSOFT_TENANT_IDS, POWER_VIRTUAL_AGENTS_SERVICE_APP_ID, TOKEN_EXCHANGE_RESOURCE_APP_ID } from '../normalize/types';

/** App ids of well-known Microsoft first-party applications (public, documented ids). */
export const FIRST_PARTY_APP_IDS: readonly string[] = [
  '00000003-0000-0000-c000-000000000000', // Microsoft Graph
  '00000002-0000-0000-c000-000000000000', // Azure AD Graph (legacy)
  '00000002-0000-0ff1-ce00-000000000000', // Office 365 Exchange Online
  '00000003-0000-0ff1-ce00-000000000000', // Office 365 SharePoint Online
  '797f4846-ba00-4fd7-ba43-dac1f8f63013', // Windows Azure Service Management API
  'c44b4083-3bb0-49c1-b47d-974e53cbdf3c', // Azure Portal
  '04b07795-8ddb-461a-bbee-02f9e1bf7b46', // Azure CLI
  '1950a258-227b-4e31-a9cf-717495945fc2', // Azure PowerShell
  '14d82eec-204b-4c2f-b7e8-296a70dab67e', // Microsoft Graph Command Line Tools
  '1b730954-1685-4b74-9bfd-dac224a7b894', // Azure AD PowerShell
  POWER_VIRTUAL_AGENTS_SERVICE_APP_ID, // Power Virtual Agents Service
  COPILOT_STUDIO_BLUEPRINT_APP_ID, // Microsoft Copilot Studio agent identity blueprint
  TOKEN_EXCHANGE_RESOURCE_APP_ID, // AAD Token Exchange Endpoint: Public
];

const MICROSOFT_TENANTS = new Set(MICROSOFT_TENANT_IDS);

export function isMicrosoftTenant(tenantId: string | undefined): boolean {
  return tenantId !== undefined && MICROSOFT_TENANTS.has(tenantId.toLowerCase());
}
