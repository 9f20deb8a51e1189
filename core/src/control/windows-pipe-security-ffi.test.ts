import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { linkSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { koffi } from '../util/koffi.js'
import { loadPipeSecurity, type PipeSecurity } from './windows-pipe-security-ffi.js'

// Runs the real koffi declarations of windows-pipe-security-ffi.ts over stand-in kernel32/advapi32 libraries that
// keep the Win32 contracts these calls rely on (sddl.h, aclapi.h, winbase.h): out strings and descriptors are
// LocalAlloc'd and must come back to LocalFree, BOOL calls report through GetLastError. Built with the machine's C
// compiler; the Windows calling convention itself is checked by probe/regenerate.mjs against mingw-w64's headers.
const STAND_IN = String.raw`
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
static uint32_t last_error;
static void *live[16];
static int live_count;
static void *local_alloc(size_t n) { void *p = calloc(1, n); live[live_count++] = p; return p; }
static uint16_t *wide(const char *s) { size_t n = strlen(s); uint16_t *o = local_alloc((n + 1) * 2); for (size_t i = 0; i <= n; i++) o[i] = (unsigned char)s[i]; return o; }
static int wide_equals(const uint16_t *w, const char *s) { while (*s) if (*w++ != (unsigned char)*s++) return 0; return *w == 0; }
uint32_t GetLastError(void) { return last_error; }
void *LocalFree(void *p) {
  for (int i = 0; i < live_count; i++) if (live[i] == p) { free(p); live[i] = live[--live_count]; return 0; }
  last_error = 6; /* ERROR_INVALID_HANDLE: not a pointer this library handed out */
  return p;
}
int LiveAllocations(void) { return live_count; }
static int busy_left = 1; /* \\.\pipe\busy: every instance taken until one WaitNamedPipeW */
void *CreateFileW(const uint16_t *name, uint32_t access, uint32_t share, void *sa, uint32_t disposition, uint32_t flags, void *tmpl) {
  if (wide_equals(name, "\\\\.\\pipe\\ngrokd")) return (void *)0x1234;
  if (wide_equals(name, "\\\\.\\pipe\\squatted")) return (void *)0x5678;
  if (wide_equals(name, "\\\\.\\pipe\\busy")) { if (busy_left) { last_error = 231; return (void *)(intptr_t)-1; } return (void *)0x1234; } /* ERROR_PIPE_BUSY */
  if (wide_equals(name, "\\\\.\\pipe\\locked")) { last_error = 5; return (void *)(intptr_t)-1; } /* ERROR_ACCESS_DENIED */
  last_error = 2; return (void *)(intptr_t)-1; /* ERROR_FILE_NOT_FOUND */
}
int WaitNamedPipeW(const uint16_t *name, uint32_t timeout) { busy_left = 0; return 1; }
int CloseHandle(void *h) { return h == (void *)0x1234 || h == (void *)0x5678; }
int LookupAccountNameW(const uint16_t *sys, const uint16_t *name, uint8_t *sid, uint32_t *cb, uint16_t *dom, uint32_t *cch, int32_t *use) {
  if (!wide_equals(name, "ngrokd-readers")) { last_error = 1332; return 0; } /* ERROR_NONE_MAPPED */
  if (*cb < 16) { last_error = 122; return 0; } /* ERROR_INSUFFICIENT_BUFFER */
  memset(sid, 1, 16); *cb = 16; *use = 4; /* SidTypeAlias */
  return 1;
}
/* a stand-in SID is its first byte: 1 Users, 2 Administrators, 3 a user */
int ConvertSidToStringSidW(const uint8_t *sid, uint16_t **out) {
  *out = wide(sid[0] == 1 ? "S-1-5-32-545" : sid[0] == 2 ? "S-1-5-32-544" : sid[0] == 3 ? "S-1-5-21-1-2-3-1001" : "S-1-0-0");
  return 1;
}
int ConvertStringSidToSidW(const uint16_t *s, uint8_t **out) {
  if (!wide_equals(s, "S-1-5-32-544")) { last_error = 1337; return 0; } /* ERROR_INVALID_SID */
  *out = local_alloc(16); (*out)[0] = 2;
  return 1;
}
static const char *applied_sddl;
static uint32_t applied_flags;
static int applied_owner;
int ConvertStringSecurityDescriptorToSecurityDescriptorW(const uint16_t *s, uint32_t rev, void **sd, uint32_t *size) {
  if (rev != 1 || !wide_equals(s, "D:P(A;;GA;;;SY)(A;;GA;;;BA)")) { last_error = 1336; return 0; } /* ERROR_INVALID_ACL */
  *sd = local_alloc(64);
  return 1;
}
int GetSecurityDescriptorDacl(char *sd, int32_t *present, void **dacl, int32_t *defaulted) { *present = 1; *dacl = sd + 8; *defaulted = 0; return 1; }
uint32_t SetSecurityInfo(void *h, int32_t type, uint32_t info, void *owner, void *group, void *dacl, void *sacl) {
  applied_flags = info;
  applied_owner = owner ? *(uint8_t *)owner : 0;
  return h == (void *)0x1234 && type == 6 && dacl != 0 ? 0 : 87; /* SE_KERNEL_OBJECT; ERROR_INVALID_PARAMETER */
}
uint32_t AppliedFlags(void) { return applied_flags; }
int AppliedOwner(void) { return applied_owner; }
uint32_t GetSecurityInfo(void *h, int32_t type, uint32_t info, uint8_t **owner, void **group, void **dacl, void **sacl, void **sd) {
  if (type != 6) return 87; /* SE_KERNEL_OBJECT; ERROR_INVALID_PARAMETER */
  *sd = local_alloc(64);
  if (info & 1) { *owner = (uint8_t *)*sd + 16; **owner = h == (void *)0x1234 ? 2 : 3; } /* OWNER_SECURITY_INFORMATION */
  if (info & 4) *dacl = (char *)*sd + 8; /* DACL_SECURITY_INFORMATION */
  return 0;
}
int ConvertSecurityDescriptorToStringSecurityDescriptorW(void *sd, uint32_t rev, uint32_t info, uint16_t **out, uint32_t *len) {
  *out = wide("D:P(A;;GA;;;SY)(A;;GA;;;BA)");
  return 1;
}
`

const cc = ['cc', 'gcc', 'clang'].find((c) => !spawnSync(c, ['--version']).error)

describe('windows-pipe-security-ffi over stand-in Win32 libraries', { skip: cc ? false : 'no C compiler to build the stand-in libraries with' }, () => {
  let dir: string
  let security: PipeSecurity
  let liveAllocations: () => number
  let appliedFlags: () => number
  let appliedOwner: () => number

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'ngrokd-win32-'))
    const source = join(dir, 'stand-in.c')
    writeFileSync(source, STAND_IN)
    // loadPipeSecurity opens `${systemRoot}\System32\<dll>`: on Linux that is one file name beside `root`.
    // Both names are links to one library, which the dynamic loader maps once: one heap, one set of counters.
    const library = join(dir, 'stand-in.so')
    const built = spawnSync(cc!, ['-shared', '-fPIC', '-o', library, source], { encoding: 'utf8' })
    assert.equal(built.status, 0, built.stderr)
    for (const dll of ['kernel32.dll', 'advapi32.dll']) linkSync(library, join(dir, `root\\System32\\${dll}`))
    security = loadPipeSecurity(join(dir, 'root'))
    const lib = koffi.load(library)
    liveAllocations = lib.func('int LiveAllocations(void)') as () => number
    appliedFlags = lib.func('uint32_t AppliedFlags(void)') as () => number
    appliedOwner = lib.func('int AppliedOwner(void)') as () => number
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  it("control.group's SID is read out of the LocalAlloc'd string, which is freed", () => {
    assert.equal(security.groupSid('ngrokd-readers'), 'S-1-5-32-545')
    assert.equal(liveAllocations(), 0)
  })

  it('an unknown control.group is named with its Win32 error', () => {
    assert.throws(() => security.groupSid('nobody-here'), (e: Error & { code?: string }) => e.code === 'NGROKD_ERR_CONTROL' && /control\.group "nobody-here" does not exist .*1332/.test(e.message))
  })

  it("doctor's read of the pipe DACL returns the SDDL and frees the descriptor and the string", () => {
    assert.equal(security.readDacl('\\\\.\\pipe\\ngrokd'), 'D:P(A;;GA;;;SY)(A;;GA;;;BA)')
    assert.equal(liveAllocations(), 0)
  })

  it('applying a DACL sets it protected with Administrators as owner, and frees the descriptor and the SID', () => {
    security.applyDacl('\\\\.\\pipe\\ngrokd', 'D:P(A;;GA;;;SY)(A;;GA;;;BA)', 'S-1-5-32-544')
    assert.equal(appliedFlags(), 0x80000005) // PROTECTED_DACL_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION | OWNER_SECURITY_INFORMATION
    assert.equal(appliedOwner(), 2, 'the SID converted from S-1-5-32-544')
    assert.equal(liveAllocations(), 0)
    assert.throws(() => security.applyDacl('\\\\.\\pipe\\elsewhere', 'D:P(A;;GA;;;SY)(A;;GA;;;BA)', 'S-1-5-32-544'), { code: 'NGROKD_ERR_SYSCALL', message: 'CreateFileW \\\\.\\pipe\\elsewhere failed: Win32 error 2 (2)' })
    assert.equal(liveAllocations(), 0)
  })

  it("a client reads a pipe's owner through a handle of its own, waits while every instance is busy, and frees what it read", () => {
    assert.deepEqual(security.pipeOwner('\\\\.\\pipe\\ngrokd', 10_000), { sid: 'S-1-5-32-544' })
    assert.deepEqual(security.pipeOwner('\\\\.\\pipe\\squatted', 10_000), { sid: 'S-1-5-21-1-2-3-1001' })
    assert.deepEqual(security.pipeOwner('\\\\.\\pipe\\absent', 10_000), { unreadable: 'missing' })
    assert.deepEqual(security.pipeOwner('\\\\.\\pipe\\locked', 10_000), { unreadable: 'denied' })
    assert.deepEqual(security.pipeOwner('\\\\.\\pipe\\busy', 0), { unreadable: 'busy' }, 'no time to wait')
    assert.deepEqual(security.pipeOwner('\\\\.\\pipe\\busy', 10_000), { sid: 'S-1-5-32-544' }, 'an instance freed by the wait')
    assert.equal(liveAllocations(), 0)
  })
})
