/**
 * Gives the C heap's free pages back to the system (glibc's `malloc_trim(0)`, <malloc.h>). Starting the
 * daemon allocates and frees tens of MiB in C (V8's compiler and parser zones, OpenSSL's parse of the CA
 * store) which glibc keeps for reuse: trimmed once the daemon serves, an idle daemon holds 6–8 MiB less
 * (measured with /proc/self/smaps_rollup). Linux with glibc only; elsewhere (macOS, Windows, musl) it
 * does nothing. Loads koffi, which the Linux driver has loaded already.
 */
export async function releaseFreedMemory(platform: NodeJS.Platform = process.platform): Promise<void> {
  if (platform !== 'linux') return
  try {
    const { loadLibc } = await import('./libc.js')
    const mallocTrim = loadLibc().func('int malloc_trim(size_t pad)') as (pad: number) => number
    mallocTrim(0)
  } catch {
    // no malloc_trim (musl) or no koffi binary: nothing to give back this way
  }
}
