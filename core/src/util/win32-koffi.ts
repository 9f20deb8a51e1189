// What ngrokd's Windows koffi files share: how a prototype is listed for the mingw-w64 probe and parsed by the smoke
// tests (also for drivers, through @ngrokd/core/driver), and the types of the security calls
// (windows-pipe-security-ffi.ts, windows-security-ffi.ts). koffi is handed in, not imported: a module
// that imports this one on every OS must not load it.
type Koffi = typeof import('koffi')

/**
 * The Win32 values both security modules use (windows-pipe-security-ffi.ts, windows-security-ffi.ts); each module's
 * table spreads them, and a test compares each table with mingw-w64's (control/ and util/windows-abi.json).
 */
export const WIN32_SECURITY_ABI = {
  READ_CONTROL: 0x00020000, // winnt.h
  OPEN_EXISTING: 3, // fileapi.h
  OWNER_SECURITY_INFORMATION: 0x00000001, // winnt.h
  DACL_SECURITY_INFORMATION: 0x00000004, // winnt.h
  SDDL_REVISION_1: 1, // sddl.h
  ERROR_SUCCESS: 0, // winerror.h
  ERROR_FILE_NOT_FOUND: 2, // winerror.h
  ERROR_ACCESS_DENIED: 5, // winerror.h
} as const

/** One Win32 function: its DLL, the header that declares it (the probe compiles it against mingw-w64's), its C prototype. */
export interface Prototype {
  dll: string
  header: string
  prototype: string
}

/**
 * The calls both security modules make (windows-pipe-security-ffi.ts, windows-security-ffi.ts); each module's
 * `*_PROTOTYPES` list spreads them, and the mingw-w64 probe compiles every list against the headers named.
 */
export const WIN32_SECURITY_PROTOTYPES: readonly Prototype[] = [
  {
    dll: 'kernel32.dll',
    header: 'fileapi.h',
    prototype:
      'HANDLE __stdcall CreateFileW(LPCWSTR lpFileName, DWORD dwDesiredAccess, DWORD dwShareMode, SECURITY_ATTRIBUTES *lpSecurityAttributes, DWORD dwCreationDisposition, DWORD dwFlagsAndAttributes, HANDLE hTemplateFile)',
  },
  { dll: 'kernel32.dll', header: 'handleapi.h', prototype: 'BOOL __stdcall CloseHandle(HANDLE hObject)' },
  { dll: 'kernel32.dll', header: 'errhandlingapi.h', prototype: 'DWORD __stdcall GetLastError()' },
  { dll: 'kernel32.dll', header: 'winbase.h', prototype: 'HLOCAL __stdcall LocalFree(HLOCAL hMem)' },
  {
    dll: 'advapi32.dll',
    header: 'sddl.h',
    prototype: 'BOOL __stdcall ConvertStringSecurityDescriptorToSecurityDescriptorW(LPCWSTR StringSecurityDescriptor, DWORD StringSDRevision, _Out_ PSECURITY_DESCRIPTOR *SecurityDescriptor, ULONG *SecurityDescriptorSize)',
  },
  {
    dll: 'advapi32.dll',
    header: 'aclapi.h',
    prototype:
      'DWORD __stdcall GetSecurityInfo(HANDLE handle, SE_OBJECT_TYPE ObjectType, SECURITY_INFORMATION SecurityInfo, _Out_ PSID *ppsidOwner, _Out_ PSID *ppsidGroup, _Out_ PACL *ppDacl, _Out_ PACL *ppSacl, _Out_ PSECURITY_DESCRIPTOR *ppSecurityDescriptor)',
  },
  {
    dll: 'advapi32.dll',
    header: 'sddl.h',
    prototype:
      'BOOL __stdcall ConvertSecurityDescriptorToStringSecurityDescriptorW(PSECURITY_DESCRIPTOR SecurityDescriptor, DWORD RequestedStringSDRevision, SECURITY_INFORMATION SecurityInformation, _Out_ PWSTR *StringSecurityDescriptor, ULONG *StringSecurityDescriptorLen)',
  },
  { dll: 'advapi32.dll', header: 'sddl.h', prototype: 'BOOL __stdcall ConvertStringSidToSidW(LPCWSTR StringSid, _Out_ PSID *Sid)' },
]

/** Declares a koffi type unless another ngrokd module declared it already, with the same meaning. */
export function tryDeclare(fn: () => unknown): void {
  try {
    fn()
  } catch {
    // declared by another ngrokd module with the same meaning
  }
}

/**
 * Parses each C prototype with koffi (a typo or an unknown type throws), as the declaration smoke tests do on any
 * OS, and returns how many. Each is parsed without its function name: koffi.proto() registers a named prototype as
 * a global type, so a second module declaring the same function (every Windows file declares GetLastError), or the
 * same parse run twice, would throw `Duplicate type name`.
 */
export function parseKoffiPrototypes(koffi: Koffi, prototypes: ReadonlyArray<{ prototype: string }>): number {
  for (const { prototype } of prototypes) {
    const anonymous = prototype.replace(/\b[A-Za-z_]\w*(?=\s*\()/, '')
    if (anonymous === prototype) throw new TypeError(`not a C prototype (no function name before its arguments): ${JSON.stringify(prototype)}`)
    koffi.proto(anonymous)
  }
  return prototypes.length
}

let declared = false
/** The types of the security calls (winnt.h, accctrl.h, sddl.h), declared once per process. */
export function declareSecurityTypes(koffi: Koffi): void {
  if (declared) return
  declared = true
  const aliases: Array<[string, string]> = [
    ['DWORD', 'uint32_t'],
    ['ULONG', 'uint32_t'],
    ['BOOL', 'int32_t'],
    ['SE_OBJECT_TYPE', 'int32_t'],
    ['SID_NAME_USE', 'int32_t'],
    ['SECURITY_INFORMATION', 'uint32_t'],
    ['LPCWSTR', 'str16'],
    ['LPWSTR', 'char16_t *'],
  ]
  for (const [name, type] of aliases) tryDeclare(() => koffi.alias(name, type))
  // PWSTR is LPWSTR in C (winnt.h), but as an out parameter it must stay a pointer: koffi turns a `char16_t *`
  // written back into a JS string, and the LocalAlloc'd original could then be neither read nor LocalFree'd.
  for (const [name, opaque] of [['HANDLE', 'HANDLE_OBJECT'], ['HLOCAL', 'HLOCAL_OBJECT'], ['PSID', 'SID'], ['PACL', 'ACL'], ['PSECURITY_DESCRIPTOR', 'SECURITY_DESCRIPTOR'], ['PWSTR', 'LOCAL_WSTR']] as const) {
    tryDeclare(() => koffi.pointer(name, koffi.opaque(opaque)))
  }
  tryDeclare(() => koffi.opaque('SECURITY_ATTRIBUTES'))
}
