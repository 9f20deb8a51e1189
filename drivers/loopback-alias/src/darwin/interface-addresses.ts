import { ipv4ToInt, NgrokdError, PermissionError, SyscallError } from '@ngrokd/core/driver'
import { AF_INET, SOCK_DGRAM } from './constants.js'
import { EACCES, EADDRNOTAVAIL, EEXIST, EPERM, errnoName, type DarwinSyscalls } from './darwin-syscalls.js'
import { decodeSockaddrIn, encodeIfaliasreq, encodeIfreqAddr, encodeIfreqMtu, SIOCAIFADDR, SIOCDIFADDR, SIOCSIFMTU } from './structs.js'

/** Every address ngrokd adds is a /32 host address: the kernel then adds no subnet-wide route. */
export const HOST_MASK = '255.255.255.255'

/** Who is asking, for error messages: `loopback-alias`, `darwin-utun`; and how to get the privilege. */
export interface Caller {
  driver: string
  /** Hint for EPERM/EACCES, e.g. `run ngrokd with sudo`. */
  privilegeHint: string
}

export interface InterfaceAddressChange extends Caller {
  ifname: string
  add: readonly string[]
  remove: readonly string[]
  /**
   * A point-to-point interface (utun) needs a destination for every address (XNU answers
   * EDESTADDRREQ without one); each address is given itself, as wg-quick does on macOS
   * (`ifconfig utunN inet A A alias`). Other interfaces (lo0) get none.
   */
  pointToPoint: boolean
}

/**
 * Removes, then adds, IPv4 host addresses on an interface: `ioctl(SIOCDIFADDR)` / `ioctl(SIOCAIFADDR)`
 * on one AF_INET datagram socket. Idempotent: EADDRNOTAVAIL on remove (already gone) and EEXIST on
 * add count as success. Stops at the first failure, as a coded error naming the address.
 */
export function changeInterfaceAddresses(sys: DarwinSyscalls, { driver, privilegeHint, ifname, add, remove, pointToPoint }: InterfaceAddressChange): void {
  if (add.length === 0 && remove.length === 0) return
  const fd = sys.socket(AF_INET, SOCK_DGRAM, 0)
  try {
    for (const address of remove) {
      const errno = sys.ioctl(fd, SIOCDIFADDR, encodeIfreqAddr({ name: ifname, address }))
      if (errno !== 0 && errno !== EADDRNOTAVAIL) throw darwinError({ driver, privilegeHint }, 'ioctl(SIOCDIFADDR)', errno, `${address} on ${ifname}`)
    }
    for (const address of add) {
      const request = encodeIfaliasreq({ name: ifname, address, mask: HOST_MASK, ...(pointToPoint ? { broadaddr: address } : {}) })
      const errno = sys.ioctl(fd, SIOCAIFADDR, request)
      if (errno !== 0 && errno !== EEXIST) throw darwinError({ driver, privilegeHint }, 'ioctl(SIOCAIFADDR)', errno, `${address} on ${ifname}`)
    }
  } finally {
    sys.close(fd)
  }
}

/** `ioctl(SIOCSIFMTU)` on an AF_INET datagram socket. */
export function setInterfaceMtu(sys: DarwinSyscalls, { driver, privilegeHint, ifname, mtu }: Caller & { ifname: string; mtu: number }): void {
  const fd = sys.socket(AF_INET, SOCK_DGRAM, 0)
  try {
    const errno = sys.ioctl(fd, SIOCSIFMTU, encodeIfreqMtu({ name: ifname, mtu }))
    if (errno !== 0) throw darwinError({ driver, privilegeHint }, 'ioctl(SIOCSIFMTU)', errno, `${mtu} on ${ifname}`)
  } finally {
    sys.close(fd)
  }
}

/** The IPv4 addresses of `ifname` (getifaddrs), without duplicates, in numeric order. */
export function interfaceAddresses(sys: DarwinSyscalls, ifname: string): string[] {
  const found = new Set<string>()
  for (const entry of sys.getifaddrs()) {
    if (entry.name !== ifname || !entry.addr) continue
    const address = decodeSockaddrIn(entry.addr)
    if (address !== undefined) found.add(address)
  }
  return [...found].sort((a, b) => ipv4ToInt(a) - ipv4ToInt(b))
}

/** A failed macOS call as a coded error: EPERM/EACCES become `PermissionError` with the caller's hint. */
export function darwinError({ driver, privilegeHint }: Caller, syscall: string, errno: number, detail: string): NgrokdError {
  if (errno === EPERM || errno === EACCES) {
    return new PermissionError(`${driver}: ${syscall} ${detail} refused: ${errnoName(errno)} (${errno})`, { hint: privilegeHint })
  }
  return new SyscallError(syscall, errno, errnoName(errno), { detail })
}
