/**
 * rtnetlink constants, each with the Linux UAPI header it comes from. Values are the same on every
 * architecture Node and koffi ship for (x86_64, arm64, ia32, arm, riscv64, loong64).
 */

// <linux/socket.h> (address families; also <bits/socket.h>)
export const AF_UNSPEC = 0
export const AF_INET = 2
export const AF_NETLINK = 16

// <linux/netlink.h>
export const NETLINK_ROUTE = 0
export const NLMSG_ALIGNTO = 4
export const NLMSG_HDRLEN = 16 // sizeof(struct nlmsghdr): u32 len, u16 type, u16 flags, u32 seq, u32 pid
export const NLM_F_REQUEST = 0x01
export const NLM_F_MULTI = 0x02
export const NLM_F_ACK = 0x04
export const NLM_F_ECHO = 0x08
export const NLM_F_DUMP_INTR = 0x10
export const NLM_F_ROOT = 0x100 // GET requests
export const NLM_F_MATCH = 0x200 // GET requests
export const NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH
export const NLM_F_REPLACE = 0x100 // NEW requests
export const NLM_F_EXCL = 0x200 // NEW requests
export const NLM_F_CREATE = 0x400 // NEW requests
export const NLM_F_CAPPED = 0x100 // NLMSG_ERROR: the echoed request was cut to its header
export const NLM_F_ACK_TLVS = 0x200 // NLMSG_ERROR: extended-ack attributes follow
export const NLMSG_NOOP = 1
export const NLMSG_ERROR = 2
export const NLMSG_DONE = 3
export const NLMSG_OVERRUN = 4
export const NLMSGERR_ATTR_MSG = 1
export const NLMSGERR_ATTR_OFFS = 2
export const NLA_F_NESTED = 1 << 15
export const NLA_F_NET_BYTEORDER = 1 << 14
export const NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xffff
export const NLA_HDRLEN = 4 // sizeof(struct nlattr) == sizeof(struct rtattr): u16 len, u16 type
export const NETLINK_CAP_ACK = 10 // setsockopt(SOL_NETLINK): errors echo only the request header
export const NETLINK_EXT_ACK = 11 // setsockopt(SOL_NETLINK): errors carry a text message
export const SOL_NETLINK = 270 // <linux/socket.h>

// <linux/rtnetlink.h>
export const RTM_NEWLINK = 16
export const RTM_DELLINK = 17
export const RTM_GETLINK = 18
export const RTM_SETLINK = 19
export const RTM_NEWADDR = 20
export const RTM_DELADDR = 21
export const RTM_GETADDR = 22
export const RTM_NEWROUTE = 24
export const RTM_DELROUTE = 25
export const RTM_GETROUTE = 26
export const RTA_ALIGNTO = 4
export const RTA_DST = 1
export const RTA_SRC = 2
export const RTA_IIF = 3
export const RTA_OIF = 4
export const RTA_GATEWAY = 5
export const RTA_PRIORITY = 6
export const RTA_PREFSRC = 7
export const RTA_MULTIPATH = 9
export const RTA_TABLE = 15
export const RT_TABLE_UNSPEC = 0
export const RT_TABLE_DEFAULT = 253
export const RT_TABLE_MAIN = 254
export const RT_TABLE_LOCAL = 255
export const RTN_UNSPEC = 0
export const RTN_UNICAST = 1
export const RTN_LOCAL = 2
export const RTN_BROADCAST = 3
export const RTN_ANYCAST = 4
export const RTN_MULTICAST = 5
export const RTN_BLACKHOLE = 6
export const RTN_UNREACHABLE = 7
export const RTN_PROHIBIT = 8
export const RTN_THROW = 9
export const RT_SCOPE_UNIVERSE = 0
export const RT_SCOPE_LINK = 253
export const RT_SCOPE_HOST = 254
export const RTEXT_FILTER_VF = 1 << 0
export const RTEXT_FILTER_SKIP_STATS = 1 << 3
export const IFINFOMSG_LEN = 16 // struct ifinfomsg: u8 family, u8 pad, u16 type, i32 index, u32 flags, u32 change
export const RTMSG_LEN = 12 // struct rtmsg: 8 x u8 (family, dst_len, src_len, tos, table, protocol, scope, type), u32 flags
export const RTNEXTHOP_LEN = 8 // struct rtnexthop: u16 len, u8 flags, u8 hops, i32 ifindex

// <linux/if_addr.h>
export const IFADDRMSG_LEN = 8 // struct ifaddrmsg: u8 family, u8 prefixlen, u8 flags, u8 scope, u32 index
export const IFA_ADDRESS = 1
export const IFA_LOCAL = 2
export const IFA_LABEL = 3
export const IFA_BROADCAST = 4
export const IFA_FLAGS = 8
export const IFA_F_SECONDARY = 0x01
export const IFA_F_PERMANENT = 0x80

// <linux/if_link.h>
export const IFLA_ADDRESS = 1
export const IFLA_IFNAME = 3
export const IFLA_MTU = 4
export const IFLA_LINK = 5
export const IFLA_MASTER = 10
export const IFLA_OPERSTATE = 16
export const IFLA_LINKINFO = 18
export const IFLA_IFALIAS = 20
export const IFLA_GROUP = 27
export const IFLA_EXT_MASK = 29
export const IFLA_INFO_KIND = 1 // nested in IFLA_LINKINFO
export const IFLA_INFO_DATA = 2 // nested in IFLA_LINKINFO

// <linux/if.h>
export const IFF_UP = 0x1
export const IFF_RUNNING = 0x40
export const IFNAMSIZ = 16 // including the terminating NUL
