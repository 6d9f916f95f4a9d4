/** `agentwatch grant-permissions` against the local HTTPS Graph: exactly the missing app roles are POSTed, idempotently. */
import { beforeEach, describe, expect, it } from 'vitest';
import { command, grantPermissions, parseArgs } from '../../src/cli/commands/grantPermissions';
import { permissionsToGrant } from '../../src/response/permissions';
import { capturedIo } from '../support/capturedIo';
import { runCli } from '../support/replayCli';
import { GRAPH_ERRORS, fakeCredential, useFakeGraph, type FakeGraph } from '../support/fakeGraph';

const MI = '99999999-1111-2222-3333-444444444444';
const GRAPH_SP = '77777777-1111-2222-3333-444444444444';
const TOKEN = 'admin-fake-token';
const roleId = (value: string) => `${(value.length * 7919).toString(16).padStart(8, '0').slice(0, 8)}-${Buffer.from(value).toString('hex').slice(0, 4)}-4000-8000-${Buffer.from(value).toString('hex').padEnd(12, '0').slice(-12)}`;
const OFFERED = ['AgentIdentity.Read.All', 'Application.Read.All', 'User.Read.All', 'ThreatHunting.Read.All', 'IdentityRiskyAgent.ReadWrite.All', 'AgentIdentity.EnableDisable.All', 'AgentIdentityBlueprint.AddRemoveCreds.All', 'Application.ReadWrite.All', 'User.RevokeSessions.All'];

function capture() {
  const captured = capturedIo();
  return { io: captured.io, text: () => ({ stdout: captured.stdout(), stderr: captured.stderr() }) };
}

