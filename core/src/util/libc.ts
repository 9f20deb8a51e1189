import { koffi } from './koffi.js'

/** The C library for koffi: glibc's libc.so.6, else (musl and others) the symbols node itself links against. */
export function loadLibc(): ReturnType<typeof koffi.load> {
  try {
    return koffi.load('libc.so.6')
  } catch {
    return koffi.load(null)
  }
}
