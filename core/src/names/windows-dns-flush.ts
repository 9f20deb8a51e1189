// Thin koffi file: DnsFlushResolverCache from dnsapi.dll, so a hosts-file change is seen at once (what
// `ipconfig /flushdns` calls). Loaded with import() on Windows only.
import { koffi } from '../util/koffi.js'

export interface Prototype {
  dll: string
  /** `none`: the function is exported but declared in no public header (checked to exist under Wine instead). */
  header: string
  prototype: string
}

/** dnsapi.dll exports DnsFlushResolverCache without a public declaration: BOOL WINAPI DnsFlushResolverCache(void). */
export const DNSAPI_PROTOTYPES: readonly Prototype[] = [{ dll: 'dnsapi.dll', header: 'none', prototype: 'int __stdcall DnsFlushResolverCache()' }]

/** Returns a function that flushes the DNS client's cache; true when it said it did. */
export function loadDnsFlush(systemRoot: string): () => boolean {
  const lib = koffi.load(`${systemRoot}\\System32\\dnsapi.dll`) // absolute: never the DLL search path
  const flush = lib.func(DNSAPI_PROTOTYPES[0]!.prototype)
  return () => (flush() as number) !== 0
}
