// The only file of this driver that touches koffi. Loaded with import() when the driver is created on Windows,
// and by the declaration smoke test on any OS.
//
// Every prototype is written with the Windows type names, so probe/regenerate.mjs can compile the same text
// against mingw-w64's headers (and wintun.h) and fail on any mismatch. koffi only adds `_Out_`.
import { createRequire } from 'node:module'
import type { LibraryHandle } from 'koffi'
import { NgrokdError, parseKoffiPrototypes } from '@ngrokd/core/driver'
import type { WindowsNetApi, WintunApi } from '../windows-net-api.js'
import { MIB_UNICASTIPADDRESS_ROW_SIZE, MIB_UNICASTIPADDRESS_TABLE_ROWS_OFFSET, NET_LUID_SIZE } from '../abi/structs.js'
import { INFINITE, WAIT_OBJECT_0, ERROR_SUCCESS } from '../abi/constants.js'

// koffi by its CommonJS entry, as core loads it (core's util/commonjs.ts says why): one copy of its code in the process
const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi')

export interface Prototype {
  dll: string
  /** The header that declares it (wintun.h has only typedefs: WINTUN_<NAME>_FUNC). */
  header: string
  prototype: string
}

export const IPHLPAPI_PROTOTYPES: readonly Prototype[] = [
  { dll: 'iphlpapi.dll', header: 'netioapi.h', prototype: 'void __stdcall InitializeUnicastIpAddressEntry(_Out_ MIB_UNICASTIPADDRESS_ROW *Row)' },
  { dll: 'iphlpapi.dll', header: 'netioapi.h', prototype: 'DWORD __stdcall CreateUnicastIpAddressEntry(const MIB_UNICASTIPADDRESS_ROW *Row)' },
  { dll: 'iphlpapi.dll', header: 'netioapi.h', prototype: 'DWORD __stdcall DeleteUnicastIpAddressEntry(const MIB_UNICASTIPADDRESS_ROW *Row)' },
  { dll: 'iphlpapi.dll', header: 'netioapi.h', prototype: 'DWORD __stdcall GetUnicastIpAddressTable(ADDRESS_FAMILY Family, _Out_ MIB_UNICASTIPADDRESS_TABLE **Table)' },
  { dll: 'iphlpapi.dll', header: 'netioapi.h', prototype: 'void __stdcall FreeMibTable(void *Memory)' },
]

export const KERNEL32_PROTOTYPES: readonly Prototype[] = [
  { dll: 'kernel32.dll', header: 'errhandlingapi.h', prototype: 'DWORD __stdcall GetLastError()' },
  { dll: 'kernel32.dll', header: 'synchapi.h', prototype: 'DWORD __stdcall WaitForSingleObject(HANDLE hHandle, DWORD dwMilliseconds)' },
  { dll: 'kernel32.dll', header: 'synchapi.h', prototype: 'BOOL __stdcall SetEvent(HANDLE hEvent)' },
  { dll: 'kernel32.dll', header: 'winbase.h', prototype: 'HLOCAL __stdcall LocalFree(HLOCAL hMem)' },
]

export const ADVAPI32_PROTOTYPES: readonly Prototype[] = [
  { dll: 'advapi32.dll', header: 'sddl.h', prototype: 'BOOL __stdcall ConvertStringSidToSidW(LPCWSTR StringSid, _Out_ PSID *Sid)' },
  { dll: 'advapi32.dll', header: 'securitybaseapi.h', prototype: 'BOOL __stdcall CheckTokenMembership(HANDLE TokenHandle, PSID SidToCheck, _Out_ BOOL *IsMember)' },
]

