/**
 * `agentwatch grant-permissions --principal-id <object id> [--actions LIST] [--dry-run]`
 *
 * Grants the Function's managed identity the Microsoft Graph application permissions agentwatch
 * uses (docs/response.md): every read, plus the permission of each response action asked for
 * (default: the actions the shipped detections propose). Managed identities get application
 * permissions only as app-role assignments on the Microsoft Graph service principal, so this finds
 * that principal, resolves each permission to its app role id, and POSTs an assignment for each one
 * not granted yet. Idempotent. Runs as the operator (`DefaultAzureCredential`, e.g. `az login` as a
 * Privileged Role Administrator).
 */
import { DefaultAzureCredential, type TokenCredential } from '@azure/identity';
import type { ResponseActionName } from '../../alerts/types';
import { GraphHttp, isGraphRequestError } from '../../response/graphClient';
import { isGuid } from '../../response/guards';
import { ACTION_PERMISSIONS, DEFAULT_GRANTED_ACTIONS, permissionsToGrant } from '../../response/permissions';
import { usageError, type CliCommand, type CliIO, type ExitCode } from '../io';

const MICROSOFT_GRAPH_APP_ID = '00000003-0000-0000-c000-000000000000';
const ACTION_NAMES = Object.keys(ACTION_PERMISSIONS) as ResponseActionName[];

const USAGE = `usage: agentwatch grant-permissions --principal-id <object id> [--actions LIST] [--dry-run]

  --principal-id ID   object id of the Function App's managed identity (its service principal)
  --actions LIST      response actions to allow: comma-separated names, "all" or "none"
                      (default: ${DEFAULT_GRANTED_ACTIONS.join(',')}); reads are always granted
                      names: ${ACTION_NAMES.join(', ')}
  --dry-run           show what would be granted, change nothing

Graph base URL: AGENTWATCH_GRAPH_BASE_URL (default https://graph.microsoft.com). Signs in with
DefaultAzureCredential (az login, environment, …) as an admin allowed to grant app roles.
`;

export interface GrantOptions {
  principalId: string;
  actions: ResponseActionName[];
  dryRun: boolean;
}

export interface GrantDeps {
  credential: TokenCredential;
  baseUrl?: string;
}

interface AppRole {
  id: string;
  value?: string;
  allowedMemberTypes?: string[];
}

export const command: CliCommand = {
  summary: "grant the Function's managed identity the Graph permissions agentwatch needs",
  usage: USAGE,
  async run(args: string[], io: CliIO): Promise<ExitCode> {
    const parsed = parseArgs(args);
    if (typeof parsed === 'string') return usageError(io, 'grant-permissions', parsed, USAGE);
    return grantPermissions(parsed, io, { credential: new DefaultAzureCredential(), baseUrl: io.env.AGENTWATCH_GRAPH_BASE_URL });
  },
};

export function parseArgs(args: string[]): GrantOptions | string {
  let principalId: string | undefined;
  let actions: ResponseActionName[] = [...DEFAULT_GRANTED_ACTIONS];
  let dryRun = false;
  for (let index = 0; index < args.length; index++) {
    const arg = args[index]!;
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = () => inline ?? args[++index];
    if (flag === '--principal-id') principalId = value();
    else if (flag === '--dry-run') dryRun = true;
    else if (flag === '--actions') {
      const list = value();
      if (list === undefined) return '--actions needs a value';
      if (list === 'all') actions = [...ACTION_NAMES];
      else if (list === 'none') actions = [];
      else {
        const names = list.split(',').map((name) => name.trim()).filter(Boolean);
        const unknown = names.filter((name) => !(ACTION_NAMES as string[]).includes(name));
        if (unknown.length) return `unknown action(s) ${unknown.join(', ')}; expected ${ACTION_NAMES.join(', ')}, all or none`;
        actions = names as ResponseActionName[];
      }
    } else return `unknown argument ${JSON.stringify(arg)}`;
  }
  if (!principalId) return '--principal-id is required';
  if (!isGuid(principalId)) return `--principal-id must be an object id (GUID), got ${JSON.stringify(principalId)}`;
  return { principalId: principalId.toLowerCase(), actions, dryRun };
}

