import koffi, { type LibraryHandle } from 'koffi'

/** libc through koffi: glibc's `libc.so.6`, else (musl and others) the symbols node itself links against. */
export function loadLibc(): LibraryHandle {
  try {
    return koffi.load('libc.so.6')
  } catch {
    return koffi.load(null)
  }
}
