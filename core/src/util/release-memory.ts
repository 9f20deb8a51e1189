type MallocTrim = (pad: number) => number

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
 */
export async function releaseFreedMemory(platform: NodeJS.Platform = process.platform): Promise<void> {
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
