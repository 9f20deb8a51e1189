import { PerformanceObserver } from 'node:perf_hooks'
import v8 from 'node:v8'
import { exposedGc, type GcFunction } from './exposed-gc.js'

// Tuning of V8's young generation for the hot path, which makes a Buffer per TLS record (and per socket
// read) that dies at once. Both knobs are per thread and are set by the process owner (`ngrokd run`, the
// worker pool), never by a library that embeds the daemon.

/** V8's default factor by which the young generation grows (`--semi-space-growth-factor`). */
const V8_GROWTH_FACTOR = 2

/** The young generation's ("new space") size now; undefined where V8 reports none. */
export function youngGenerationBytes(): number | undefined {
  return v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size
}

/**
 * Keeps V8's young generation ("new space") at about `maxMiB`, without a command-line flag.
 *
 * Why: the hot path allocates a Buffer per TLS record, and V8 grows the new space with the allocation
 * rate up to a limit it derives from the machine's memory: 32 MiB on Node 20 and 128 MiB on Node 24 on a
 * 24 GiB machine, where it stays, resident, for the life of the daemon (measured: peak RSS under the
 * bench's load, 17 MiB lower on Node 20 and 75 MiB on Node 24 with a cap of 16). `--max-semi-space-size` would cap it, but only on the command line, which `npm install -g` does
 * not give us on every OS. V8 reads `--semi-space-growth-factor` at each growth decision, so the new space
 * is let grow (factor 2) while it is under `maxMiB` and held (factor 1) once it is there, checked after
 * every collection (a `gc` performance observer: nothing runs while the daemon is idle); V8 may still
 * shrink it when idle, after which it may grow again. A growth in the collections before the observer's
 * callback runs can overshoot the cap by a step. Node 24's V8 does not hold it below about 16 MiB, and reports the pages in use, which run
 * a few MiB over the held size within a cycle (measured; see the test).
 *
 * Returns a function that stops the checks and gives V8 back its default factor.
 */
export function capYoungGeneration(maxMiB: number): () => void {
  let held: boolean | undefined // undefined: set the factor at the first check, ending holdYoungGeneration()
  const setFactor = (factor: number): void => v8.setFlagsFromString(`--semi-space-growth-factor=${factor}`)
  const check = (): void => {
    const bytes = youngGenerationBytes()
    if (bytes === undefined) return
    const atCap = bytes >= maxMiB * 1024 * 1024
    if (atCap !== held) {
      held = atCap
      setFactor(held ? 1 : V8_GROWTH_FACTOR)
    }
  }
  check()
  const observer = new PerformanceObserver(check)
  observer.observe({ entryTypes: ['gc'] })
  return () => {
    observer.disconnect()
    if (held) setFactor(V8_GROWTH_FACTOR)
  }
}

/**
 * Holds the young generation at V8's initial size (factor 1) until {@link capYoungGeneration} lets it
 * grow: `ngrokd run` calls it before it loads the daemon, whose module loading would otherwise grow the
 * new space to the cap and leave it resident in an idle daemon (measured: idle RSS 6–10 MiB lower, start
 * CPU unchanged).
 */
export function holdYoungGeneration(): void {
  v8.setFlagsFromString('--semi-space-growth-factor=1')
}

/** Ends {@link holdYoungGeneration} without a cap: V8's own growth. */
export function releaseYoungGeneration(): void {
  v8.setFlagsFromString(`--semi-space-growth-factor=${V8_GROWTH_FACTOR}`)
}

/** Bytes carried on this thread since the last collection, and the threshold (0 = never collect). */
let carriedSinceGc = 0
let collectEveryBytes = 0
let minorGc: GcFunction | undefined

/**
 * Runs a young-generation collection (a scavenge) on this thread after every `everyMiB` of forwarded
 * bytes ({@link noteBytesCarried}); 0 turns it off.
 *
 * Why: the Buffers of carried bytes live outside the V8 heap and cost V8 almost nothing on it, so its
 * own collections come late: up to tens of MiB of dead Buffers pile up (measured after a 1 GiB download:
 * 35 MiB on Node 20, 85 MiB on Node 24) and stay resident in the allocator. Collecting every few MiB
 * frees them while the memory is still in cache, so the next Buffers reuse it. Measured through a fresh
 * daemon, RSS after the download 120 → 102 MiB (Node 20), 194 → 123 MiB and 1.26 → 0.90 CPU-s/GiB (Node 24).
 *
 * The collection is V8's own `gc()` ({@link exposedGc}). Where that is not possible the setting does
 * nothing. Re-measured on Node 20 (in-process forwarder against a fake ingress, 512 MiB, medians of 5,
 * two pairs): with 8 against 0, 0.97 and 0.96 instead of 1.31 and 1.27 CPU-s/GiB down, 1.08 and 1.06
 * instead of 1.47 and 1.34 up; 4 and 16 about as good as 8, 1, 2 and 32 worse.
 *
 * While it is on, the process's scavenges run on the calling thread alone (`--no-parallel-scavenge`,
 * `--no-concurrent-array-buffer-sweeping`): with almost nothing alive in the young generation, waking
 * helper threads costs more than they save (daemon, 1 GiB down, medians of 3 and 5 in three pairs:
 * 0.98, 0.95, 0.93 CPU-s/GiB instead of 1.07, 1.02, 0.96).
 */
export function collectYoungGarbageEvery(everyMiB: number): void {
  collectEveryBytes = Math.max(0, everyMiB) * 1024 * 1024
  carriedSinceGc = 0
  if (collectEveryBytes > 0 && !minorGc) minorGc = exposedGc()
  if (!minorGc) collectEveryBytes = 0
  if (collectEveryBytes > 0) {
    v8.setFlagsFromString('--no-parallel-scavenge')
    v8.setFlagsFromString('--no-concurrent-array-buffer-sweeping')
  }
}

/** Counts `bytes` forwarded on this thread; collects when the threshold is passed. The hot path calls it per chunk. */
export function noteBytesCarried(bytes: number): void {
  if (collectEveryBytes === 0) return
  carriedSinceGc += bytes
  if (carriedSinceGc < collectEveryBytes) return
  carriedSinceGc = 0
  minorGc!({ type: 'minor' })
}
