/**
 * Event Hub message bodies → raw records. A body arrives as an object (the Functions host already
 * parsed JSON), a string, or a Buffer (gzip detected by its magic bytes). Accepted shapes, in any
 * mix: `{"records":[…]}`, an array of those, a bare record (an object with `category`), an array
 * of bare records, and several JSON documents on separate lines of one body.
 */
import { gunzipSync } from 'node:zlib';
import type { StreamPosition } from '../errors';

export interface RawRecord {
  record: unknown;
  /** Index within the message's records; the full position is built only when a record is rejected. */
  recordIndex: number;
}

/** The message position extended with a record index. */
export function recordPosition(message: StreamPosition, recordIndex: number): StreamPosition {
  return { ...message, recordIndex };
}

export interface UndecodableBody {
  reason: string;
  position: StreamPosition;
  payload: unknown;
}

export interface DecodedMessage {
  records: RawRecord[];
  undecodable: UndecodableBody[];
}

const MAX_NESTING = 3;

function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Decodes one message body; never throws. Records carry their index within the message. */
export function decodeMessage(body: unknown, position: StreamPosition, out: DecodedMessage = { records: [], undecodable: [] }): DecodedMessage {
  let value = body;
  if (value instanceof Uint8Array) {
    let bytes: Uint8Array = value;
    if (isGzip(bytes)) {
      try {
        bytes = gunzipSync(bytes);
      } catch (error) {
        out.undecodable.push({ reason: `gzip body could not be inflated: ${(error as Error).message}`, position, payload: preview(value) });
        return out;
      }
    }
    value = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  }
  if (typeof value === 'string') {
    const parsed = parseText(value, position, out);
    if (parsed === NOTHING) return out;
    value = parsed;
  }
  const counter = { next: 0 };
  route(value, position, out, counter, 0);
  return out;
}

const NOTHING: unique symbol = Symbol('nothing');

/** JSON text, or several JSON documents one per line (an NDJSON body). */
function parseText(raw: string, position: StreamPosition, out: DecodedMessage): unknown {
  const text = raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw;
  if (text.trim().length === 0) {
    out.undecodable.push({ reason: 'empty body', position, payload: raw });
    return NOTHING;
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    if (text.indexOf('\n') === -1) {
      out.undecodable.push({ reason: `body is not JSON: ${(error as Error).message}`, position, payload: preview(raw) });
      return NOTHING;
    }
  }
  const documents: unknown[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (!line) continue;
    try {
      documents.push(JSON.parse(line));
    } catch (error) {
      out.undecodable.push({ reason: `body line ${i + 1} is not JSON: ${(error as Error).message}`, position, payload: preview(line) });
    }
  }
  return documents.length ? documents : NOTHING;
}

function route(value: unknown, position: StreamPosition, out: DecodedMessage, counter: { next: number }, depth: number): void {
  if (Array.isArray(value)) {
    if (depth >= MAX_NESTING) {
      out.undecodable.push({ reason: 'arrays nested too deeply', position, payload: preview(value) });
      return;
    }
    for (const element of value) route(element, position, out, counter, depth + 1);
    return;
  }
  if (typeof value === 'object' && value !== null) {
    const o = value as Record<string, unknown>;
    if ('records' in o && !('category' in o)) {
      const records = o.records;
      if (!Array.isArray(records)) {
        out.undecodable.push({ reason: 'body "records" is not an array', position, payload: preview(value) });
        return;
      }
      for (const record of records) out.records.push({ record, recordIndex: counter.next++ });
      return;
    }
    // A bare record; one without `category` is still passed on so it is rejected with its position.
    out.records.push({ record: value, recordIndex: counter.next++ });
    return;
  }
  if (depth > 0) {
    // An element of an array body that is not an object: a bad record, not a bad body.
    out.records.push({ record: value, recordIndex: counter.next++ });
    return;
  }
  out.undecodable.push({ reason: `body is a ${value === null ? 'null' : typeof value}, not a JSON object or array`, position, payload: value });
}

const PREVIEW_LIMIT = 4096;

/** Bodies kept in dead letters are bounded: a string or Buffer is cut to its first 4 KiB. */
function preview(value: unknown): unknown {
  if (typeof value === 'string') return value.length > PREVIEW_LIMIT ? `${value.slice(0, PREVIEW_LIMIT)}… (${value.length} chars)` : value;
  if (value instanceof Uint8Array) return `<${value.byteLength} bytes: ${Buffer.from(value.subarray(0, 64)).toString('hex')}…>`;
  return value;
}
