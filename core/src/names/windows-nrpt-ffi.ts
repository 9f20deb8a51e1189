// Thin koffi file: the advapi32 registry calls behind NrptRegistry (windows-nrpt.ts). Loaded with import() on Windows.
import { koffi } from '../util/koffi.js'
import { parseKoffiPrototypes } from '../util/win32-koffi.js'
import type { Prototype } from './windows-dns-flush.js'
import { DNSAPI_PROTOTYPES } from './windows-dns-flush.js'
import type { NrptRegistry } from './windows-nrpt.js'

export const ADVAPI32_REGISTRY_PROTOTYPES: readonly Prototype[] = [
  {
    dll: 'advapi32.dll',
    header: 'winreg.h',
    prototype:
      'LONG __stdcall RegCreateKeyExW(HKEY hKey, LPCWSTR lpSubKey, DWORD Reserved, LPWSTR lpClass, DWORD dwOptions, REGSAM samDesired, SECURITY_ATTRIBUTES *lpSecurityAttributes, _Out_ HKEY *phkResult, _Out_ DWORD *lpdwDisposition)',
  },
  { dll: 'advapi32.dll', header: 'winreg.h', prototype: 'LONG __stdcall RegSetValueExW(HKEY hKey, LPCWSTR lpValueName, DWORD Reserved, DWORD dwType, const BYTE *lpData, DWORD cbData)' },
  { dll: 'advapi32.dll', header: 'winreg.h', prototype: 'LONG __stdcall RegDeleteTreeW(HKEY hKey, LPCWSTR lpSubKey)' },
  { dll: 'advapi32.dll', header: 'winreg.h', prototype: 'LONG __stdcall RegDeleteKeyExW(HKEY hKey, LPCWSTR lpSubKey, REGSAM samDesired, DWORD Reserved)' },
  { dll: 'advapi32.dll', header: 'winreg.h', prototype: 'LONG __stdcall RegOpenKeyExW(HKEY hKey, LPCWSTR lpSubKey, DWORD ulOptions, REGSAM samDesired, _Out_ HKEY *phkResult)' },
  { dll: 'advapi32.dll', header: 'winreg.h', prototype: 'LONG __stdcall RegCloseKey(HKEY hKey)' },
]

/** The Win32 values these calls use (the headers named); names/windows-abi.json holds mingw-w64's, which a test compares. */
export const REGISTRY_ABI = {
  REG_OPTION_NON_VOLATILE: 0, // winnt.h
  KEY_SET_VALUE: 0x0002, // winnt.h
  KEY_READ: 0x20019, // winnt.h
  KEY_WOW64_64KEY: 0x0100, // winnt.h: the 64-bit view, also from a 32-bit Node
  ERROR_SUCCESS: 0, // winerror.h
} as const
const { REG_OPTION_NON_VOLATILE, KEY_SET_VALUE, KEY_READ, KEY_WOW64_64KEY, ERROR_SUCCESS } = REGISTRY_ABI

/**
 * HKEY_LOCAL_MACHINE is `(HKEY)(ULONG_PTR)((LONG)0x80000002)` (winreg.h): the sign-extended 32-bit value as a
 * pointer, 0xffffffff80000002 in a 64-bit process.
 */
export function hkeyLocalMachine(pointerBytes: number): bigint {
  return pointerBytes === 8 ? 0xffffffff80000002n : 0x80000002n
}

let declared = false
function declareTypes(): void {
  if (declared) return
  declared = true
  for (const [name, type] of [['LONG', 'int32_t'], ['DWORD', 'uint32_t'], ['REGSAM', 'uint32_t'], ['BYTE', 'uint8_t'], ['LPCWSTR', 'str16'], ['LPWSTR', 'char16_t *']] as const) {
    try {
      koffi.alias(name, type)
    } catch {
      // declared by another ngrokd module with the same meaning
    }
  }
  for (const declare of [() => koffi.pointer('HKEY', koffi.opaque('HKEY__')), () => koffi.opaque('SECURITY_ATTRIBUTES')]) {
    try {
      declare()
    } catch {
      // already declared
    }
  }
}

/** Parses the prototypes (koffi.proto) on any OS: a typo fails in the smoke test. */
export function parseRegistryPrototypes(): number {
  declareTypes()
  return parseKoffiPrototypes(koffi, [...ADVAPI32_REGISTRY_PROTOTYPES, ...DNSAPI_PROTOTYPES])
}

export function loadNrptRegistry(systemRoot: string): NrptRegistry {
  declareTypes()
  const lib = koffi.load(`${systemRoot}\\System32\\advapi32.dll`)
  const fn = Object.fromEntries(ADVAPI32_REGISTRY_PROTOTYPES.map((p) => [/(\w+)\(/.exec(p.prototype)![1]!, lib.func(p.prototype)]))
  const dns = koffi.load(`${systemRoot}\\System32\\dnsapi.dll`).func(DNSAPI_PROTOTYPES[0]!.prototype)
  const hklm = hkeyLocalMachine(koffi.sizeof('void *'))
  return {
    writeKey(keyPath, values) {
      const key: unknown[] = [null]
      const disposition = [0]
      const status = fn.RegCreateKeyExW!(hklm, keyPath, 0, null, REG_OPTION_NON_VOLATILE, KEY_SET_VALUE | KEY_WOW64_64KEY, null, key, disposition) as number
      if (status !== ERROR_SUCCESS) return { status, call: 'RegCreateKeyExW' }
      try {
        for (const v of values) {
          const s = fn.RegSetValueExW!(key[0], v.name, 0, v.type, v.data, v.data.length) as number
          if (s !== ERROR_SUCCESS) return { status: s, call: `RegSetValueExW(${v.name})` }
        }
        return { status: ERROR_SUCCESS, call: 'RegSetValueExW' }
      } finally {
        fn.RegCloseKey!(key[0])
      }
    },
    deleteKey(keyPath) {
      const status = fn.RegDeleteTreeW!(hklm, keyPath) as number // the values and any subkeys
      if (status !== ERROR_SUCCESS) return status
      return fn.RegDeleteKeyExW!(hklm, keyPath, KEY_WOW64_64KEY, 0) as number // then the key itself
    },
    openKey(keyPath) {
      const key: unknown[] = [null]
      const status = fn.RegOpenKeyExW!(hklm, keyPath, 0, KEY_READ | KEY_WOW64_64KEY, key) as number
      if (status === ERROR_SUCCESS) fn.RegCloseKey!(key[0])
      return status
    },
    flushDns: () => (dns() as number) !== 0,
  }
}
