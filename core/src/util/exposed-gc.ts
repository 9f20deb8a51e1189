import v8 from 'node:v8'
import vm from 'node:vm'

/** V8's `gc()`: with no argument a full, compacting collection; `{ type: 'minor' }` a scavenge of the young generation. */
export type GcFunction = (options?: { type?: 'minor' | 'major' }) => void

let exposed: GcFunction | null | undefined

/**
 * V8's `gc()` without the `--expose-gc` command-line flag, which `npm install -g` cannot give on every
 * OS: the flag is set at run time, and a fresh context then has the function. Undefined where that
 * does not work. The same function on every call.
 */
export function exposedGc(): GcFunction | undefined {
  if (exposed === undefined) {
    try {
      v8.setFlagsFromString('--expose-gc')
      const gc: unknown = vm.runInNewContext('gc')
      exposed = typeof gc === 'function' ? (gc as GcFunction) : null
    } catch {
      exposed = null
    }
  }
  return exposed ?? undefined
}
