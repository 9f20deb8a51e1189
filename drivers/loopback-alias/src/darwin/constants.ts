/**
 * macOS constants shared by the lo0 alias code and the darwin-utun driver. Every value is from the
 * header named beside it, and darwin-utun's layout test compares each with the numbers a compiler
 * took from those headers (x86_64 and arm64 agree on all of them).
 */

// <sys/socket.h>
export const AF_UNSPEC = 0
export const AF_INET = 2
export const AF_ROUTE = 17
export const AF_LINK = 18
export const AF_INET6 = 30 // macOS value; Linux uses 10
export const AF_SYSTEM = 32
export const PF_ROUTE = AF_ROUTE
export const PF_SYSTEM = AF_SYSTEM
export const SOCK_DGRAM = 2
export const NET_RT_DUMP = 1

// <sys/sysctl.h>
export const CTL_NET = 4

// <net/if.h>
export const IFNAMSIZ = 16 // including the terminating NUL
export const IFF_UP = 0x1
export const IFF_BROADCAST = 0x2
export const IFF_LOOPBACK = 0x8
export const IFF_POINTOPOINT = 0x10
export const IFF_RUNNING = 0x40
export const IFF_MULTICAST = 0x8000

// <sys/fcntl.h>
export const F_GETFD = 1
export const F_SETFD = 2
export const F_GETFL = 3
export const F_SETFL = 4
export const FD_CLOEXEC = 1
export const O_NONBLOCK = 0x4 // Linux uses 0x800
