/**
 * An alert uploader (behind the durable outbox) that appends alerts to an NDJSON file, one JSON
 * alert per line: the self-hosted consumer's `--alerts-file`, for a SIEM forwarder that tails a
 * file, and the kill-and-restart test's observable output.
 *
 * The outbox resends a batch whose upload outcome it never recorded (killed between the append and
 * its `done` marker). A file, unlike the Logs Ingestion API, can tell what it already holds, so this
 * uploader reads the ids in the file when it opens it and never appends an id twice: delivery to
 * the file is exactly-once across restarts.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { AgentwatchError } from '../errors';
import type { AlertUploader, UploadReceipt } from '../alerts/outbox';
import type { Alert } from '../alerts/types';

export class NdjsonFileUploader implements AlertUploader {
  readonly name = 'file';
  readonly path: string;
  readonly #written = new Set<string>();

  constructor(path: string) {
    this.path = path;
    if (!existsSync(path)) return;
    const text = readFileSync(path, 'utf8');
    for (const line of text.split('\n')) {
      const id = alertIdOfLine(line);
      if (id !== undefined) this.#written.add(id);
    }
    // A process killed mid-write can leave a partial last line: end it, so the next alert starts clean.
    if (text.length && !text.endsWith('\n')) appendFileSync(path, '\n');
  }

  /** Alert ids already in the file. */
  get deliveredIds(): ReadonlySet<string> {
    return this.#written;
  }

  async upload(alerts: Alert[]): Promise<UploadReceipt> {
    let chunk = '';
    const ids: string[] = [];
    for (const alert of alerts) {
      if (this.#written.has(alert.id) || ids.includes(alert.id)) continue;
      ids.push(alert.id);
      chunk += `${JSON.stringify(alert)}\n`;
    }
    if (chunk) {
      try {
        // One write per batch: a line is either in the file whole or not at all (short of a torn write).
        appendFileSync(this.path, chunk);
      } catch (error) {
        throw new AgentwatchError('SINK_TRANSIENT', `appending ${ids.length} alert(s) to ${this.path} failed`, { cause: error });
      }
      for (const id of ids) this.#written.add(id);
    }
    return { trimmedAlertIds: [] };
  }
}

function alertIdOfLine(line: string): string | undefined {
  if (!line.trim()) return undefined;
  try {
    const parsed = JSON.parse(line) as { id?: unknown };
    return typeof parsed.id === 'string' ? parsed.id : undefined;
  } catch {
    return undefined;
  }
}
