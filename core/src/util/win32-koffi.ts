// What ngrokd's Windows koffi files share: how a prototype is listed for the mingw-w64 probe, and the types of the
// security calls (windows-pipe-security-ffi.ts, windows-security-ffi.ts). koffi is handed in, not imported: a module
// that imports this one on every OS must not load it.
type Koffi = typeof import('koffi')

/** One Win32 function: its DLL, the header that declares it (the probe compiles it against mingw-w64's), its C prototype. */
export interface Prototype {
  dll: string
  header: string
  prototype: string
}

/** Declares a koffi type unless another ngrokd module declared it already, with the same meaning. */
export function tryDeclare(fn: () => unknown): void {
  try {
    fn()
  } catch {
    // declared by another ngrokd module with the same meaning
  }
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
