import { createRequire } from 'node:module'
import type { LibraryHandle } from 'koffi'

/** koffi by its CommonJS entry, as core loads it (core's util/commonjs.ts says why): one copy of its code in the process. */
export const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi')

/** libc through koffi: glibc's `libc.so.6`, else (musl and others) the symbols node itself links against. */
export function loadLibc(): LibraryHandle {
  try {
    return koffi.load('libc.so.6')
  } catch {
    return koffi.load(null)
  }
}
