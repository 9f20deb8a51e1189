// Thin koffi file: applies a control pipe's DACL after listen() and resolves control.group to a SID. Windows only.
import { koffi } from '../util/koffi.js'
import { declareSecurityTypes, parseKoffiPrototypes, WIN32_SECURITY_ABI, WIN32_SECURITY_PROTOTYPES, type Prototype } from '../util/win32-koffi.js'
import { NgrokdError, PermissionError, SyscallError } from '../errors/ngrokd-error.js'
import type { PipeOwner } from './windows-pipe-security.js'

export type { Prototype }

export const PIPE_SECURITY_PROTOTYPES: readonly Prototype[] = [
  ...WIN32_SECURITY_PROTOTYPES,
  {
    dll: 'advapi32.dll',
    header: 'securitybaseapi.h',
    prototype: 'BOOL __stdcall GetSecurityDescriptorDacl(PSECURITY_DESCRIPTOR pSecurityDescriptor, _Out_ BOOL *lpbDaclPresent, _Out_ PACL *pDacl, _Out_ BOOL *lpbDaclDefaulted)',
  },
  {
    dll: 'advapi32.dll',
    header: 'aclapi.h',
    prototype: 'DWORD __stdcall SetSecurityInfo(HANDLE handle, SE_OBJECT_TYPE ObjectType, SECURITY_INFORMATION SecurityInfo, PSID psidOwner, PSID psidGroup, PACL pDacl, PACL pSacl)',
  },
  {
    dll: 'advapi32.dll',
    header: 'winbase.h',
    prototype:
      'BOOL __stdcall LookupAccountNameW(LPCWSTR lpSystemName, LPCWSTR lpAccountName, PSID Sid, _Inout_ DWORD *cbSid, LPWSTR ReferencedDomainName, _Inout_ DWORD *cchReferencedDomainName, _Out_ SID_NAME_USE *peUse)',
  },
  { dll: 'advapi32.dll', header: 'sddl.h', prototype: 'BOOL __stdcall ConvertSidToStringSidW(PSID Sid, _Out_ PWSTR *StringSid)' },
  { dll: 'kernel32.dll', header: 'namedpipeapi.h', prototype: 'BOOL __stdcall WaitNamedPipeW(LPCWSTR lpNamedPipeName, DWORD nTimeOut)' },
]

/** The Win32 values these calls use (the headers named); control/windows-abi.json holds mingw-w64's, which a test compares. */
export const PIPE_SECURITY_ABI = {
  ...WIN32_SECURITY_ABI,
  WRITE_DAC: 0x00040000, // winnt.h
  WRITE_OWNER: 0x00080000, // winnt.h
  SE_KERNEL_OBJECT: 6, // accctrl.h SE_OBJECT_TYPE
  PROTECTED_DACL_SECURITY_INFORMATION: 0x80000000, // winnt.h: do not inherit ACEs
  ERROR_PIPE_BUSY: 231, // winerror.h
  SECURITY_MAX_SID_SIZE: 68, // winnt.h
  SidTypeGroup: 2, // winnt.h SID_NAME_USE
  SidTypeAlias: 4, // winnt.h: a local group such as BUILTIN\Users
  SidTypeWellKnownGroup: 5, // winnt.h
} as const
const { READ_CONTROL, WRITE_DAC, WRITE_OWNER, OPEN_EXISTING, SDDL_REVISION_1, SE_KERNEL_OBJECT, OWNER_SECURITY_INFORMATION, DACL_SECURITY_INFORMATION, PROTECTED_DACL_SECURITY_INFORMATION, ERROR_SUCCESS, ERROR_FILE_NOT_FOUND, ERROR_ACCESS_DENIED, ERROR_PIPE_BUSY, SECURITY_MAX_SID_SIZE, SidTypeGroup, SidTypeAlias, SidTypeWellKnownGroup } = PIPE_SECURITY_ABI
/** INVALID_HANDLE_VALUE is (HANDLE)(LONG_PTR)-1 (handleapi.h): all bits set at the pointer's width. */
const INVALID_HANDLE = (1n << BigInt(koffi.sizeof('void *') * 8)) - 1n

