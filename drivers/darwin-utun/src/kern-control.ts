/**
 * The kernel-control side of a utun interface, as pure Buffer code (testable on any OS): a
 * PF_SYSTEM socket finds the utun control by name (CTLIOCGINFO), connects to a unit of it (struct
 * sockaddr_ctl) and asks which interface the kernel made (UTUN_OPT_IFNAME). Every size, offset and
 * number is checked against a compiler's reading of the headers (test-fixtures/darwin-layouts.json).
 */
import { AF_SYSTEM, IFNAMSIZ } from '@ngrokd/driver-loopback-alias/darwin'

export const SYSPROTO_CONTROL = 2 // <sys/sys_domain.h>: the kernel control protocol of PF_SYSTEM
export const AF_SYS_CONTROL = 2 // <sys/sys_domain.h>: its sub-address type (ss_sysaddr)
export const MAX_KCTL_NAME = 96 // <sys/kern_control.h>
export const UTUN_CONTROL_NAME = 'com.apple.net.utun_control' // <net/if_utun.h>
export const UTUN_OPT_IFNAME = 2 // <net/if_utun.h>: getsockopt(SYSPROTO_CONTROL) → "utunN"

/** struct ctl_info — <sys/kern_control.h>: u_int32_t ctl_id; char ctl_name[MAX_KCTL_NAME]. */
export const CTL_INFO = { id: 0, name: 4, size: 100 } as const
export const CTLIOCGINFO = 0xc0644e03 // _IOWR('N', 3, struct ctl_info) — <sys/kern_control.h>

/**
 * struct sockaddr_ctl — <sys/kern_control.h>: u_char sc_len, u_char sc_family, u_int16_t
 * ss_sysaddr, u_int32_t sc_id, u_int32_t sc_unit, u_int32_t sc_reserved[5].
 */
export const SOCKADDR_CTL = { len: 0, family: 1, sysaddr: 2, id: 4, unit: 8, reserved: 12, size: 32 } as const

/** struct ctl_info asking for the id of the control called `name` (ctl_id is filled in by the kernel). */
export function encodeCtlInfo(name: string): Buffer {
  const bytes = Buffer.from(name, 'latin1')
  if (bytes.length === 0 || bytes.length >= MAX_KCTL_NAME) throw new RangeError(`kernel control name must be 1 to ${MAX_KCTL_NAME - 1} bytes: ${JSON.stringify(name)}`)
  const b = Buffer.alloc(CTL_INFO.size)
  bytes.copy(b, CTL_INFO.name) // NUL-terminated and padded: the rest stays zero
  return b
}

/** ctl_id from a struct ctl_info the kernel filled in. */
export function decodeCtlId(b: Buffer): number {
  if (b.length < CTL_INFO.size) throw new RangeError(`struct ctl_info needs ${CTL_INFO.size} bytes, got ${b.length}`)
  return b.readUInt32LE(CTL_INFO.id) // both macOS architectures are little-endian
}

/**
 * struct sockaddr_ctl for connect(2): `unit` 0 asks the kernel for the next free unit; unit N + 1
 * asks for utunN (XNU names the interface `utun<unit - 1>`).
 */
export function encodeSockaddrCtl({ id, unit }: { id: number; unit: number }): Buffer {
  if (!Number.isInteger(id) || id < 0 || id > 0xffffffff || !Number.isInteger(unit) || unit < 0 || unit > 0xffffffff) {
    throw new RangeError(`bad kernel control address id ${id} unit ${unit}`)
  }
  const b = Buffer.alloc(SOCKADDR_CTL.size)
  b.writeUInt8(SOCKADDR_CTL.size, SOCKADDR_CTL.len) // XNU refuses any other sc_len with EINVAL
  b.writeUInt8(AF_SYSTEM, SOCKADDR_CTL.family)
  b.writeUInt16LE(AF_SYS_CONTROL, SOCKADDR_CTL.sysaddr)
  b.writeUInt32LE(id, SOCKADDR_CTL.id)
  b.writeUInt32LE(unit, SOCKADDR_CTL.unit)
  return b // sc_reserved[5] stays zero, as the header requires
}

/** The buffer getsockopt(UTUN_OPT_IFNAME) fills: IFNAMSIZ bytes fit any interface name with its NUL. */
export function ifnameBuffer(): Buffer {
  return Buffer.alloc(IFNAMSIZ)
}

/** The name getsockopt(UTUN_OPT_IFNAME) wrote: `length` bytes, the last of them a NUL. */
export function decodeIfname(b: Buffer, length: number): string {
  const text = b.subarray(0, Math.min(length, b.length))
  const end = text.indexOf(0)
  return text.toString('latin1', 0, end < 0 ? text.length : end)
}

/** The unit connect(2) asks for when `net.interface_name` is `utunN`; undefined for any other name. */
export function unitForName(name: string): number | undefined {
  const m = /^utun(\d{1,4})$/.exec(name)
  return m ? Number(m[1]) + 1 : undefined
}
