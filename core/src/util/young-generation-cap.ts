import v8 from 'node:v8'

/** How often the size of V8's young generation is checked. A `getHeapSpaceStatistics()` call costs microseconds. */
const CHECK_INTERVAL_MS = 10

/** V8's default factor by which the young generation grows (`--semi-space-growth-factor`). */
const V8_GROWTH_FACTOR = 2

/**
 * Keeps V8's young generation ("new space") at about `maxMiB`, without a command-line flag.
 *
 * Why: the hot path allocates a Buffer per TLS record, and V8 grows the new space with the allocation
 * rate up to a limit it derives from the machine's memory: 32 MiB on Node 20 and 128 MiB on Node 24 on a
 * 24 GiB machine, where it stays, resident, for the life of the daemon (measured: `npm run bench`, peak
 * RSS). `--max-semi-space-size` would cap it, but only on the command line, which `npm install -g` does
 * not give us on every OS. V8 reads `--semi-space-growth-factor` at each growth decision, so the new space
 * is let grow (factor 2) while it is under `maxMiB` and held (factor 1) once it is there; V8 may still
 * shrink it when idle, after which it may grow again. Growth comes in doublings, so the size ends within
 * one doubling of `maxMiB` if several come between two checks.
 *
 * Returns a function that stops the checks and gives V8 back its default factor.
 */
export function capYoungGeneration(maxMiB: number): () => void {
  let held = false
  const setFactor = (factor: number): void => v8.setFlagsFromString(`--semi-space-growth-factor=${factor}`)
  const check = (): void => {
    const bytes = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size
    if (bytes === undefined) return
    const atCap = bytes >= maxMiB * 1024 * 1024
    if (atCap !== held) {
      held = atCap
      setFactor(held ? 1 : V8_GROWTH_FACTOR)
    }
  }
  check()
  const timer = setInterval(check, CHECK_INTERVAL_MS)
  timer.unref()
  return () => {
    clearInterval(timer)
    if (held) setFactor(V8_GROWTH_FACTOR)
  }
}