export const WINTUN_PROTOTYPES: readonly Prototype[] = [
  { dll: 'wintun.dll', header: 'wintun.h', prototype: 'WINTUN_ADAPTER_HANDLE __stdcall WintunCreateAdapter(LPCWSTR Name, LPCWSTR TunnelType, const GUID *RequestedGUID)' },
  { dll: 'wintun.dll', header: 'wintun.h', prototype: 'WINTUN_ADAPTER_HANDLE __stdcall WintunOpenAdapter(LPCWSTR Name)' },
  { dll: 'wintun.dll', header: 'wintun.h', prototype: 'void __stdcall WintunCloseAdapter(WINTUN_ADAPTER_HANDLE Adapter)' },
  { dll: 'wintun.dll', header: 'wintun.h', prototype: 'BOOL __stdcall WintunDeleteDriver()' },
  { dll: 'wintun.dll', header: 'wintun.h', prototype: 'void __stdcall WintunGetAdapterLUID(WINTUN_ADAPTER_HANDLE Adapter, _Out_ NET_LUID *Luid)' },
  { dll: 'wintun.dll', header: 'wintun.h', prototype: 'DWORD __stdcall WintunGetRunningDriverVersion()' },
  { dll: 'wintun.dll', header: 'wintun.h', prototype: 'WINTUN_SESSION_HANDLE __stdcall WintunStartSession(WINTUN_ADAPTER_HANDLE Adapter, DWORD Capacity)' },
  { dll: 'wintun.dll', header: 'wintun.h', prototype: 'void __stdcall WintunEndSession(WINTUN_SESSION_HANDLE Session)' },
  { dll: 'wintun.dll', header: 'wintun.h', prototype: 'HANDLE __stdcall WintunGetReadWaitEvent(WINTUN_SESSION_HANDLE Session)' },
  { dll: 'wintun.dll', header: 'wintun.h', prototype: 'BYTE * __stdcall WintunReceivePacket(WINTUN_SESSION_HANDLE Session, _Out_ DWORD *PacketSize)' },
  { dll: 'wintun.dll', header: 'wintun.h', prototype: 'void __stdcall WintunReleaseReceivePacket(WINTUN_SESSION_HANDLE Session, const BYTE *Packet)' },
]

export const ALL_PROTOTYPES: readonly Prototype[] = [...IPHLPAPI_PROTOTYPES, ...KERNEL32_PROTOTYPES, ...ADVAPI32_PROTOTYPES, ...WINTUN_PROTOTYPES]

let declared = false

/**
 * Declares the Windows types the prototypes name (idempotent). Works on any OS: nothing is loaded.
 * Layouts: see src/abi/structs.ts; the declaration smoke test compares koffi's sizes and offsets with
 * the mingw-w64 numbers in probe/windows-abi.json.
 */
