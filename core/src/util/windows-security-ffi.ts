// Thin koffi file: a file's or folder's security descriptor as SDDL, a folder created with its descriptor, and
// whether this process is elevated. Windows only; koffi is loaded on the first call, not by importing this module
// (trusted-path.ts imports it on every OS).
type Koffi = typeof import('koffi')
import { requireCommonJs } from './commonjs.js'
import { SyscallError } from '../errors/ngrokd-error.js'
import { declareSecurityTypes, WIN32_SECURITY_ABI, WIN32_SECURITY_PROTOTYPES, type Prototype } from './win32-koffi.js'

export type { Prototype }

/** Checked against mingw-w64's headers by drivers/windows-wintun/probe/regenerate.mjs, as every *_PROTOTYPES list is. */
export const FILE_SECURITY_PROTOTYPES: readonly Prototype[] = [
  ...WIN32_SECURITY_PROTOTYPES,
  { dll: 'kernel32.dll', header: 'fileapi.h', prototype: 'BOOL __stdcall CreateDirectoryW(LPCWSTR lpPathName, SECURITY_ATTRIBUTES *lpSecurityAttributes)' },
  { dll: 'advapi32.dll', header: 'securitybaseapi.h', prototype: 'BOOL __stdcall CheckTokenMembership(HANDLE TokenHandle, PSID SidToCheck, _Out_ BOOL *IsMember)' },
]

/** The Win32 values these calls use (the headers named); util/windows-abi.json holds mingw-w64's, which a test compares. */
export const FILE_SECURITY_ABI = {
  ...WIN32_SECURITY_ABI,
  FILE_SHARE_READ: 0x1, // winnt.h
  FILE_SHARE_WRITE: 0x2, // winnt.h
  FILE_SHARE_DELETE: 0x4, // winnt.h
  FILE_FLAG_BACKUP_SEMANTICS: 0x02000000, // winbase.h: needed to open a directory's handle
  SE_FILE_OBJECT: 1, // accctrl.h SE_OBJECT_TYPE
  ERROR_PATH_NOT_FOUND: 3, // winerror.h
  ERROR_ALREADY_EXISTS: 183, // winerror.h
} as const
const { READ_CONTROL, OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, SE_FILE_OBJECT, OWNER_SECURITY_INFORMATION, DACL_SECURITY_INFORMATION, SDDL_REVISION_1 } = FILE_SECURITY_ABI
const { ERROR_SUCCESS, ERROR_FILE_NOT_FOUND, ERROR_PATH_NOT_FOUND, ERROR_ACCESS_DENIED, ERROR_ALREADY_EXISTS } = FILE_SECURITY_ABI
const FILE_SHARE_ALL = FILE_SECURITY_ABI.FILE_SHARE_READ | FILE_SECURITY_ABI.FILE_SHARE_WRITE | FILE_SECURITY_ABI.FILE_SHARE_DELETE

/**
 * SECURITY_ATTRIBUTES (minwinbase.h) for a descriptor at `descriptor`, not inherited: DWORD nLength; LPVOID
 * lpSecurityDescriptor; BOOL bInheritHandle — the pointer aligned to its size: 24 bytes on x64 (8, 16), 12 on x86 (4, 8).
 */
export function encodeSecurityAttributes(pointerSize: number, descriptor: bigint): Buffer {
  const sa = Buffer.alloc(pointerSize * 3)
  sa.writeUInt32LE(sa.length, 0)
  if (pointerSize === 8) sa.writeBigUInt64LE(descriptor, 8)
  else sa.writeUInt32LE(Number(descriptor), 4)
  sa.writeInt32LE(0, pointerSize * 2)
  return sa
}

/** BUILTIN\Administrators (winnt.h SECURITY_BUILTIN_DOMAIN_RID 32, DOMAIN_ALIAS_RID_ADMINS 544). */
const ADMINISTRATORS_SID = 'S-1-5-32-544'

export interface WindowsFileSecurity {
  /**
   * The owner and DACL of a file or folder as SDDL (`O:BAD:P(A;OICI;FA;;;SY)…`), through a handle opened for
   * READ_CONTROL only; a link is followed, as a read of the file would.
   * @throws an error with code `ENOENT` when it is missing, `EACCES` when its descriptor may not be read.
   */
  readSddl(path: string): string
  /**
   * Creates a folder whose security descriptor is `sddl` from its first moment (no window with the inherited one).
   * Resolves false when it already exists (made by someone else: judge it).
   * @throws an error with code `ENOENT` (its parent is missing) or `EACCES`.
   */
  createDirectory(path: string, sddl: string): boolean
  /** Whether this process's token holds Administrators enabled: an elevated administrator, or LocalSystem. */
  isElevated(): boolean
}

