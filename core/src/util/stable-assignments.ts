/**
 * Stable assignment of keys to numbered slots in a range: one home for the rule that hands out
 * endpoint IPs (slots = IPv4 addresses of `net.subnet`, keys = hostnames) and network-mode ports
 * (slots = ports from `net.network.start_port`, keys = `hostname:port`).
 *
 * Rules:
 * - The same key gets the same slot back for as long as the slot stays valid (a restart restores
 *   the entries with {@link restore}).
 * - A released slot stays its key's and is not given to another key while never-used slots remain;
 *   when the range is used up, the oldest released slot is recycled.
 * - `skip` slots (reserved addresses, the endpoints' own ports) are never given to a new key.
 * - Exhaustion is per key: the keys that got a slot keep it.
 *
 * Cost: O(1) amortised per key. A cursor walks the range once; slots behind it are only handed out
 * again by recycling.
 */
export interface StableEntry {
  key: string
  slot: number
  active: boolean
  /** Release order of an inactive entry: the smallest is recycled first. */
  released?: number
}

/** A key's slot (`recycledFrom`: the released key whose slot it took; `movedFrom`: its own slot, now in `skip`), or exhaustion. */
export type SlotResult = { key: string; slot: number; recycledFrom?: string; movedFrom?: number } | { key: string; exhausted: true }

export class StableAssignments {
  private readonly bySlot = new Map<number, string>()
  /** Each key's slot; a key is active unless it is in {@link released}. */
  private readonly byKey = new Map<string, number>()
  /** Inactive keys in release order (Map keeps insertion order): the first is the oldest. */
  private readonly released = new Map<string, number>()
  private releaseSeq = 0
  private cursor: number

  /** `first` … `last`, inclusive. */
  constructor(
    readonly first: number,
    readonly last: number,
  ) {
    this.cursor = first
  }

  /**
   * Loads saved entries into the empty assignments. An entry whose slot is outside the range, not
   * `valid`, or a duplicate of an earlier key or slot is dropped; the dropped keys are returned.
   */
  restore(entries: readonly StableEntry[], valid: (slot: number) => boolean = () => true): string[] {
    const dropped: string[] = []
    const inactive: Array<{ key: string; seq: number }> = []
    for (const e of entries) {
      if (e.slot < this.first || e.slot > this.last || !valid(e.slot) || this.bySlot.has(e.slot) || this.byKey.has(e.key)) {
        dropped.push(e.key)
        continue
      }
      this.byKey.set(e.key, e.slot)
      this.bySlot.set(e.slot, e.key)
      if (!e.active) inactive.push({ key: e.key, seq: e.released ?? 0 })
    }
    inactive.sort((a, b) => a.seq - b.seq)
    for (const { key } of inactive) this.released.set(key, ++this.releaseSeq)
    return dropped
  }

  /**
   * A slot for each key; `changed` is true when anything is to be saved. No key gets a slot in `skip`:
   * one that holds such a slot already (a network port that an endpoint now uses as its own) moves.
   */
  assign(keys: readonly string[], skip: ReadonlySet<number> = new Set()): { results: SlotResult[]; changed: boolean } {
    const results: SlotResult[] = []
    let changed = false
    for (const key of keys) {
      let known = this.byKey.get(key)
      let movedFrom: number | undefined
      if (known !== undefined && skip.has(known)) {
        this.byKey.delete(key)
        this.bySlot.delete(known)
        this.released.delete(key)
        movedFrom = known
        known = undefined
        changed = true
      }
      if (known !== undefined) {
        if (this.released.delete(key)) changed = true // active again
        results.push({ key, slot: known })
        continue
      }
      const fresh = this.takeNeverUsed(skip)
      const taken = fresh === undefined ? this.takeOldestReleased(skip) : { slot: fresh }
      if (taken === undefined) {
        results.push({ key, exhausted: true })
        continue
      }
      this.byKey.set(key, taken.slot)
      this.bySlot.set(taken.slot, key)
      changed = true
      results.push({ key, ...taken, ...(movedFrom === undefined ? {} : { movedFrom }) })
    }
    return { results, changed }
  }

  /** Marks keys unused; their slots stay theirs until the range is exhausted. True when anything changed. */
  release(keys: readonly string[]): boolean {
    let changed = false
    for (const key of keys) {
      if (!this.byKey.has(key) || this.released.has(key)) continue
      this.released.set(key, ++this.releaseSeq)
      changed = true
    }
    return changed
  }

  /** The slot of a key, active or not. */
  lookup(key: string): number | undefined {
    return this.byKey.get(key)
  }

  /** Every entry, sorted by slot, with the release order of inactive ones: what is persisted. */
  entries(): StableEntry[] {
    return [...this.byKey.entries()]
      .sort((a, b) => a[1] - b[1])
      .map(([key, slot]) => {
        const seq = this.released.get(key)
        return seq === undefined ? { key, slot, active: true } : { key, slot, active: false, released: seq }
      })
  }

  get size(): number {
    return this.byKey.size
  }

  get releasedCount(): number {
    return this.released.size
  }

  private takeNeverUsed(skip: ReadonlySet<number>): number | undefined {
    while (this.cursor <= this.last) {
      const s = this.cursor++
      if (!this.bySlot.has(s) && !skip.has(s)) return s
    }
    return undefined
  }

  private takeOldestReleased(skip: ReadonlySet<number>): { slot: number; recycledFrom: string } | undefined {
    for (const key of this.released.keys()) {
      const slot = this.byKey.get(key)!
      if (skip.has(slot)) continue
      this.released.delete(key)
      this.byKey.delete(key)
      this.bySlot.delete(slot)
      return { slot, recycledFrom: key }
    }
    return undefined
  }
}
