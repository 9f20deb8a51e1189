/**
 * Linux file leases for the hosts-file writer (see `ffi/lease.ts`), or `undefined` where there are
 * none (other systems, or koffi cannot load): the writer then works without them.
 */
export interface Leases {
  /** `true`/`false`: whether another descriptor has the file open for writing; `undefined`: unknown. */
  hasOtherWriters(fd: number): boolean | undefined
  /** `true`: held; `false`: the file is open elsewhere, try again; `undefined`: not available. */
  takeWriteLease(fd: number): boolean | undefined
  releaseLease(fd: number): void
}

let loading: Promise<Leases | undefined> | undefined

export function loadLeases(): Promise<Leases | undefined> {
  if (process.platform !== 'linux') return Promise.resolve(undefined)
  loading ??= import('./ffi/lease.js').then(
    (m): Leases => m,
    () => undefined,
  )
  return loading
}
