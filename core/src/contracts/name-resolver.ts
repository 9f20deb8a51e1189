import type { Check } from './check.js'

export interface NameRecord {
  /** Already validated by the core (see `validateHostname`). */
  hostname: string
  address: string
}

/**
 * Publishes hostname → address so every program on the machine resolves the endpoints.
 *
 * Rules:
 * - `publish()` replaces the whole published set with `records` (declarative): records not in the
 *   list disappear. Publishing the same set twice changes nothing on disk or on the wire.
 * - `publish({ records: [] })` removes everything ngrokd published.
 * - Nothing outside what the resolver owns is ever changed (for the hosts file: every byte outside
 *   the ngrokd block).
 * - `open()` recovers from an interrupted earlier write.
 * - `list()` reads back what is really published.
 * - `close()` may be called more than once and does not unpublish.
 */
export interface NameResolver {
  readonly resolver: string
  open(options?: { signal?: AbortSignal }): Promise<void>
  publish(options: { records: readonly NameRecord[]; signal?: AbortSignal }): Promise<{ changed: boolean }>
  list(): Promise<NameRecord[]>
  close(): Promise<void>
  diagnose(): Promise<Check[]>
}
