/**
 * Reading replay input: files, directories (`*.json`, `*.ndjson`, `*.jsonl`, `*.gz`, sorted by
 * name) and standard input, split into Event Hub message bodies. Accepted content, in any mix: one
 * body per line (NDJSON), a JSON array of bodies, a single (pretty-printed) body, bare records.
 * A line or document that is not JSON is passed on as text, so the pipeline dead-letters it with
 * its file and line.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

export const REPLAY_EXTENSIONS = ['.json', '.ndjson', '.jsonl', '.gz'] as const;

export interface InputMessages {
  messages: unknown[];
  /** `file:line` of each message (index-aligned), for dead-letter positions. */
  sources: string[];
}

export class UnreadableInputError extends Error {
  constructor(
    readonly path: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'UnreadableInputError';
  }
}

/** Expands a path argument into the files to read, in order. Throws `UnreadableInputError`. */
export async function expandPath(path: string): Promise<string[]> {
  if (path === '-') return ['-'];
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    throw new UnreadableInputError(path, `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { cause: error });
  }
  if (info.isFile()) return [path];
  if (!info.isDirectory()) throw new UnreadableInputError(path, `cannot read ${path}: not a file or directory`);
  const names = (await readdir(path)).filter((n) => REPLAY_EXTENSIONS.some((ext) => n.toLowerCase().endsWith(ext))).sort();
  const files: string[] = [];
  for (const name of names) {
    const full = join(path, name);
    if ((await stat(full)).isFile()) files.push(full);
  }
  return files;
}

/** Reads a file (or stdin for `-`), gunzipping when the bytes say gzip. */
export async function readInputText(file: string, stdin: NodeJS.ReadableStream): Promise<string> {
  let bytes: Buffer;
  try {
    bytes = file === '-' ? await readAll(stdin) : await readFile(file);
  } catch (error) {
    throw new UnreadableInputError(file, `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { cause: error });
  }
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes);
    } catch (error) {
      throw new UnreadableInputError(file, `cannot read ${file}: gzip data is corrupt (${(error as Error).message})`, { cause: error });
    }
  }
  return bytes.toString('utf8');
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks);
}

/** Net `{`/`[` depth change of a line, tracking strings across lines (state carried in `scan`). */
function scanDepth(line: string, scan: { inString: boolean; escaped: boolean; depth: number }): void {
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (scan.inString) {
      if (scan.escaped) scan.escaped = false;
      else if (c === 92 /* \ */) scan.escaped = true;
      else if (c === 34 /* " */) scan.inString = false;
      continue;
    }
    if (c === 34) scan.inString = true;
    else if (c === 123 || c === 91) scan.depth++;
    else if (c === 125 || c === 93) scan.depth--;
  }
}

/** Splits input text into message bodies. Never throws: text that is not JSON stays a string. */
export function splitMessages(raw: string, label: string): InputMessages {
  const text = raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw;
  const out: InputMessages = { messages: [], sources: [] };
  const trimmed = text.trim();
  if (!trimmed) return out;
  const first = trimmed[0];
  if (first === '[' || first === '{') {
    // A single document (a body, a bare record, or an array of them), possibly pretty-printed.
    try {
      const whole: unknown = JSON.parse(trimmed);
      if (Array.isArray(whole)) {
        whole.forEach((element, i) => {
          out.messages.push(element);
          out.sources.push(`${label}[${i}]`);
        });
      } else {
        out.messages.push(whole);
        out.sources.push(label);
      }
      return out;
    } catch {
      // Not one document: read it line by line below.
    }
  }
  const lines = text.split('\n');
  let buffer: string[] | undefined;
  let bufferStart = 0;
  const scan = { inString: false, escaped: false, depth: 0 };
  const flushBuffer = (): void => {
    if (!buffer) return;
    const doc = buffer.join('\n');
    let parsed: unknown = doc;
    try {
      parsed = JSON.parse(doc);
    } catch {
      // Left as text: the pipeline dead-letters it with this position.
    }
    out.messages.push(parsed);
    out.sources.push(`${label}:${bufferStart + 1}`);
    buffer = undefined;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.endsWith('\r') ? lines[i]!.slice(0, -1) : lines[i]!;
    if (buffer) {
      // A new top-level document starting at column 0 while the previous one is still open: that one is broken.
      if ((line.startsWith('{') || line.startsWith('[')) && scan.depth > 0 && !scan.inString) {
        flushBuffer();
      } else {
        buffer.push(line);
        scanDepth(line, scan);
        if (scan.depth <= 0 && !scan.inString) flushBuffer();
        continue;
      }
    }
    const t = line.trim();
    if (!t) continue;
    try {
      out.messages.push(JSON.parse(t));
      out.sources.push(`${label}:${i + 1}`);
      continue;
    } catch {
      // Maybe the first line of a multi-line document.
    }
    scan.inString = false;
    scan.escaped = false;
    scan.depth = 0;
    scanDepth(line, scan);
    if (scan.depth > 0) {
      buffer = [line];
      bufferStart = i;
    } else {
      out.messages.push(t);
      out.sources.push(`${label}:${i + 1}`);
    }
  }
  flushBuffer();
  return out;
}
