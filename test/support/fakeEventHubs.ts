/**
 * A loopback stand-in for the Azure Event Hubs **service**, so the real `@azure/event-hubs` producer
 * and consumer (and our code behind them) can run in tests without Docker or a namespace. It is a
 * test double of the service, not of agentwatch: nothing in `src/` knows it exists.
 *
 * The client reaches it with `UseDevelopmentEmulator=true` in the connection string (plain TCP, no
 * TLS). It answers what the SDK 6.x asks for, and nothing more:
 * - SASL ANONYMOUS, then CBS `put-token` on `$cbs` (any token is accepted: no auth here);
 * - `$management` READ of `com.microsoft:eventhub` (hub properties, partition ids) and
 *   `com.microsoft:partition` (begin/last sequence number, last offset, last enqueued time);
 * - producer links to `<hub>` or `<hub>/Partitions/<id>`, single messages and batches
 *   (message format 0x80013700 whose `amqp:data` sections each hold one encoded message);
 * - consumer links from `<hub>/ConsumerGroups/<cg>/Partitions/<id>` honouring the selector filter
 *   (`amqp.annotation.x-opt-offset|x-opt-sequence-number|x-opt-enqueued-time >|>= '…'`, `@latest`)
 *   and link credit; events carry `x-opt-sequence-number`, `x-opt-offset`, `x-opt-enqueued-time`.
 *
 * Not emulated (tests must not rely on them): partition-key hashing (a hash picks the partition, but
 * not the service's), owner-level exclusivity, retention, quotas, auth, Kafka.
 *
 * `startFakeEventHubsProcess` runs the server in a child process (fakeEventHubsServer.ts) so a test
 * stops it by PID, like Azurite. `createFakeEventHubs` is the in-process server the child runs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import type { AddressInfo, Server } from 'node:net';
import { join } from 'node:path';
import rhea from 'rhea';

/** The development-emulator key the Microsoft emulator documents; the fake accepts any token. */
const EMULATOR_KEY_NAME = 'RootManageSharedAccessKey';
const EMULATOR_KEY = 'SAS_KEY_VALUE';
/** Annotation keys and the batch format, as the SDK uses them. */
const SEQUENCE_ANNOTATION = 'x-opt-sequence-number';
const OFFSET_ANNOTATION = 'x-opt-offset';
const ENQUEUED_ANNOTATION = 'x-opt-enqueued-time';
const PARTITION_KEY_ANNOTATION = 'x-opt-partition-key';
const BATCH_MESSAGE_FORMAT = 0x80013700;
const AMQP_DATA_SECTION = 0x75;
const AMQP_MESSAGE_ANNOTATIONS = 0x72;
/** Standard tier's maximum event size; the SDK sizes batches from what the link advertises. */
const MAX_MESSAGE_SIZE = 1024 * 1024;

export interface FakeEventHubsOptions {
  /** Hub names and their partition ids. Default: one hub `entra-logs` with partitions 0 and 1. */
  hubs?: Record<string, string[]>;
  /** Loopback only. */
  host?: '127.0.0.1';
  /** 0 = a free port. */
  port?: number;
}

interface StoredEvent {
  sequenceNumber: number;
  /** Byte position in the partition, as a string: offsets are opaque to clients. */
  offset: string;
  enqueuedTime: Date;
  message: rhea.Message;
}

interface PartitionLog {
  events: StoredEvent[];
  /** Running byte position used to mint offsets. */
  nextOffset: number;
}

interface ConsumerLink {
  sender: rhea.Sender;
  log: PartitionLog;
  nextIndex: number;
}

export interface FakeEventHubs {
  port: number;
  /** Connection string for a hub (with `EntityPath`), or for the namespace when `hub` is omitted. */
  connectionString(hub?: string): string;
  /** Events stored per `hub/partition`, for assertions. */
  eventCount(hub: string): number;
  close(): Promise<void>;
}

export function fakeConnectionString(port: number, hub?: string): string {
  const entity = hub ? `EntityPath=${hub};` : '';
  return `Endpoint=sb://127.0.0.1:${port};SharedAccessKeyName=${EMULATOR_KEY_NAME};SharedAccessKey=${EMULATOR_KEY};UseDevelopmentEmulator=true;${entity}`;
}