function declareTypes(): void {
  declareSecurityTypes(koffi)
}

export function parsePipeSecurityPrototypes(): number {
  declareTypes()
  return parseKoffiPrototypes(koffi, PIPE_SECURITY_PROTOTYPES)
}

export interface PipeSecurity {
  /**
   * Replaces the DACL of a pipe this process created (call right after listen()), and makes `ownerSid` its owner:
   * what a client checks before it sends a byte (pipeOwner).
   */
  applyDacl(pipePath: string, sddl: string, ownerSid: string): void
  /** The owner of a pipe, read through a connection of its own (waiting up to `waitMs` while every instance is busy). */
  pipeOwner(pipePath: string, waitMs: number): PipeOwner
  /** The DACL of a pipe as SDDL (for doctor: check what is really there). */
  readDacl(pipePath: string): string
  /** The string SID of a group, e.g. `ngrokd-readers` → `S-1-5-21-…`. */
  groupSid(name: string): string
}

/** The system's own kernel32 and advapi32. */
export function systemPipeSecurity(): PipeSecurity {
  return loadPipeSecurity(process.env.SystemRoot ?? 'C:\\Windows')
}

export function loadPipeSecurity(systemRoot: string): PipeSecurity {
  declareTypes()
  const sys = `${systemRoot}\\System32`
  const k32 = koffi.load(`${sys}\\kernel32.dll`)
  const adv = koffi.load(`${sys}\\advapi32.dll`)
  const fn = Object.fromEntries(PIPE_SECURITY_PROTOTYPES.map((p) => [/(\w+)\(/.exec(p.prototype)![1]!, (p.dll === 'kernel32.dll' ? k32 : adv).func(p.prototype)]))
  const lastError = () => fn.GetLastError!() as number
  const fail = (call: string, code: number, detail: string) =>
    code === ERROR_ACCESS_DENIED
      ? new PermissionError(`control: ${call} ${detail} refused: ERROR_ACCESS_DENIED (5)`, { hint: 'run ngrokd as Administrator (an elevated prompt, or the ngrokd Windows service)' })
      : new SyscallError(call, code, `Win32 error ${code}`, { detail })

  const openPipe = (pipePath: string, access: number): unknown => {
    const h = fn.CreateFileW!(pipePath, access, 0, null, OPEN_EXISTING, 0, null)
    if (h === null || koffi.address(h) === INVALID_HANDLE) throw fail('CreateFileW', lastError(), pipePath)
    return h
  }
  const sidText = (sid: unknown, what: string): string => {
    const text: unknown[] = [null]
    if (!fn.ConvertSidToStringSidW!(sid, text)) throw fail('ConvertSidToStringSidW', lastError(), what)
    try {
      return koffi.decode(text[0], 'char16_t', -1) as string
    } finally {
      fn.LocalFree!(text[0])
    }
  }
  /** The owner SID of an open pipe handle. */
  const ownerOf = (h: unknown, pipePath: string): string => {
    const owner: unknown[] = [null]
    const sd: unknown[] = [null]
    const status = fn.GetSecurityInfo!(h, SE_KERNEL_OBJECT, OWNER_SECURITY_INFORMATION, owner, null, null, null, sd) as number
    if (status !== ERROR_SUCCESS) throw fail('GetSecurityInfo', status, pipePath)
    try {
      return sidText(owner[0], pipePath) // points into sd
    } finally {
      fn.LocalFree!(sd[0])
    }
  }
  /** Sets the protected DACL of `sddl` and the owner on a pipe this process created. */
  const applyDescriptor = (pipePath: string, sddl: string, owner: unknown): void => {
    const sd: unknown[] = [null]
    if (!fn.ConvertStringSecurityDescriptorToSecurityDescriptorW!(sddl, SDDL_REVISION_1, sd, null)) {
      throw new NgrokdError('NGROKD_ERR_CONTROL', `control: bad SDDL ${sddl}: Win32 error ${lastError()}`)
    }
    try {
      const present = [0]
      const dacl: unknown[] = [null]
      const defaulted = [0]
      if (!fn.GetSecurityDescriptorDacl!(sd[0], present, dacl, defaulted)) throw fail('GetSecurityDescriptorDacl', lastError(), sddl)
      const h = openPipe(pipePath, READ_CONTROL | WRITE_DAC | WRITE_OWNER) // one connection of our own; the server sees it close at once
      try {
        const info = (OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION) >>> 0
        const status = fn.SetSecurityInfo!(h, SE_KERNEL_OBJECT, info, owner, null, dacl[0], null) as number
        if (status !== ERROR_SUCCESS) throw fail('SetSecurityInfo', status, pipePath)
      } finally {
        fn.CloseHandle!(h)
      }
    } finally {
      fn.LocalFree!(sd[0])
    }
  }

  return {
    applyDacl(pipePath, sddl, ownerSid) {
      const owner: unknown[] = [null]
      if (!fn.ConvertStringSidToSidW!(ownerSid, owner)) throw new NgrokdError('NGROKD_ERR_CONTROL', `control: bad owner SID ${ownerSid}: Win32 error ${lastError()}`)
      try {
        applyDescriptor(pipePath, sddl, owner[0])
      } finally {
        fn.LocalFree!(owner[0])
      }
    },
    pipeOwner(pipePath, waitMs) {
      const deadline = Date.now() + waitMs
      for (;;) {
        const h = fn.CreateFileW!(pipePath, READ_CONTROL, 0, null, OPEN_EXISTING, 0, null)
        if (h !== null && koffi.address(h) !== INVALID_HANDLE) {
          try {
            return { sid: ownerOf(h, pipePath) }
          } finally {
            fn.CloseHandle!(h)
          }
        }
        const code = lastError()
        if (code === ERROR_FILE_NOT_FOUND) return { unreadable: 'missing' }
        if (code === ERROR_ACCESS_DENIED) return { unreadable: 'denied' }
        if (code !== ERROR_PIPE_BUSY) throw fail('CreateFileW', code, pipePath)
        const left = deadline - Date.now()
        if (left <= 0) return { unreadable: 'busy' }
        fn.WaitNamedPipeW!(pipePath, Math.min(left, 1000)) // returns when an instance is free or the time is up
      }
    },
    readDacl(pipePath) {
      const h = openPipe(pipePath, READ_CONTROL)
      try {
        const dacl: unknown[] = [null]
        const sd: unknown[] = [null]
        const status = fn.GetSecurityInfo!(h, SE_KERNEL_OBJECT, DACL_SECURITY_INFORMATION, null, null, dacl, null, sd) as number
        if (status !== ERROR_SUCCESS) throw fail('GetSecurityInfo', status, pipePath)
        try {
          const text: unknown[] = [null]
          if (!fn.ConvertSecurityDescriptorToStringSecurityDescriptorW!(sd[0], SDDL_REVISION_1, DACL_SECURITY_INFORMATION, text, null)) {
            throw fail('ConvertSecurityDescriptorToStringSecurityDescriptorW', lastError(), pipePath)
          }
          try {
            return koffi.decode(text[0], 'char16_t', -1) as string
          } finally {
            fn.LocalFree!(text[0])
          }
        } finally {
          fn.LocalFree!(sd[0])
        }
      } finally {
        fn.CloseHandle!(h)
      }
    },
    groupSid(name) {
      const sid = Buffer.alloc(SECURITY_MAX_SID_SIZE)
      const sidSize = [sid.length]
      const domain = Buffer.alloc(512)
      const domainChars = [256]
      const use = [0]
      if (!fn.LookupAccountNameW!(null, name, sid, sidSize, domain, domainChars, use)) {
        throw new NgrokdError('NGROKD_ERR_CONTROL', `control.group "${name}" does not exist (LookupAccountNameW: Win32 error ${lastError()})`, {
          hint: 'create the local group (net localgroup <name> /add) or fix control.group',
        })
      }
      if (!([SidTypeGroup, SidTypeAlias, SidTypeWellKnownGroup] as number[]).includes(use[0]!)) {
        throw new NgrokdError('NGROKD_ERR_CONTROL', `control.group "${name}" is not a group`, { hint: 'name a local or domain group' })
      }
      return sidText(sid, name)
    },
  }
}
