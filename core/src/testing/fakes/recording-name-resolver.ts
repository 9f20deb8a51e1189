import type { Check } from '../../contracts/check.js'
import type { NameRecord, NameResolver } from '../../contracts/name-resolver.js'
import { NgrokdError } from '../../errors/ngrokd-error.js'
import { Lifecycle } from '../../util/lifecycle.js'

/** Where a RecordingNameResolver keeps what is "published"; share it to simulate a restart. */
export interface PublishedNames {
  records: NameRecord[]
}

export interface RecordedPublish {
  records: NameRecord[]
  changed: boolean
}

/**
 * An in-memory NameResolver that keeps the contract's rules and records every `publish()`.
 * For tests of the reconciler and of plugins.
 *
 * ```ts
 * const names = new RecordingNameResolver()
 * await names.open()
 * // … run a reconcile …
 * assert.deepEqual(names.publishes.at(-1)?.records, [{ hostname: 'api.prod', address: '10.107.0.2' }])
 * ```
 */
export class RecordingNameResolver implements NameResolver {
  readonly resolver = 'recording'
  /** Every successful publish, in order, with what it reported. */
  readonly publishes: RecordedPublish[] = []
  readonly published: PublishedNames
  readonly #lifecycle = new Lifecycle('recording name resolver')

  constructor(options: { published?: PublishedNames } = {}) {
    this.published = options.published ?? { records: [] }
  }

  async open(options: { signal?: AbortSignal } = {}): Promise<void> {
    throwIfAborted(options.signal)
    this.#lifecycle.open()
  }

  async publish({ records, signal }: { records: readonly NameRecord[]; signal?: AbortSignal }): Promise<{ changed: boolean }> {
    this.#ready()
    throwIfAborted(signal)
    const next = normalise(records)
    const changed = key(next) !== key(this.published.records)
    if (changed) this.published.records = next
    this.publishes.push({ records: records.map((r) => ({ ...r })), changed })
    return { changed }
  }

  async list(): Promise<NameRecord[]> {
    this.#ready()
    return this.published.records.map((r) => ({ ...r }))
  }

  async close(): Promise<void> {
    this.#lifecycle.close()
  }

  async diagnose(): Promise<Check[]> {
    return [{ id: 'recording.published', status: 'ok', summary: `${this.published.records.length} names published in memory` }]
  }

  #ready(): void {
    this.#lifecycle.assertOpen()
  }
}

/** Sorted and without duplicates, so that equal sets compare equal. */
function normalise(records: readonly NameRecord[]): NameRecord[] {
  const unique = new Map(records.map((r) => [`${r.hostname} ${r.address}`, { hostname: r.hostname, address: r.address }]))
  return [...unique.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, r]) => r)
}

function key(records: readonly NameRecord[]): string {
  return records.map((r) => `${r.hostname} ${r.address}`).join('\n')
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new NgrokdError('NGROKD_ERR_ABORTED', 'recording name resolver: aborted', { cause: signal.reason })
}