export async function createFakeEventHubs(options: FakeEventHubsOptions = {}): Promise<FakeEventHubs> {
  const hubs = options.hubs ?? { 'entra-logs': ['0', '1'] };
  const logs = new Map<string, PartitionLog>();
  for (const [hub, partitionIds] of Object.entries(hubs)) {
    for (const partitionId of partitionIds) logs.set(logKey(hub, partitionId), { events: [], nextOffset: 0 });
  }
  const hubNamesLower = new Map(Object.keys(hubs).map((name) => [name.toLowerCase(), name]));
  const consumers = new Set<ConsumerLink>();
  /** Per connection: the client's reply links ($cbs, $management) by link name and target address. */
  const replySenders = new WeakMap<rhea.Connection, Map<string, rhea.Sender>>();
  const roundRobin = new Map<string, number>();
  const container = rhea.create_container({ id: 'fake-eventhubs' });

  function resolveHub(name: string | undefined): string | undefined {
    return name === undefined ? undefined : hubNamesLower.get(name.toLowerCase());
  }

  function append(hub: string, partitionId: string, message: rhea.Message): void {
    const log = logs.get(logKey(hub, partitionId))!;
    const size = Buffer.byteLength(JSON.stringify(message.body ?? null));
    const stored: StoredEvent = {
      sequenceNumber: log.events.length,
      offset: String(log.nextOffset),
      enqueuedTime: new Date(),
      message,
    };
    log.nextOffset += size + 64;
    log.events.push(stored);
    for (const consumer of consumers) if (consumer.log === log) pump(consumer);
  }

  function pump(consumer: ConsumerLink): void {
    while (consumer.nextIndex < consumer.log.events.length && consumer.sender.sendable()) {
      const stored = consumer.log.events[consumer.nextIndex++];
      consumer.sender.send({
        ...stored.message,
        message_annotations: {
          ...(stored.message.message_annotations ?? {}),
          [SEQUENCE_ANNOTATION]: rhea.types.wrap_long(stored.sequenceNumber),
          [OFFSET_ANNOTATION]: stored.offset,
          [ENQUEUED_ANNOTATION]: stored.enqueuedTime,
        },
      });
    }
  }

  function choosePartition(hub: string, partitionKey: unknown): string {
    const partitionIds = hubs[hub];
    if (typeof partitionKey === 'string') {
      // Stable for a key, like the service; not the service's hash.
      return partitionIds[createHash('sha1').update(partitionKey).digest().readUInt32BE(0) % partitionIds.length];
    }
    const next = roundRobin.get(hub) ?? 0;
    roundRobin.set(hub, next + 1);
    return partitionIds[next % partitionIds.length];
  }

  /** Replies go back on the client's receiver link named by the request's `reply_to`, on the same connection. */
  function reply(connection: rhea.Connection, request: rhea.Message, status: number, description: string, body?: unknown): void {
    const replySender = replySenders.get(connection)?.get(String(request.reply_to ?? ''));
    if (!replySender) return;
    replySender.send({
      correlation_id: request.message_id,
      application_properties: { 'status-code': status, 'status-description': description },
      body,
    });
  }

  function handleManagement(connection: rhea.Connection, request: rhea.Message): void {
    const properties = (request.application_properties ?? {}) as Record<string, unknown>;
    const hub = resolveHub(properties.name as string | undefined);
    if (properties.operation !== 'READ') return reply(connection, request, 400, `unsupported operation ${String(properties.operation)}`);
    if (!hub) return reply(connection, request, 404, `The messaging entity '${String(properties.name)}' could not be found.`);
    if (properties.type === 'com.microsoft:eventhub') {
      return reply(connection, request, 200, 'OK', {
        name: hub,
        type: properties.type,
        created_at: new Date(0),
        partition_count: hubs[hub].length,
        partition_ids: hubs[hub],
      });
    }
    if (properties.type === 'com.microsoft:partition') {
      const partitionId = String(properties.partition);
      const log = logs.get(logKey(hub, partitionId));
      if (!log) return reply(connection, request, 404, `partition ${partitionId} does not exist on ${hub}`);
      const last = log.events.at(-1);
      return reply(connection, request, 200, 'OK', {
        name: hub,
        type: properties.type,
        partition: partitionId,
        begin_sequence_number: rhea.types.wrap_long(0),
        last_enqueued_sequence_number: rhea.types.wrap_long(last ? last.sequenceNumber : -1),
        last_enqueued_offset: last ? last.offset : '-1',
        last_enqueued_time_utc: last ? last.enqueuedTime : new Date(0),
        is_partition_empty: !last,
      });
    }
    return reply(connection, request, 400, `unsupported type ${String(properties.type)}`);
  }

  container.on('sender_open', (context: rhea.EventContext) => {
    const sender = context.sender!;
    const source = (sender.remote as { attach?: { source?: { address?: string; filter?: Record<string, unknown> } } }).attach?.source;
    const address = source?.address ?? '';
    if (address === '$cbs' || address === '$management') {
      const byName = replySenders.get(sender.connection) ?? new Map<string, rhea.Sender>();
      replySenders.set(sender.connection, byName);
      byName.set(sender.name, sender);
      const targetAddress = (sender.remote as { attach?: { target?: { address?: string } } }).attach?.target?.address;
      if (targetAddress) byName.set(targetAddress, sender);
      return;
    }
    const match = /^([^/]+)\/ConsumerGroups\/[^/]+\/Partitions\/([^/]+)$/i.exec(address);
    const hub = resolveHub(match?.[1]);
    const log = hub ? logs.get(logKey(hub, match![2])) : undefined;
    if (!log) {
      sender.close({ condition: 'amqp:not-found', description: `The messaging entity '${address}' could not be found.` });
      return;
    }
    const consumer: ConsumerLink = { sender, log, nextIndex: startIndex(log, selectorFilter(source?.filter)) };
    consumers.add(consumer);
    sender.on('sendable', () => pump(consumer));
    pump(consumer);
  });

  container.on('receiver_open', (context: rhea.EventContext) => {
    const receiver = context.receiver!;
    const target = (receiver.remote as { attach?: { target?: { address?: string } } }).attach?.target?.address ?? '';
    if (target !== '$cbs' && target !== '$management' && !resolveHub(/^([^/]+)/.exec(target)?.[1])) {
      receiver.close({ condition: 'amqp:not-found', description: `The messaging entity '${target}' could not be found.` });
      return;
    }
    // The SDK sizes its batches from the max message size the service advertises on attach.
    (receiver.local as { attach: { max_message_size?: number } }).attach.max_message_size = MAX_MESSAGE_SIZE;
  });

  container.on('message', (context: rhea.EventContext) => {
    const receiver = context.receiver!;
    const connection = context.connection;
    const target = (receiver.remote as { attach?: { target?: { address?: string } } }).attach?.target?.address ?? '';
    const delivery = context.delivery as rhea.Delivery & { format?: number };
    if (target === '$cbs') return reply(connection, context.message!, 202, 'Accepted');
    if (target === '$management') return handleManagement(connection, context.message!);
    const [hubSegment, , partitionSegment] = target.split('/');
    const hub = resolveHub(hubSegment)!;
    const messages: rhea.Message[] = [];
    let envelopeAnnotations: Record<string, unknown> | undefined;
    if (delivery.format === BATCH_MESSAGE_FORMAT) {
      // Non-zero formats arrive as raw bytes: one encoded message per amqp:data section.
      // The envelope's own annotations carry the batch's partition key.
      const reader = new rhea.types.Reader(context.message as unknown as Buffer);
      while (reader.remaining()) {
        const section = reader.read() as { descriptor?: { value?: unknown }; value?: unknown };
        const descriptor = Number(section.descriptor?.value);
        if (descriptor === AMQP_DATA_SECTION && Buffer.isBuffer(section.value)) messages.push(rhea.message.decode(section.value));
        if (descriptor === AMQP_MESSAGE_ANNOTATIONS) envelopeAnnotations = rhea.types.unwrap(section.value as rhea.Typed) as Record<string, unknown>;
      }
    } else {
      messages.push(context.message!);
    }
    if (!messages.length) return;
    // A batch is one AMQP transfer, so the service puts all of it on one partition.
    const partitionId = partitionSegment ?? choosePartition(hub, envelopeAnnotations?.[PARTITION_KEY_ANNOTATION] ?? messages[0].message_annotations?.[PARTITION_KEY_ANNOTATION]);
    for (const message of messages) append(hub, partitionId, message);
  });

  const dropConnectionConsumers = (context: rhea.EventContext) => {
    for (const consumer of consumers) if (consumer.sender.connection === context.connection) consumers.delete(consumer);
  };
  container.on('sender_close', (context: rhea.EventContext) => {
    for (const consumer of consumers) if (consumer.sender === context.sender) consumers.delete(consumer);
  });
  container.on('connection_close', dropConnectionConsumers);
  container.on('disconnected', dropConnectionConsumers);
  // A client dropping its socket (kill -9) must not crash the fake.
  container.on('error', () => undefined);

  const server: Server = container.listen({ port: options.port ?? 0, host: options.host ?? '127.0.0.1' });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    connectionString: (hub?: string) => fakeConnectionString(port, hub),
    eventCount: (hub: string) => (hubs[hub] ?? []).reduce((sum, partitionId) => sum + logs.get(logKey(hub, partitionId))!.events.length, 0),
    close: () =>
      new Promise<void>((resolve) => {
        for (const consumer of consumers) consumer.sender.connection.close();
        server.close(() => resolve());
      }),
  };
}

