/**
 * Child-process entry of the loopback Event Hubs fake (see fakeEventHubs.ts). Prints `{"port":N}`
 * on stdout once listening; stops on SIGTERM/SIGINT. Hubs come from FAKE_EVENTHUBS_HUBS (JSON
 * `{hub: [partitionIds]}`).
 */
import { createFakeEventHubs } from './fakeEventHubs';

async function run(): Promise<void> {
  const hubs = process.env.FAKE_EVENTHUBS_HUBS ? (JSON.parse(process.env.FAKE_EVENTHUBS_HUBS) as Record<string, string[]>) : undefined;
  const fake = await createFakeEventHubs({ hubs });
  const stop = () => {
    void fake.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.stdout.write(`${JSON.stringify({ port: fake.port })}\n`);
}

run().catch((error: unknown) => {
  process.stderr.write(`fake Event Hubs failed to start: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
