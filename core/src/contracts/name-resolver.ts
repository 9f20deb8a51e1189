import type { Check } from './check.js'
import type { NgrokdErrorCode } from '../errors/codes.js'

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
 * - A resolver that can fail to write in a way that needs repair (a full disk) may implement
 *   `health()`: while it says `frozen`, `publish()` refuses name changes with
 *   `NGROKD_ERR_NAMES_FROZEN` and tries again on every call; everything already published stays.
 */
export interface NameResolver {
  readonly resolver: string
  open(options?: { signal?: AbortSignal }): Promise<void>
  publish(options: { records: readonly NameRecord[]; signal?: AbortSignal }): Promise<{ changed: boolean }>
  list(): Promise<NameRecord[]>
  close(): Promise<void>
  diagnose(): Promise<Check[]>
  /** Optional. Cheap and synchronous: the daemon calls it on every status request. */
  health?(): NameResolverHealth
}

/**
 * `ok`, or `frozen` after a failed write: name changes wait until a write succeeds (the resolver
 * tries again on every `publish()`); names published before stay. `error` names what failed and the fix.
 */
export type NameResolverHealth =
  | { state: 'ok' }
  | {
      state: 'frozen'
      /** ISO time of the first failure. */
      since: string
      error: { code: NgrokdErrorCode; message: string; hint?: string }
      /** Only a restart of ngrokd lifts it (the hosts file's own mount went with a replaced file); a service manager may restart it. */
      restartFixes?: true
    }