function logKey(hub: string, partitionId: string): string {
  return `${hub}/${partitionId}`;
}

function selectorFilter(filter: Record<string, unknown> | undefined): string {
  const clause = filter?.['apache.org:selector-filter:string'] as { value?: unknown } | string | undefined;
  if (clause === undefined) return '';
  return typeof clause === 'string' ? clause : String(clause.value ?? '');
}

/** Index of the first event the selector admits; the end of the log when none does yet. */
export function startIndex(log: { events: StoredEvent[] }, filter: string): number {
  const match = /x-opt-(offset|sequence-number|enqueued-time)\s*(>=|>)\s*'([^']*)'/.exec(filter);
  if (!match) return 0;
  const [, kind, operator, value] = match;
  if (kind === 'offset' && value === '@latest') return log.events.length;
  const bound = Number(value);
  const position = (event: StoredEvent) =>
    kind === 'offset' ? Number(event.offset) : kind === 'sequence-number' ? event.sequenceNumber : event.enqueuedTime.getTime();
  const index = log.events.findIndex((event) => (operator === '>=' ? position(event) >= bound : position(event) > bound));
  return index === -1 ? log.events.length : index;
}

// ---------------------------------------------------------------------------------------------
// Child-process launcher

export interface FakeEventHubsProcess {
  pid: number;
  port: number;
  connectionString(hub?: string): string;
  stop(): Promise<void>;
}

