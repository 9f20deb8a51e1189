import { readlinkSync } from 'node:fs'

/**
 * A namespace's inode (`net:[4026531840]` → `4026531840`): interface names are per network
 * namespace, what a path names is per mount namespace.
 */
export function namespaceId(kind: 'net' | 'mnt'): string {
  try {
    return readlinkSync(`/proc/self/ns/${kind}`).replace(/\D/g, '')
  } catch {
    return 'host'
  }
}
