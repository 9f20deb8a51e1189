/**
 * The libc/socket constants the koffi files use, each with the header it comes from (x86, arm,
 * riscv, loongarch values; the same on every architecture Node and koffi ship for).
 */

// <bits/socket_type.h> / <asm-generic/fcntl.h>
export const SOCK_RAW = 3
export const SOCK_NONBLOCK = 0o4000 // O_NONBLOCK
export const SOCK_CLOEXEC = 0o2000000 // O_CLOEXEC
// <asm-generic/socket.h>
export const SOL_SOCKET = 1
export const SO_RCVBUF = 8
export const SO_RCVTIMEO = 20 // struct timeval: 16 bytes (64-bit seconds, 64-bit microseconds)
export const SO_RCVBUFFORCE = 33 // needs CAP_NET_ADMIN; ignores net.core.rmem_max
// <linux/socket.h>
export const MSG_PEEK = 0x2
export const MSG_TRUNC = 0x20 // recv returns the datagram's real length even when it did not fit
export const MSG_DONTWAIT = 0x40
// <linux/sched.h>
export const CLONE_NEWNET = 0x40000000
