/**
 * A pure function of a string, memoized in a bounded map that is cleared wholesale when full. Hot-path
 * inputs repeat heavily (activity names, Graph paths, role lists, rule key texts), so a repeat costs
 * one map look-up; the wholesale clear keeps memory bounded without per-entry bookkeeping, and a
 * stream of unique inputs only ever costs one cleared map.
 */
export class BoundedMemo<V> {
  #entries = new Map<string, V>();

  constructor(
    private readonly compute: (input: string) => V,
    private readonly limit: number,
  ) {}

  get(input: string): V {
    let value = this.#entries.get(input);
    if (value === undefined) {
      value = this.compute(input);
      if (this.#entries.size >= this.limit) this.#entries = new Map();
      this.#entries.set(input, value);
    }
    return value;
  }
}