export async function grantPermissions(options: GrantOptions, io: Pick<CliIO, 'stdout' | 'stderr'>, deps: GrantDeps): Promise<ExitCode> {
  const graph = new GraphHttp({ credential: deps.credential, baseUrl: deps.baseUrl });
  const say = (line: string) => io.stdout.write(`${line}\n`);
  try {
    const principal = await graph.request<{ id: string; displayName?: string }>('GET', `/v1.0/servicePrincipals/${options.principalId}?$select=id,displayName,appId`, { operation: 'find the managed identity' });
    const graphPrincipal = await graph.request<{ id: string; appRoles?: AppRole[] }>('GET', `/v1.0/servicePrincipals(appId='${MICROSOFT_GRAPH_APP_ID}')?$select=id,appId,appRoles`, { operation: 'find the Microsoft Graph service principal' });
    if (!principal || !graphPrincipal) throw new Error('Graph returned an empty body');
    const roleIds = new Map<string, string>();
    for (const role of graphPrincipal.appRoles ?? []) {
      if (role.value && (role.allowedMemberTypes ?? ['Application']).includes('Application')) roleIds.set(role.value, role.id);
    }
    const granted = new Set<string>();
    for await (const page of graph.pages<{ appRoleId?: string; resourceId?: string }>(`/v1.0/servicePrincipals/${options.principalId}/appRoleAssignments`, { operation: 'list existing app role assignments' })) {
      for (const assignment of page) if (assignment.resourceId === graphPrincipal.id && assignment.appRoleId) granted.add(assignment.appRoleId);
    }

    say(`${options.dryRun ? 'Would grant' : 'Granting'} Microsoft Graph application permissions to ${principal.displayName ?? 'service principal'} (${principal.id}):`);
    let problems = 0;
    for (const permission of permissionsToGrant(options.actions)) {
      const appRoleId = roleIds.get(permission);
      if (!appRoleId) {
        problems++;
        say(`  ! ${permission.padEnd(42)} not offered by Microsoft Graph in this tenant or cloud; not granted`);
        continue;
      }
      if (granted.has(appRoleId)) {
        say(`  = ${permission.padEnd(42)} already granted`);
        continue;
      }
      if (options.dryRun) {
        say(`  + ${permission.padEnd(42)} would grant (app role ${appRoleId})`);
        continue;
      }
      try {
        await graph.request('POST', `/v1.0/servicePrincipals/${options.principalId}/appRoleAssignments`, { operation: `grant ${permission}` }, { principalId: options.principalId, resourceId: graphPrincipal.id, appRoleId });
        say(`  + ${permission.padEnd(42)} granted`);
      } catch (error) {
        if (!isGraphRequestError(error)) throw error;
        problems++;
        say(`  x ${permission.padEnd(42)} failed: ${error.statusCode === 403 ? 'you may not grant app roles (needs Privileged Role Administrator, or AppRoleAssignment.ReadWrite.All + Application.Read.All)' : error.message}`);
      }
    }
    if (problems > 0) io.stderr.write(`agentwatch grant-permissions: ${problems} permission(s) not granted; see above\n`);
    return problems > 0 ? 1 : 0;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (isGraphRequestError(error) && error.code === 'GRAPH_NOT_FOUND' && error.operation === 'find the managed identity') {
      io.stderr.write(`agentwatch grant-permissions: no service principal with object id ${options.principalId}. Pass the managed identity's principal (object) id, e.g. from \`az functionapp identity show\`.\n`);
      return 2;
    }
    io.stderr.write(`agentwatch grant-permissions: ${message}\n`);
    return 1;
  }
}
