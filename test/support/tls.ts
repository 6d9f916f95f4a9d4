/** The certificate made by global-setup.ts, for the local HTTPS fakes. Workers already trust it. */
import { readFileSync } from 'node:fs';

export function testTlsOptions(): { cert: Buffer; key: Buffer } {
  const certFile = process.env.AGENTWATCH_TEST_TLS_CERT;
  const keyFile = process.env.AGENTWATCH_TEST_TLS_KEY;
  if (!certFile || !keyFile) throw new Error('test TLS certificate missing: vitest globalSetup (test/support/global-setup.ts) did not run');
  return { cert: readFileSync(certFile), key: readFileSync(keyFile) };
}
