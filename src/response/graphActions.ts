/**
 * The `GraphActions` adapter: the documented Graph calls behind each response action (reference
 * §4.1, §4.3). It holds no policy — the responder's guards decide whether a call happens at all —
 * but it refuses to put anything but a GUID into a URL, whoever calls it.
 */
import { AgentwatchError } from '../errors';
import type { DirectoryObjectInfo, GraphActions } from '../ports';
import { GraphHttp, GraphRequestError, type GraphClientOptions } from './graphClient';
import { ACTION_PERMISSIONS, readPermissionFor } from './permissions';
import { isGuid } from './guards';

const COLLECTION: Record<'servicePrincipal' | 'application' | 'user', string> = {
  servicePrincipal: 'servicePrincipals',
  application: 'applications',
  user: 'users',
};

interface GraphDirectoryObject {
  id?: string;
  '@odata.type'?: string;
  appId?: string;
  displayName?: string;
  accountEnabled?: boolean;
  appOwnerOrganizationId?: string;
  agentIdentityBlueprintId?: string;
  identityParentId?: string;
  passwordCredentials?: { keyId?: string }[] | null;
  keyCredentials?: KeyCredential[] | null;
}

interface KeyCredential {
  keyId?: string;
  [property: string]: unknown;
}

export class GraphActionsAdapter implements GraphActions {
  constructor(private readonly http: GraphHttp) {}

  async getObject(kind: 'servicePrincipal' | 'application' | 'user', id: string, options: { by?: 'id' | 'appId' } = {}): Promise<DirectoryObjectInfo | undefined> {
    const guid = requireGuid(id, `${kind} id`);
    const byAppId = options.by === 'appId' && kind !== 'user';
    const path = byAppId ? `/v1.0/${COLLECTION[kind]}(appId='${guid}')` : `/v1.0/${COLLECTION[kind]}/${guid}`;
    try {
      const found = await this.http.request<GraphDirectoryObject>('GET', path, { operation: `verify ${kind} ${guid}`, permission: readPermissionFor(kind) });
      return found ? toInfo(found, guid) : undefined;
    } catch (error) {
      if (error instanceof GraphRequestError && error.code === 'GRAPH_NOT_FOUND') return undefined;
      throw error;
    }
  }

  async confirmCompromised(agentIds: string[]): Promise<void> {
    const ids = agentIds.map((id) => requireGuid(id, 'agent id'));
    await this.http.request('POST', '/beta/identityProtection/riskyAgents/confirmCompromised', purpose('confirmCompromised'), { agentIds: ids });
  }

  async disableAgentIdentity(agentIdentityId: string): Promise<void> {
    const id = requireGuid(agentIdentityId, 'agent identity id');
    await this.http.request('PATCH', `/v1.0/servicePrincipals/${id}/microsoft.graph.agentIdentity`, purpose('disableAgentIdentity'), { accountEnabled: false });
  }

  async disableBlueprintPrincipal(blueprintPrincipalId: string): Promise<void> {
    const id = requireGuid(blueprintPrincipalId, 'blueprint principal id');
    await this.http.request('PATCH', `/v1.0/servicePrincipals/${id}`, purpose('disableBlueprintPrincipal'), { accountEnabled: false });
  }

  async removeBlueprintCredential(blueprintObjectId: string, keyId: string, kind: 'password' | 'key' | 'federated'): Promise<void> {
    const id = requireGuid(blueprintObjectId, 'blueprint object id');
    const key = requireGuid(keyId, 'credential key id');
    const why = purpose('removeBlueprintCredential');
    if (kind === 'password') {
      await this.http.request('POST', `/v1.0/applications/${id}/removePassword`, why, { keyId: key });
      return;
    }
    if (kind === 'federated') {
      await this.http.request('DELETE', `/v1.0/applications/${id}/federatedIdentityCredentials/${key}`, why);
      return;
    }
    // removeKey needs a proof JWT signed by an existing key, which a responder does not hold;
    // Graph documents PATCH keyCredentials (the full remaining list) for exactly this case.
    const current = await this.http.request<GraphDirectoryObject>('GET', `/v1.0/applications/${id}?$select=id,keyCredentials`, why);
    const credentials = current?.keyCredentials ?? [];
    const remaining = credentials.filter((credential) => credential.keyId?.toLowerCase() !== key);
    if (remaining.length === credentials.length) {
      throw new GraphRequestError('GRAPH_NOT_FOUND', `removeBlueprintCredential: certificate ${key} is not on application ${id} — already gone`, {
        statusCode: 404,
        operation: why.operation,
        path: `/v1.0/applications/${id}`,
      });
    }
    await this.http.request('PATCH', `/v1.0/applications/${id}`, why, { keyCredentials: remaining });
  }

  async revokeAgentUserSessions(agentUserId: string): Promise<void> {
    const id = requireGuid(agentUserId, 'agent user id');
    await this.http.request('POST', `/v1.0/users/${id}/revokeSignInSessions`, purpose('revokeAgentUserSessions'));
  }
}

/** Builds the adapter on a Graph client (managed identity credential in Azure, a fake one in tests). */
export function createGraphActions(options: GraphClientOptions): GraphActionsAdapter {
  return new GraphActionsAdapter(new GraphHttp(options));
}

function purpose(action: keyof typeof ACTION_PERMISSIONS) {
  return { operation: action, permission: ACTION_PERMISSIONS[action] };
}

function requireGuid(value: string, what: string): string {
  if (!isGuid(value)) throw new AgentwatchError('RESPONSE_REFUSED', `refusing to build a Graph URL: ${what} ${JSON.stringify(value)} is not a GUID`);
  return value.toLowerCase();
}

function toInfo(found: GraphDirectoryObject, requestedId: string): DirectoryObjectInfo {
  const info: DirectoryObjectInfo = { id: (found.id ?? requestedId).toLowerCase() };
  if (found['@odata.type']) info.odataType = found['@odata.type'];
  if (found.appId) info.appId = found.appId.toLowerCase();
  if (found.displayName) info.displayName = found.displayName;
  if (typeof found.accountEnabled === 'boolean') info.accountEnabled = found.accountEnabled;
  if (found.appOwnerOrganizationId) info.appOwnerOrganizationId = found.appOwnerOrganizationId.toLowerCase();
  if (found.agentIdentityBlueprintId) info.agentIdentityBlueprintId = found.agentIdentityBlueprintId.toLowerCase();
  if (found.identityParentId) info.identityParentId = found.identityParentId.toLowerCase();
  if (Array.isArray(found.passwordCredentials)) info.passwordKeyIds = keyIds(found.passwordCredentials);
  if (Array.isArray(found.keyCredentials)) info.certificateKeyIds = keyIds(found.keyCredentials);
  return info;
}

function keyIds(credentials: { keyId?: string }[]): string[] {
  return credentials.flatMap((credential) => (typeof credential.keyId === 'string' ? [credential.keyId.toLowerCase()] : []));
}