let system: WindowsFileSecurity | undefined
/** The system's own kernel32 and advapi32, loaded once. */
export function systemFileSecurity(): WindowsFileSecurity {
  return (system ??= loadFileSecurity(process.env.SystemRoot ?? 'C:\\Windows'))
}

export function loadFileSecurity(systemRoot: string): WindowsFileSecurity {
  const koffi = requireCommonJs('koffi') as Koffi
  declareSecurityTypes(koffi)
  const sys = `${systemRoot}\\System32`
  const k32 = koffi.load(`${sys}\\kernel32.dll`)
  const adv = koffi.load(`${sys}\\advapi32.dll`)
  const fn = Object.fromEntries(FILE_SECURITY_PROTOTYPES.map((p) => [/(\w+)\(/.exec(p.prototype)![1]!, (p.dll === 'kernel32.dll' ? k32 : adv).func(p.prototype)]))
  const pointerSize = koffi.sizeof('void *')
  /** INVALID_HANDLE_VALUE is (HANDLE)(LONG_PTR)-1 (handleapi.h): all bits set at the pointer's width. */
  const invalidHandle = (1n << BigInt(pointerSize * 8)) - 1n
  const lastError = () => fn.GetLastError!() as number
  /** A Win32 error as the errno-coded error Node's fs would give, where there is one; else a SyscallError. */
  const fail = (call: string, code: number, path: string): Error => {
    const errno = code === ERROR_FILE_NOT_FOUND || code === ERROR_PATH_NOT_FOUND ? 'ENOENT' : code === ERROR_ACCESS_DENIED ? 'EACCES' : undefined
    if (errno) return Object.assign(new Error(`${errno}: ${call} ${path}: Win32 error ${code}`), { code: errno, path })
    return new SyscallError(call, code, `Win32 error ${code}`, { detail: path })
  }
  const wide = (p: unknown): string => {
    try {
      return koffi.decode(p, 'char16_t', -1) as string
    } finally {
      fn.LocalFree!(p)
    }
  }

  return {
    readSddl(path) {
      const h = fn.CreateFileW!(path, READ_CONTROL, FILE_SHARE_ALL, null, OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, null)
      if (h === null || koffi.address(h) === invalidHandle) throw fail('CreateFileW', lastError(), path)
      try {
        const sd: unknown[] = [null]
        const info = OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION
        const status = fn.GetSecurityInfo!(h, SE_FILE_OBJECT, info, null, null, null, null, sd) as number
        if (status !== ERROR_SUCCESS) throw fail('GetSecurityInfo', status, path)
        try {
          const text: unknown[] = [null]
          if (!fn.ConvertSecurityDescriptorToStringSecurityDescriptorW!(sd[0], SDDL_REVISION_1, info, text, null)) {
            throw fail('ConvertSecurityDescriptorToStringSecurityDescriptorW', lastError(), path)
          }
          return wide(text[0])
        } finally {
          fn.LocalFree!(sd[0])
        }
      } finally {
        fn.CloseHandle!(h)
      }
    },
    createDirectory(path, sddl) {
      const sd: unknown[] = [null]
      if (!fn.ConvertStringSecurityDescriptorToSecurityDescriptorW!(sddl, SDDL_REVISION_1, sd, null)) throw fail('ConvertStringSecurityDescriptorToSecurityDescriptorW', lastError(), sddl)
      try {
        if (fn.CreateDirectoryW!(path, encodeSecurityAttributes(pointerSize, koffi.address(sd[0])))) return true
        const code = lastError()
        if (code === ERROR_ALREADY_EXISTS) return false
        throw fail('CreateDirectoryW', code, path)
      } finally {
        fn.LocalFree!(sd[0])
      }
    },
    isElevated() {
      const sid: unknown[] = [null]
      if (!fn.ConvertStringSidToSidW!(ADMINISTRATORS_SID, sid)) throw fail('ConvertStringSidToSidW', lastError(), ADMINISTRATORS_SID)
      try {
        const member = [0]
        // a NULL token: the thread's own (its process token when not impersonating); a filtered admin token holds
        // Administrators for deny only, which counts as not a member
        if (!fn.CheckTokenMembership!(null, sid[0], member)) throw fail('CheckTokenMembership', lastError(), ADMINISTRATORS_SID)
        return member[0] !== 0
      } finally {
        fn.LocalFree!(sid[0])
      }
    },
  }
}
