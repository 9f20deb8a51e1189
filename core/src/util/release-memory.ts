import { collectAllGarbage, exposedGc } from './exposed-gc.js'
import { youngGenerationBytes } from './young-generation.js'

type MallocTrim = (pad: number) => number

/** How much of V8's heap {@link releaseFreedMemory} collects first: none (undefined), one full collection, or all it can give back. */
export type GarbageCollection = 'full' | 'all'

/** glibc's malloc_trim, bound once; null where there is none. */
let mallocTrim: MallocTrim | null | undefined

/**
 * Gives the C heap's free pages back to the system (glibc's `malloc_trim(0)`, <malloc.h>). Starting the
 * daemon, registering and each poll allocate and free MiBs in C (V8's compiler and parser zones,
 * OpenSSL's parse of the CA store, the API's replies) which glibc keeps for reuse: trimmed once the
 * daemon serves and after each reconcile, an idle daemon holds 6–10 MiB less (measured with
 * /proc/self/smaps_rollup; one trim took 0.26 ms in an idle daemon, 6.5 ms to return 64 MiB of holes).
 * Linux with glibc only; elsewhere (macOS, Windows, musl) it does nothing. Loads koffi, which the Linux
 * driver has loaded already.
 *
 * With `collectGarbage`, V8's heap is collected first, which gives back the heap pages it empties: V8 keeps
 * the heap it grew to for a big reconcile committed long after.
 * - `'full'`: one full, compacting collection ({@link exposedGc}). Measured with 10,000 endpoints: RSS
 *   169 → 135 MiB after a first start, 229 → 154 after a restart, for one collection of 30–36 ms and a trim of 9 ms.
 * - `'all'`: {@link collectAllGarbage}, which on Node 24 also shrinks the young generation and on Node 20 does
 *   when the last 5 s allocated little: for a daemon that has settled.
 */
export async function releaseFreedMemory({ collectGarbage, platform = process.platform }: { collectGarbage?: GarbageCollection; platform?: NodeJS.Platform } = {}): Promise<void> {
  if (collectGarbage === 'full') exposedGc()?.()
  if (collectGarbage === 'all') collectAllGarbage()
  if (platform !== 'linux') return
  if (mallocTrim === undefined) {
    try {
      const { loadLibc } = await import('./libc.js')
      mallocTrim = loadLibc().func('int malloc_trim(size_t pad)') as MallocTrim
    } catch {
      mallocTrim = null // no malloc_trim (musl) or no koffi binary: nothing to give back this way
    }
  }
  mallocTrim?.(0)
}

/** After a start, V8 goes on compiling what ran in background threads for a second or two, and frees its zones then. */
export const RELEASE_AFTER_START_MS = 2_000
/** A reconcile that adds and removes at least this many listeners leaves enough garbage to collect the whole heap for. */
export const COLLECT_AFTER_LISTENER_CHANGES = 1_000
/**
 * So does a reconcile of at least this many services, even one that changes nothing: it follows a poll of
 * at least 10 pages, whose replies are garbage by then. Measured with 10,000 endpoints: a restart's RSS after
 * its first poll 154 → 131 MiB, for one collection per poll (30–36 ms, beside the ~300 ms such a poll's
 * reconcile takes).
 */
export const COLLECT_AFTER_SERVICES = 1_000

/**
 * After a big reconcile, a second collection ({@link collectAllGarbage}) waits until no big reconcile has run
 * for this long: Node 20's V8 gives back the young generation such a reconcile grew only in a collection after
 * 5 s of little allocation (src/heap/gc-tracer.h, kThroughputTimeFrameMs). Measured with 10,000 endpoints, RSS
 * 10 s after the start's last reconcile: Node 20 123–125 → 94–98 MiB after a first start, 114–116 → 99 after a
 * restart; Node 24 ~110 MiB, 159 before (V8's own memory reducer got to ~92 on Node 20 some 12 s later, or not in 20 s).
 */
export const SETTLE_AFTER_RECONCILE_MS = 6_000

/**
 * Gives freed C-heap pages back now, and {@link RELEASE_AFTER_START_MS} later both those and V8's
 * (all it can give back first) on a timer that does not keep the process alive; after that, each
 * reconcile does ({@link releaseAfterReconcile}). Measured on an idle daemon: the trim at serving time
 * alone left 70–79 MiB RSS (8 MiB freed afterwards by background compilation, in about half the
 * starts) until the first poll; with the later one 70–72.
 */
export function releaseFreedMemoryAfterStart(release: typeof releaseFreedMemory = releaseFreedMemory): void {
  run(release)
  setTimeout(run, RELEASE_AFTER_START_MS, release, 'all').unref()
}

/**
 * The settling collection is tried again, {@link SETTLE_AFTER_RECONCILE_MS} later and this many times at most,
 * while the young generation stays grown after it: on Node 20 an API call or connections in the 5 s before it
 * are enough for V8 to keep it (with 10,000 endpoints ~15 MiB, in about one settle of three).
 */
export const SETTLE_RETRIES = 3

/** The young generation's size when this module loaded, at the start of the daemon: V8's initial one. */
const youngGenerationAtStart = youngGenerationBytes() ?? 0

/** Whether the young generation is larger than it was at the start. */
export function youngGenerationGrown(): boolean {
  return (youngGenerationBytes() ?? 0) > youngGenerationAtStart
}

let settling: NodeJS.Timeout | undefined

/**
 * What a reconcile freed goes back: the C heap's pages at once; after {@link COLLECT_AFTER_LISTENER_CHANGES}
 * listener changes or a reconcile of {@link COLLECT_AFTER_SERVICES} services, V8's whole heap first, and
 * all it can give back {@link SETTLE_AFTER_RECONCILE_MS} after the last such reconcile (on a timer that does
 * not keep the process alive), again while the young generation stays grown ({@link SETTLE_RETRIES}).
 */
export function releaseAfterReconcile(
  report: { services: number; listenersAdded: number; listenersRemoved: number },
  release: typeof releaseFreedMemory = releaseFreedMemory,
  grown: () => boolean = youngGenerationGrown,
): void {
  const big = report.listenersAdded + report.listenersRemoved >= COLLECT_AFTER_LISTENER_CHANGES || report.services >= COLLECT_AFTER_SERVICES
  if (!big) return run(release)
  run(release, 'full')
  settleLater(release, grown, SETTLE_RETRIES)
}

function settleLater(release: typeof releaseFreedMemory, grown: () => boolean, retries: number): void {
  clearTimeout(settling)
  const settle = async (): Promise<void> => {
    await release({ collectGarbage: 'all' }).catch(() => undefined)
    if (retries > 0 && grown()) settleLater(release, grown, retries - 1)
  }
  settling = setTimeout(settle, SETTLE_AFTER_RECONCILE_MS).unref()
}

/** Best effort: a failed trim costs memory, never the daemon. */
function run(release: typeof releaseFreedMemory, collectGarbage?: GarbageCollection): void {
  void release(collectGarbage ? { collectGarbage } : {}).catch(() => undefined)
}
