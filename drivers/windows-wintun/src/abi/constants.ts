/**
 * Windows constants this driver uses, each with the header that defines it. Every value is checked against
 * mingw-w64's headers by probe/regenerate.mjs (probe/windows-abi.json; src/abi/abi.test.ts compares).
 */

export const AF_INET = 2 // ws2def.h
export const AF_INET6 = 23 // ws2def.h

export const IF_TYPE_SOFTWARE_LOOPBACK = 24 // ipifcons.h: the loopback pseudo-interface
export const IF_TYPE_PROP_VIRTUAL = 53 // ipifcons.h: what Wintun adapters report

export const IpPrefixOriginManual = 1 // nldef.h NL_PREFIX_ORIGIN
export const IpPrefixOriginUnchanged = 16 // nldef.h: what InitializeUnicastIpAddressEntry sets
export const IpSuffixOriginManual = 1 // nldef.h NL_SUFFIX_ORIGIN
export const IpSuffixOriginUnchanged = 16 // nldef.h
export const IpDadStateInvalid = 0 // nldef.h NL_DAD_STATE
export const IpDadStatePreferred = 4 // nldef.h: usable at once, no duplicate address detection

export const MAX_ADAPTER_NAME = 128 // ipexport.h, including the terminating NUL (wintun.h: "up to MAX_ADAPTER_NAME-1 characters")

export const ERROR_SUCCESS = 0 // winerror.h
export const ERROR_FILE_NOT_FOUND = 2 // winerror.h: WintunGetRunningDriverVersion: "Wintun not loaded"
export const ERROR_PATH_NOT_FOUND = 3 // winerror.h
export const ERROR_ACCESS_DENIED = 5 // winerror.h
export const ERROR_INVALID_HANDLE = 6 // winerror.h
export const ERROR_HANDLE_EOF = 38 // winerror.h: WintunReceivePacket: the adapter is terminating
export const ERROR_INVALID_PARAMETER = 87 // winerror.h
export const ERROR_MOD_NOT_FOUND = 126 // winerror.h: LoadLibrary: the file or a dependency is missing
export const ERROR_BAD_EXE_FORMAT = 193 // winerror.h: LoadLibrary: a DLL of another architecture
export const ERROR_ALREADY_EXISTS = 183 // winerror.h
export const ERROR_NO_MORE_ITEMS = 259 // winerror.h: WintunReceivePacket: the ring is empty
export const ERROR_INVALID_DATA = 13 // winerror.h: WintunReceivePacket: the ring is corrupt
export const ERROR_ALREADY_INITIALIZED = 1247 // winerror.h: WintunStartSession while another session holds the adapter
export const ERROR_NOT_FOUND = 1168 // winerror.h: DeleteUnicastIpAddressEntry of an absent address; WintunOpenAdapter of an absent adapter
export const ERROR_DUP_NAME = 52 // winerror.h
export const ERROR_OBJECT_ALREADY_EXISTS = 5010 // winerror.h: CreateUnicastIpAddressEntry of a present address

export const INFINITE = 0xffffffff // winbase.h
export const WAIT_OBJECT_0 = 0 // winbase.h
export const WAIT_FAILED = 0xffffffff // winbase.h

/** Ring capacity bounds of a Wintun session — wintun.h (a power of two in between). */
export const WINTUN_MIN_RING_CAPACITY = 0x20000
export const WINTUN_MAX_RING_CAPACITY = 0x4000000
export const WINTUN_MAX_IP_PACKET_SIZE = 0xffff // wintun.h

/** Symbolic names of the Win32 errors this driver can meet, for messages. */
const NAMES: Readonly<Record<number, string>> = {
  [ERROR_SUCCESS]: 'ERROR_SUCCESS',
  [ERROR_FILE_NOT_FOUND]: 'ERROR_FILE_NOT_FOUND',
  [ERROR_PATH_NOT_FOUND]: 'ERROR_PATH_NOT_FOUND',
  [ERROR_ACCESS_DENIED]: 'ERROR_ACCESS_DENIED',
  [ERROR_INVALID_HANDLE]: 'ERROR_INVALID_HANDLE',
  [ERROR_INVALID_DATA]: 'ERROR_INVALID_DATA',
  [ERROR_HANDLE_EOF]: 'ERROR_HANDLE_EOF',
  [ERROR_DUP_NAME]: 'ERROR_DUP_NAME',
  [ERROR_INVALID_PARAMETER]: 'ERROR_INVALID_PARAMETER',
  [ERROR_MOD_NOT_FOUND]: 'ERROR_MOD_NOT_FOUND',
  [ERROR_ALREADY_EXISTS]: 'ERROR_ALREADY_EXISTS',
  [ERROR_BAD_EXE_FORMAT]: 'ERROR_BAD_EXE_FORMAT',
  [ERROR_NO_MORE_ITEMS]: 'ERROR_NO_MORE_ITEMS',
  [ERROR_NOT_FOUND]: 'ERROR_NOT_FOUND',
  [ERROR_ALREADY_INITIALIZED]: 'ERROR_ALREADY_INITIALIZED',
  [ERROR_OBJECT_ALREADY_EXISTS]: 'ERROR_OBJECT_ALREADY_EXISTS',
}

export function win32ErrorName(code: number): string {
  return NAMES[code] ?? `Win32 error ${code}`
}