export function declareWin32Types(): void {
  if (declared) return
  declared = true
  once(() => koffi.alias('DWORD', 'uint32_t')) // minwindef.h: unsigned long (32 bits on Windows)
  once(() => koffi.alias('ULONG', 'uint32_t'))
  once(() => koffi.alias('BOOL', 'int32_t')) // minwindef.h: int
  once(() => koffi.alias('BYTE', 'uint8_t'))
  once(() => koffi.alias('ADDRESS_FAMILY', 'uint16_t')) // ws2def.h: USHORT
  once(() => koffi.alias('LPCWSTR', 'str16'))
  once(() => koffi.pointer('HANDLE', koffi.opaque('HANDLE_OBJECT')))
  once(() => koffi.pointer('HLOCAL', koffi.opaque('HLOCAL_OBJECT')))
  once(() => koffi.pointer('PSID', koffi.opaque('SID')))
  once(() => koffi.pointer('WINTUN_ADAPTER_HANDLE', koffi.opaque('WINTUN_ADAPTER'))) // wintun.h: struct _WINTUN_ADAPTER *
  once(() => koffi.pointer('WINTUN_SESSION_HANDLE', koffi.opaque('TUN_SESSION'))) // wintun.h: struct _TUN_SESSION *
  once(() => koffi.struct('GUID', { Data1: 'uint32_t', Data2: 'uint16_t', Data3: 'uint16_t', Data4: koffi.array('uint8_t', 8) })) // guiddef.h
  once(() => koffi.struct('NET_LUID', { Value: 'uint64_t' })) // ifdef.h: union of ULONG64 Value and bitfields Info
  once(() => koffi.struct('SOCKADDR_IN', { sin_family: 'uint16_t', sin_port: 'uint16_t', sin_addr: 'uint32_t', sin_zero: koffi.array('uint8_t', 8) })) // ws2def.h
  once(() => koffi.struct('SOCKADDR_IN6', {
    sin6_family: 'uint16_t',
    sin6_port: 'uint16_t',
    sin6_flowinfo: 'uint32_t',
    sin6_addr: koffi.array('uint8_t', 16),
    sin6_scope_id: 'uint32_t',
  })) // ws2ipdef.h
  once(() => koffi.union('SOCKADDR_INET', { Ipv4: 'SOCKADDR_IN', Ipv6: 'SOCKADDR_IN6', si_family: 'uint16_t' })) // ws2ipdef.h
  once(() => koffi.struct('MIB_UNICASTIPADDRESS_ROW', {
    Address: 'SOCKADDR_INET',
    InterfaceLuid: 'NET_LUID',
    InterfaceIndex: 'uint32_t',
    PrefixOrigin: 'int32_t',
    SuffixOrigin: 'int32_t',
    ValidLifetime: 'uint32_t',
    PreferredLifetime: 'uint32_t',
    OnLinkPrefixLength: 'uint8_t',
    SkipAsSource: 'uint8_t', // BOOLEAN
    DadState: 'int32_t',
    ScopeId: 'uint32_t',
    CreationTimeStamp: 'int64_t', // LARGE_INTEGER
  })) // netioapi.h
  once(() => koffi.opaque('MIB_UNICASTIPADDRESS_TABLE')) // netioapi.h: ULONG NumEntries; MIB_UNICASTIPADDRESS_ROW Table[]
}

/** Declares a type unless it is declared already (ngrokd's core declares the same Windows names, with the same meaning). */
function once(declare: () => unknown): void {
  try {
    declare()
  } catch (e) {
    if (!/duplicate|already/i.test((e as Error).message)) throw e
  }
}

/** Parses every prototype (koffi.proto, without the names: safe beside core's declarations and when run again): a typo or an unknown type fails here, on any OS. */
export function parseWin32Prototypes(prototypes: readonly Prototype[] = ALL_PROTOTYPES): number {
  declareWin32Types()
  return parseKoffiPrototypes(koffi, prototypes)
}

type Fn = ReturnType<LibraryHandle['func']>

