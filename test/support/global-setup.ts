/**
 * Runs once before any test worker starts. Generates a throw-away TLS certificate for the local
 * HTTPS fakes (Logs Ingestion, Graph) and makes every worker trust it: NODE_EXTRA_CA_CERTS is read
 * at process start, and the workers are forked after this runs, so they inherit it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate } from 'selfsigned';

export default async function setup(): Promise<() => void> {
  const dir = mkdtempSync(join(tmpdir(), 'agentwatch-tls-'));
  const pems = await generate([{ name: 'commonName', value: '127.0.0.1' }], {
    days: 2,
    keySize: 2048,
    extensions: [
      { name: 'basicConstraints', cA: true },
      { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }, { type: 2, value: 'localhost' }] },
    ],
  } as Parameters<typeof generate>[1]);
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  writeFileSync(certFile, pems.cert);
  writeFileSync(keyFile, pems.private);
  process.env.NODE_EXTRA_CA_CERTS = certFile;
  process.env.AGENTWATCH_TEST_TLS_CERT = certFile;
  process.env.AGENTWATCH_TEST_TLS_KEY = keyFile;
  return () => rmSync(dir, { recursive: true, force: true });
}
