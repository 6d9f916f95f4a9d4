import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isoTime, parseEntraTime } from '../../src/normalize/time';
import { REAL_FIXTURES_DIR } from '../fixtures/records/load';

const iso = (value: unknown): string | undefined => {
  const ms = parseEntraTime(value);
  return ms === undefined ? undefined : isoTime(ms);
};

describe('parseEntraTime', () => {
  it.each([
    ['7-digit fraction with Z', '2026-10-05T10:17:42.1180000Z', '2026-10-05T10:17:42.118Z'],
    ['7-digit fraction with +00:00', '2026-10-05T10:15:58.4410000+00:00', '2026-10-05T10:15:58.441Z'],
    ['trimmed fraction', '2022-01-24T05:00:03.346468+00:00', '2022-01-24T05:00:03.346Z'],
    ['one fraction digit', '2026-10-05T10:15:58.9Z', '2026-10-05T10:15:58.900Z'],
    ['nine fraction digits', '2007-01-09T09:41:00.535404056Z', '2007-01-09T09:41:00.535Z'],
    ['no fraction', '2026-10-05T10:15:58Z', '2026-10-05T10:15:58.000Z'],
    ['negative offset', '2019-10-18T04:45:48.0729893-05:00', '2019-10-18T09:45:48.072Z'],
    ['positive offset', '2007-01-09T11:41:00+02:00', '2007-01-09T09:41:00.000Z'],
    ['offset without colon', '2007-01-09T11:41:00+0200', '2007-01-09T09:41:00.000Z'],
    ['no zone is UTC, not local time', '2026-10-05T10:15:58', '2026-10-05T10:15:58.000Z'],
    ['one-digit hour (RiskyUsers)', '2022-09-09T9:59:27.958Z', '2022-09-09T09:59:27.958Z'],
    ['space instead of T', '2026-10-05 10:15:58', '2026-10-05T10:15:58.000Z'],
    ['US 12-hour PM', '8/22/2022 6:11:52 PM', '2022-08-22T18:11:52.000Z'],
    ['US 12-hour AM', '11/14/2025 1:48:53 AM', '2025-11-14T01:48:53.000Z'],
    ['US 12 AM is midnight', '1/9/2007 12:41:00 AM', '2007-01-09T00:41:00.000Z'],
    ['US 12 PM is noon', '1/9/2007 12:41:00 PM', '2007-01-09T12:41:00.000Z'],
    ['US 24-hour with zeros', '01/09/2007 09:41:00', '2007-01-09T09:41:00.000Z'],
    ['US with offset', '1/9/2007 10:41:00 AM +01:00', '2007-01-09T09:41:00.000Z'],
    ['leap day', '2024-02-29T23:59:59.999Z', '2024-02-29T23:59:59.999Z'],
  ])('%s: %s', (_name, input, expected) => {
    expect(iso(input)).toBe(expected);
  });

  it.each([
    ['empty', ''],
    ['words', 'yesterday'],
    ['31 February', '2026-02-31T00:00:00Z'],
    ['29 February of a common year', '2025-02-29T00:00:00Z'],
    ['hour 25', '2026-10-05T25:00:00Z'],
    ['13 PM', '1/9/2007 13:41:00 PM'],
    ['garbage zone', '2026-10-05T10:15:58 Europe/Amsterdam'],
    ['null', null],
    ['object', { time: 1 }],
  ])('refuses %s', (_name, input) => {
    expect(parseEntraTime(input)).toBeUndefined();
  });

  it('takes numbers as epoch ms and Date objects as they are', () => {
    expect(parseEntraTime(1_790_000_000_000)).toBe(1_790_000_000_000);
    expect(parseEntraTime(new Date('2026-10-05T10:15:58.441Z'))).toBe(Date.parse('2026-10-05T10:15:58.441Z'));
    expect(parseEntraTime(Number.NaN)).toBeUndefined();
  });

  it('formats like Date#toISOString across years, leap days and millisecond padding', () => {
    for (const ms of [0, 5, 999.9, 951_782_400_000, 1_709_251_199_999, 1_790_841_604_512, 4_102_444_799_999, 253_402_300_799_999, -1_000]) expect(isoTime(ms)).toBe(new Date(ms).toISOString());
  });
});

const stubFiles = ['signinlogs/test-time-formats-corner-cases.log', 'auditlogs/test-time-formats-corner-cases.log'].map((f) => join(REAL_FIXTURES_DIR, 'elastic-integrations', f));

describe.skipIf(!stubFiles.every(existsSync))('the published time-format corner cases', () => {
  it('parses every stub to 2007-01-09 09:41 UTC (the instant each one spells)', () => {
    for (const file of stubFiles) {
      const stubs = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { time: string });
      expect(stubs.length).toBe(11);
      for (const stub of stubs) {
        const ms = parseEntraTime(stub.time);
        expect(ms, stub.time).toBeDefined();
        expect(isoTime(ms!).slice(0, 16), stub.time).toBe('2007-01-09T09:41');
      }
    }
  });
});
