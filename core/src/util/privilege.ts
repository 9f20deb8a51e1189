import { readFileSync } from 'node:fs'

/** CAP_NET_ADMIN is bit 12 of the capability sets — <linux/capability.h>. */
const CAP_NET_ADMIN = 12n

/** True when this process may change network interfaces: root, or CAP_NET_ADMIN in its effective set. */
export function hasNetAdmin(): boolean {
  if (process.getuid?.() === 0) return true
  if (process.platform !== 'linux') return false
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))
    return m !== null && ((BigInt(`0x${m[1]}`) >> CAP_NET_ADMIN) & 1n) === 1n
  } catch {
    return false
  }
}

/**
 * The fix when root is refused `path` (EACCES, EPERM): only its attributes or a security module refuse root. The one
 * wording of it (the hosts file, the state dir); `folder`: a directory, whose files may be the ones that refuse.
 */
export function refusedRootHint(path: string, { folder = false }: { folder?: boolean } = {}): string {
  const lsattr = folder ? `lsattr -d ${path}; lsattr ${path}` : `lsattr ${path}`
  return `${folder ? `${path} or a file in it` : path} refuses even root: it is immutable or append-only (${lsattr}; chattr -i -a ${path}), or a security module (SELinux, AppArmor) denies it`
}
