import { createServer } from 'node:https';
import { describe, expect, it } from 'vitest';
import { TableClient } from '@azure/data-tables';
import { startAzuriteTables } from '../support/azurite';
import { testTlsOptions } from '../support/tls';

describe('test harness', () => {
  it('starts Azurite on a free port, serves a table, and stops it by PID', async () => {
    const azurite = await startAzuriteTables();
    try {
      const table = TableClient.fromConnectionString(azurite.connectionString, 'harness', { allowInsecureConnection: true });
      await table.createTable();
      await table.upsertEntity({ partitionKey: 'p', rowKey: 'r', value: 42 });
      const entity = await table.getEntity<{ value: number }>('p', 'r');
      expect(entity.value).toBe(42);
    } finally {
      await azurite.stop();
    }
    expect(() => process.kill(azurite.pid, 0)).toThrow();
  });

  it('makes workers trust the generated certificate for HTTPS fakes', async () => {
    const server = createServer(testTlsOptions(), (_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const res = await fetch(`https://127.0.0.1:${port}/`);
      expect(await res.text()).toBe('ok');
    } finally {
      server.close();
    }
  });
});
