import { execFileSync } from 'node:child_process'

// Reads the kernel's view with iproute2 (`ip -j`), independently of the driver under test.

/** IPv4 addresses on `ifname` in kernel order (a duplicate would show twice); null if the link does not exist. */
export function kernelAddresses(ifname: string): string[] | null {
  let out: string
  try {
    out = execFileSync('ip', ['-j', '-4', 'addr', 'show', 'dev', ifname], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 256 * 1024 * 1024 })
  } catch {
    return null // "Device does not exist"
  }
  const links = JSON.parse(out || '[]') as Array<{ addr_info?: Array<{ family: string; local: string; prefixlen: number }> }>
  if (links.length === 0) return null
  return links.flatMap((l) => (l.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`))
}

/** True when a link named `ifname` exists. */
export function linkExists(ifname: string): boolean {
  try {
    execFileSync('ip', ['link', 'show', 'dev', ifname], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** Deletes a link (cleanup after a failed test); no error if it is already gone. */
export function deleteLink(ifname: string): void {
  try {
    execFileSync('ip', ['link', 'del', 'dev', ifname], { stdio: 'ignore' })
  } catch {
    // already gone
  }
}