function declare(lib: LibraryHandle, prototypes: readonly Prototype[]): Record<string, Fn> {
  const out: Record<string, Fn> = {}
  for (const p of prototypes) {
    const name = /(\w+)\(/.exec(p.prototype)![1]!
    out[name] = lib.func(p.prototype)
  }
  return out
}

/** Pointers come back as koffi externals (or null); this gives their address, 0n for NULL. */
function address(pointer: unknown): bigint {
  if (pointer === null || pointer === undefined) return 0n
  return koffi.address(pointer)
}

/** iphlpapi + kernel32 + advapi32, from System32 (never from the DLL search path). */
export function loadWindowsNetApi(systemRoot: string): WindowsNetApi {
  declareWin32Types()
  const system32 = `${systemRoot}\\System32`
  const ip = declare(koffi.load(`${system32}\\iphlpapi.dll`), IPHLPAPI_PROTOTYPES)
  const k32 = declare(koffi.load(`${system32}\\kernel32.dll`), KERNEL32_PROTOTYPES)
  const adv = declare(koffi.load(`${system32}\\advapi32.dll`), ADVAPI32_PROTOTYPES)
  return {
    initializeUnicastIpAddressEntry(row) {
      ip.InitializeUnicastIpAddressEntry!(row)
    },
    createUnicastIpAddressEntry: (row) => ip.CreateUnicastIpAddressEntry!(row) as number,
    deleteUnicastIpAddressEntry: (row) => ip.DeleteUnicastIpAddressEntry!(row) as number,
    getUnicastIpAddressTable(family) {
      const out: unknown[] = [null]
      const status = ip.GetUnicastIpAddressTable!(family, out) as number
      if (status !== ERROR_SUCCESS) return { status, rows: Buffer.alloc(0) }
      const table = out[0]
      try {
        const count = Buffer.from(koffi.view(table, 4)).readUInt32LE(0)
        const length = MIB_UNICASTIPADDRESS_TABLE_ROWS_OFFSET + count * MIB_UNICASTIPADDRESS_ROW_SIZE
        return { status, rows: Buffer.from(Buffer.from(koffi.view(table, length)).subarray(MIB_UNICASTIPADDRESS_TABLE_ROWS_OFFSET)) }
      } finally {
        ip.FreeMibTable!(table)
      }
    },
    isAdministrator() {
      const sid: unknown[] = [null]
      if (!adv.ConvertStringSidToSidW!('S-1-5-32-544', sid)) return false // BUILTIN\Administrators
      try {
        const member = [0]
        return Boolean(adv.CheckTokenMembership!(null, sid[0], member)) && member[0] !== 0
      } finally {
        k32.LocalFree!(sid[0])
      }
    },
    lastError: () => k32.GetLastError!() as number,
  }
}

/** wintun.dll from an absolute path, with the kernel32 calls its read loop needs. */
export function loadWintun(dllPath: string, systemRoot: string): WintunApi {
  declareWin32Types()
  let lib: LibraryHandle
  try {
    lib = koffi.load(dllPath)
  } catch (cause) {
    throw new NgrokdError('NGROKD_ERR_DRIVER_LIBRARY', `windows-wintun: cannot load ${dllPath}: ${(cause as Error).message}`, {
      cause,
      hint: 'download wintun.dll for this architecture from https://www.wintun.net and set net.driver_options.wintun_dll to its absolute path',
    })
  }
  const w = declare(lib, WINTUN_PROTOTYPES)
  const k32 = declare(koffi.load(`${systemRoot}\\System32\\kernel32.dll`), KERNEL32_PROTOTYPES)
  const lastError = () => k32.GetLastError!() as number
  return {
    path: dllPath,
    createAdapter(name, tunnelType, guid) {
      const handle = address(w.WintunCreateAdapter!(name, tunnelType, guid))
      return handle === 0n ? { handle, error: lastError() } : { handle, error: 0 }
    },
    openAdapter(name) {
      const handle = address(w.WintunOpenAdapter!(name))
      return handle === 0n ? { handle, error: lastError() } : { handle, error: 0 }
    },
    closeAdapter(adapter) {
      w.WintunCloseAdapter!(adapter)
    },
    deleteDriver: () => (w.WintunDeleteDriver!() as number) !== 0 || lastError() === 0,
    getAdapterLuid(adapter) {
      const luid = Buffer.alloc(NET_LUID_SIZE)
      w.WintunGetAdapterLUID!(adapter, luid)
      return luid
    },
    runningDriverVersion() {
      const version = w.WintunGetRunningDriverVersion!() as number
      return version === 0 ? { version, error: lastError() } : { version, error: 0 }
    },
    startSession(adapter, capacity) {
      const handle = address(w.WintunStartSession!(adapter, capacity))
      return handle === 0n ? { handle, error: lastError() } : { handle, error: 0 }
    },
    endSession(session) {
      w.WintunEndSession!(session)
    },
    readWaitEvent: (session) => address(w.WintunGetReadWaitEvent!(session)),
    receivePacket(session) {
      const size = [0]
      const packet = w.WintunReceivePacket!(session, size)
      if (packet === null) return { size: 0, error: lastError() }
      w.WintunReleaseReceivePacket!(session, packet) // read and dropped: nothing is routed here on purpose
      return { size: size[0]!, error: 0 }
    },
    waitForEvent(event) {
      return new Promise((resolve, reject) => {
        k32.WaitForSingleObject!.async(event, INFINITE, (err: unknown, result: number) => {
          if (err) reject(err)
          else resolve(result === WAIT_OBJECT_0 ? 'signalled' : 'failed')
        })
      })
    },
    setEvent(event) {
      k32.SetEvent!(event)
    },
  }
}
