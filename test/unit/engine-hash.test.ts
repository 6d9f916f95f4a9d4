/**
 * The hashes end up in stored state (record-id hashes in per-key entries, partition buckets) and in
 * alert ids: a change in any of them would make a redelivered event count twice after an upgrade,
 * move keys to other partitions, or give the same alert a new id. Pinned here.
 */
import { describe, expect, it } from 'vitest';
import { alertIdOf, bucketOf, shortHash } from '../../src/engine/hash';

describe('stable hashes', () => {
  it('shortHash is 64-bit FNV-1a in two lanes, base 36', () => {
    expect(shortHash('')).toBe('ztntfp.p76ayu');
    expect(shortHash('abc')).toBe('7aigaz.3khsuq');
    expect(shortHash('9f7c2b1e-4d3a-4c1b-8e2f-0a1b2c3d4e5f')).toBe('95dngh.1leowpe');
    expect(shortHash('abd')).not.toBe(shortHash('abc'));
  });

  it('bucketOf and alertIdOf keep their values', () => {
    expect(bucketOf('agent|1.2.3.4', 4)).toBe(0);
    expect(bucketOf('agent|1.2.3.5', 4)).toBe(3);
    expect(alertIdOf(['risky-user-obo', 'risky-user-obo:a|b', 'bucket:1'])).toBe('aw_2c1bc6cbc2d3064efc406af499f21964');
  });
});