/**
 * Starts fakeEventHubsServer.ts with node in a child process. Tests are not compiled by tsc, so the
 * child gets a tiny require hook that transpiles `.ts` with the installed TypeScript compiler.
 */
export async function startFakeEventHubsProcess(options: Pick<FakeEventHubsOptions, 'hubs'> = {}): Promise<FakeEventHubsProcess> {
  const serverFile = join(__dirname, 'fakeEventHubsServer.ts');
  const hook = [
    "const ts = require('typescript'); const fs = require('node:fs');",
    "require.extensions['.ts'] = (m, file) => m._compile(ts.transpileModule(fs.readFileSync(file, 'utf8'),",
    '  { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true } }).outputText, file);',
    `require(${JSON.stringify(serverFile)});`,
  ].join('\n');
  const child: ChildProcess = spawn(process.execPath, ['-e', hook], {
    cwd: join(__dirname, '..', '..'),
    env: { ...process.env, FAKE_EVENTHUBS_HUBS: JSON.stringify(options.hubs ?? { 'entra-logs': ['0', '1'] }) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk) => (stderr += String(chunk)));
  const port = await new Promise<number>((resolve, reject) => {
    let stdout = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`fake Event Hubs did not start within 20 s: ${stderr}`));
    }, 20_000);
    child.stdout?.on('data', (chunk) => {
      stdout += String(chunk);
      const match = /"port":(\d+)/.exec(stdout);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`fake Event Hubs exited with ${code}: ${stderr}`));
    });
  });
  return {
    pid: child.pid!,
    port,
    connectionString: (hub?: string) => fakeConnectionString(port, hub),
    stop: () => stopProcess(child),
  };
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    process.kill(child.pid!, 'SIGTERM');
  });
}