describe('agentwatch grant-permissions', () => {
  let graph: FakeGraph;
  const credential = fakeCredential(TOKEN);
  const fake = useFakeGraph();
  beforeEach(() => {
    graph = fake.graph;
    graph.addObject('servicePrincipals', { id: MI, '@odata.type': '#microsoft.graph.servicePrincipal', appId: '88888888-1111-2222-3333-444444444444', displayName: 'func-agentwatch' });
    graph.addObject('servicePrincipals', {
      id: GRAPH_SP,
      '@odata.type': '#microsoft.graph.servicePrincipal',
      appId: '00000003-0000-0000-c000-000000000000',
      displayName: 'Microsoft Graph',
      appRoles: [...OFFERED.map((value) => ({ id: roleId(value), value, allowedMemberTypes: ['Application'] })), { id: roleId('Delegated.Only'), value: 'Delegated.Only', allowedMemberTypes: ['User'] }],
    });
    graph.pages(`/v1.0/servicePrincipals/${MI}/appRoleAssignments`, [[{ appRoleId: roleId('Application.Read.All'), resourceId: GRAPH_SP }, { appRoleId: roleId('User.Read.All'), resourceId: '66666666-1111-2222-3333-444444444444' }]]);
    graph.on('POST', `/v1.0/servicePrincipals/${MI}/appRoleAssignments`, (request) => ({ status: 201, body: { id: 'assignment', ...(request.body as object) } }));
  });

  it('grants the reads and the default actions that are not granted yet, one POST each, with the operator token', async () => {
    const { io, text } = capture();
    const code = await grantPermissions({ principalId: MI, actions: ['confirmCompromised', 'disableAgentIdentity', 'removeBlueprintCredential'], dryRun: false }, io, { credential, baseUrl: graph.baseUrl });
    expect(code).toBe(0);
    const posts = graph.writes();
    expect(posts.map((r) => r.authorization)).toEqual(Array(posts.length).fill(`Bearer ${TOKEN}`));
    // Application.Read.All is already granted; User.Read.All is granted on another resource, which does not count.
    const expected = ['AgentIdentity.Read.All', 'User.Read.All', 'ThreatHunting.Read.All', 'IdentityRiskyAgent.ReadWrite.All', 'AgentIdentity.EnableDisable.All', 'AgentIdentityBlueprint.AddRemoveCreds.All'];
    expect(posts.map((r) => [r.method, r.path, r.body])).toEqual(expected.map((value) => ['POST', `/v1.0/servicePrincipals/${MI}/appRoleAssignments`, { principalId: MI, resourceId: GRAPH_SP, appRoleId: roleId(value) }]));
    expect(text().stdout).toContain('Application.Read.All');
    expect(text().stdout).toMatch(/= Application\.Read\.All\s+already granted/);
    expect(text().stdout).toMatch(/\+ AgentIdentity\.EnableDisable\.All\s+granted/);
    expect(text().stdout).not.toContain('Application.ReadWrite.All');
  });

  it('--dry-run changes nothing and says what it would grant', async () => {
    const { io, text } = capture();
    const code = await grantPermissions({ principalId: MI, actions: [], dryRun: true }, io, { credential, baseUrl: graph.baseUrl });
    expect(code).toBe(0);
    expect(graph.writes()).toEqual([]);
    expect(text().stdout).toMatch(/\+ ThreatHunting\.Read\.All\s+would grant/);
  });

  it('reports a permission Graph does not offer, and a refused grant, with exit 1', async () => {
    graph.object('servicePrincipals', GRAPH_SP)!.appRoles = (graph.object('servicePrincipals', GRAPH_SP)!.appRoles as { value: string }[]).filter((role) => role.value !== 'User.RevokeSessions.All');
    graph.on('POST', `/v1.0/servicePrincipals/${MI}/appRoleAssignments`, (request) =>
      (request.body as { appRoleId: string }).appRoleId === roleId('ThreatHunting.Read.All') ? GRAPH_ERRORS.forbidden() : { status: 201, body: {} },
    );
    const { io, text } = capture();
    const code = await grantPermissions({ principalId: MI, actions: ['revokeAgentUserSessions'], dryRun: false }, io, { credential, baseUrl: graph.baseUrl });
    expect(code).toBe(1);
    expect(text().stdout).toMatch(/! User\.RevokeSessions\.All\s+not offered/);
    expect(text().stdout).toMatch(/x ThreatHunting\.Read\.All\s+failed: you may not grant app roles/);
    expect(text().stderr).toContain('2 permission(s) not granted');
  });

  it('an unknown principal id is a usage error naming where to find the right id', async () => {
    const { io, text } = capture();
    const code = await grantPermissions({ principalId: '12121212-1111-2222-3333-444444444444', actions: [], dryRun: false }, io, { credential, baseUrl: graph.baseUrl });
    expect(code).toBe(2);
    expect(text().stderr).toMatch(/no service principal with object id 12121212-.*az functionapp identity show/);
    expect(graph.writes()).toEqual([]);
  });

  it('parses its arguments strictly; a bad principal id is a usage error (exit 2) of the registered command', async () => {
    expect(parseArgs(['--principal-id', MI.toUpperCase(), '--actions=all', '--dry-run'])).toEqual({ principalId: MI, actions: ['confirmCompromised', 'disableAgentIdentity', 'disableBlueprintPrincipal', 'removeBlueprintCredential', 'revokeAgentUserSessions'], dryRun: true });
    expect(parseArgs(['--principal-id', MI, '--actions', 'none'])).toMatchObject({ actions: [] });
    expect(parseArgs([])).toBe('--principal-id is required');
    expect(parseArgs(['--principal-id', 'my-function'])).toMatch(/must be an object id/);
    expect(parseArgs(['--principal-id', MI, '--actions', 'nuke'])).toMatch(/unknown action\(s\) nuke/);
    // Through the compiled CLI's command table, as `npx agentwatch grant-permissions` runs it.
    const run = await runCli(['grant-permissions', '--principal-id', 'nope']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--principal-id must be an object id');
    expect(run.stderr).toContain(command.usage.split('\n')[0]!);
    expect(permissionsToGrant(['disableAgentIdentity'])).toEqual(['AgentIdentity.Read.All', 'Application.Read.All', 'User.Read.All', 'ThreatHunting.Read.All', 'AgentIdentity.EnableDisable.All']);
  });
});
