import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, linkSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { koffi } from './koffi.js'
import { encodeSecurityAttributes, FILE_SECURITY_ABI, loadFileSecurity, type WindowsFileSecurity } from './windows-security-ffi.js'

const WINDOWS_STATE_DIR_SDDL = 'O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)' // daemon/state-dir.ts

// Runs the real koffi declarations of windows-security-ffi.ts over stand-in kernel32/advapi32 libraries that keep
// the Win32 contracts these calls rely on (fileapi.h, aclapi.h, sddl.h, securitybaseapi.h): descriptors, SIDs and
// strings handed out are LocalAlloc'd and must come back to LocalFree; BOOL calls report through GetLastError;
// CreateDirectoryW reads a SECURITY_ATTRIBUTES laid out as minwinbase.h's, and makes the folder (on Linux, mkdir).
// The Windows calling convention and the prototypes are checked by probe/regenerate.mjs against mingw-w64's headers.
const STAND_IN = String.raw`
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h>
typedef struct { uint32_t nLength; void *lpSecurityDescriptor; int32_t bInheritHandle; } SECURITY_ATTRIBUTES;
static uint32_t last_error;
static void *live[16];
static int live_count;
static void *local_alloc(size_t n) { void *p = calloc(1, n); live[live_count++] = p; return p; }
static int is_live(void *p) { for (int i = 0; i < live_count; i++) if (live[i] == p) return 1; return 0; }
static uint16_t *wide(const char *s) { size_t n = strlen(s); uint16_t *o = local_alloc((n + 1) * 2); for (size_t i = 0; i <= n; i++) o[i] = (unsigned char)s[i]; return o; }
static void narrow(const uint16_t *w, char *out, size_t cap) { size_t i = 0; while (w[i] && i + 1 < cap) { out[i] = (char)w[i]; i++; } out[i] = 0; }
uint32_t GetLastError(void) { return last_error; }
void *LocalFree(void *p) {
  for (int i = 0; i < live_count; i++) if (live[i] == p) { free(p); live[i] = live[--live_count]; return 0; }
  last_error = 6; return p; /* ERROR_INVALID_HANDLE */
}
int LiveAllocations(void) { return live_count; }
static int open_handles;
static char opened[512];
static uint32_t opened_access, opened_flags;
void *CreateFileW(const uint16_t *name, uint32_t access, uint32_t share, void *sa, uint32_t disposition, uint32_t flags, void *tmpl) {
  narrow(name, opened, sizeof opened);
  opened_access = access; opened_flags = flags;
  struct stat st;
  if (disposition != 3 || stat(opened, &st) != 0) { last_error = 2; return (void *)(intptr_t)-1; } /* OPEN_EXISTING; ERROR_FILE_NOT_FOUND */
  if (S_ISDIR(st.st_mode) && !(flags & 0x02000000)) { last_error = 5; return (void *)(intptr_t)-1; } /* a folder needs FILE_FLAG_BACKUP_SEMANTICS */
  open_handles++;
  return (void *)0x1234;
}
int CloseHandle(void *h) { if (h != (void *)0x1234) return 0; open_handles--; return 1; }
int OpenHandles(void) { return open_handles; }
uint32_t OpenedAccess(void) { return opened_access; }
uint32_t OpenedFlags(void) { return opened_flags; }
static uint32_t queried_info;
uint32_t GetSecurityInfo(void *h, int32_t type, uint32_t info, void **owner, void **group, void **dacl, void **sacl, void **sd) {
  if (h != (void *)0x1234 || type != 1) return 87; /* SE_FILE_OBJECT; ERROR_INVALID_PARAMETER */
  queried_info = info;
  *sd = local_alloc(64);
  strcpy((char *)*sd, opened); /* the stand-in descriptor remembers its file */
  return 0;
}
int ConvertSecurityDescriptorToStringSecurityDescriptorW(void *sd, uint32_t rev, uint32_t info, uint16_t **out, uint32_t *len) {
  if (!is_live(sd) || rev != 1 || info != queried_info) { last_error = 87; return 0; }
  *out = wide(strstr((char *)sd, "planted") ? "O:S-1-5-21-1-2-3-1001D:(A;;FA;;;S-1-5-21-1-2-3-1001)" : "O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)");
  return 1;
}
int ConvertStringSecurityDescriptorToSecurityDescriptorW(const uint16_t *s, uint32_t rev, void **sd, uint32_t *size) {
  char text[256]; narrow(s, text, sizeof text);
  if (rev != 1 || strncmp(text, "O:", 2) != 0) { last_error = 1336; return 0; } /* ERROR_INVALID_ACL */
  *sd = local_alloc(256);
  strcpy((char *)*sd, text);
  return 1;
}
static char created_with[256];
static uint32_t created_length;
int CreateDirectoryW(const uint16_t *name, SECURITY_ATTRIBUTES *sa) {
  char path[512]; narrow(name, path, sizeof path);
  if (!sa || !is_live(sa->lpSecurityDescriptor) || sa->bInheritHandle != 0) { last_error = 87; return 0; }
  created_length = sa->nLength;
  strcpy(created_with, (char *)sa->lpSecurityDescriptor);
  if (mkdir(path, 0700) == 0) return 1;
  last_error = errno == EEXIST ? 183 : errno == ENOENT ? 3 : 5; /* ERROR_ALREADY_EXISTS, ERROR_PATH_NOT_FOUND, ERROR_ACCESS_DENIED */
  return 0;
}
const char *CreatedWith(void) { return created_with; }
uint32_t CreatedLength(void) { return created_length; }
uint32_t SizeofSecurityAttributes(void) { return sizeof(SECURITY_ATTRIBUTES); }
static int member = 1;
void SetMember(int m) { member = m; }
int ConvertStringSidToSidW(const uint16_t *s, uint8_t **out) {
  char text[64]; narrow(s, text, sizeof text);
  if (strcmp(text, "S-1-5-32-544") != 0) { last_error = 1337; return 0; } /* ERROR_INVALID_SID */
  *out = local_alloc(16); (*out)[0] = 2;
  return 1;
}
int CheckTokenMembership(void *token, uint8_t *sid, int32_t *is_member) {
  if (token != 0 || !is_live(sid) || sid[0] != 2) { last_error = 87; return 0; }
  *is_member = member;
  return 1;
}
`

const cc = ['cc', 'gcc', 'clang'].find((c) => !spawnSync(c, ['--version']).error)

/** What mingw-w64's headers say, per target (made by drivers/windows-wintun/probe/regenerate.mjs). */
const fixture = (): Record<string, Record<string, number>> => JSON.parse(readFileSync(new URL('./windows-abi.json', import.meta.url), 'utf8')).targets

describe('windows-security-ffi against mingw-w64', () => {
  it('every Win32 value it uses is the headers\' (x86_64 and i686)', () => {
    const targets = fixture()
    assert.deepEqual(Object.keys(targets).sort(), ['i686', 'x86_64'])
    for (const [target, values] of Object.entries(targets)) {
      for (const [name, value] of Object.entries(FILE_SECURITY_ABI)) assert.equal(value, values[name], `${target} ${name}`)
    }
  })

  it('SECURITY_ATTRIBUTES lands at the compiler\'s offsets, its nLength its size', () => {
    for (const [target, v] of Object.entries(fixture())) {
      const pointerSize = target === 'i686' ? 4 : 8
      const descriptor = 0x1234_5678n
      const sa = encodeSecurityAttributes(pointerSize, descriptor)
      assert.equal(sa.length, v['sizeof SECURITY_ATTRIBUTES'], target)
      assert.equal(sa.readUInt32LE(v['SECURITY_ATTRIBUTES.nLength']!), v['sizeof SECURITY_ATTRIBUTES'], target)
      const at = v['SECURITY_ATTRIBUTES.lpSecurityDescriptor']!
      assert.equal(pointerSize === 8 ? sa.readBigUInt64LE(at) : BigInt(sa.readUInt32LE(at)), descriptor, target)
      assert.equal(sa.readInt32LE(v['SECURITY_ATTRIBUTES.bInheritHandle']!), 0, `${target}: not inherited`)
    }
  })
})

describe('windows-security-ffi over stand-in Win32 libraries', { skip: cc ? false : 'no C compiler to build the stand-in libraries with' }, () => {
  let dir: string
  let security: WindowsFileSecurity
  let lib: ReturnType<typeof koffi.load>
  const call = <T>(prototype: string, ...args: unknown[]) => (lib.func(prototype) as (...a: unknown[]) => T)(...args)

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'ngrokd-win32-security-'))
    const source = join(dir, 'stand-in.c')
    writeFileSync(source, STAND_IN)
    // loadFileSecurity opens `${systemRoot}\System32\<dll>`: on Linux that is one file name beside `root`
    const library = join(dir, 'stand-in.so')
    const built = spawnSync(cc!, ['-shared', '-fPIC', '-o', library, source], { encoding: 'utf8' })
    assert.equal(built.status, 0, built.stderr)
    for (const dll of ['kernel32.dll', 'advapi32.dll']) linkSync(library, join(dir, `root\\System32\\${dll}`))
    security = loadFileSecurity(join(dir, 'root'))
    lib = koffi.load(library)
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  it("reads a file's and a folder's owner and DACL as SDDL through a READ_CONTROL handle, and frees what it read", () => {
    writeFileSync(join(dir, 'config.yml'), '')
    assert.equal(security.readSddl(join(dir, 'config.yml')), 'O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)')
    assert.equal(call<number>('uint32_t OpenedAccess(void)'), 0x20000, 'READ_CONTROL only')
    writeFileSync(join(dir, 'planted.yml'), '')
    assert.equal(security.readSddl(join(dir, 'planted.yml')), 'O:S-1-5-21-1-2-3-1001D:(A;;FA;;;S-1-5-21-1-2-3-1001)')
    assert.equal(security.readSddl(dir), 'O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)', 'a folder, opened with FILE_FLAG_BACKUP_SEMANTICS')
    assert.equal(call<number>('uint32_t OpenedFlags(void)'), 0x02000000)
    assert.equal(call<number>('int LiveAllocations(void)'), 0)
    assert.equal(call<number>('int OpenHandles(void)'), 0)
  })

  it('a missing path is ENOENT, as Node says it', () => {
    assert.throws(() => security.readSddl(join(dir, 'absent')), { code: 'ENOENT' })
    assert.equal(call<number>('int OpenHandles(void)'), 0)
  })

  it('creates a folder with its descriptor from the first moment, in a SECURITY_ATTRIBUTES laid out as minwinbase.h says', () => {
    const made = join(dir, 'state')
    assert.equal(security.createDirectory(made, WINDOWS_STATE_DIR_SDDL), true)
    assert.ok(existsSync(made))
    assert.equal(call<string>('const char *CreatedWith(void)'), 'O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)')
    assert.equal(call<number>('uint32_t CreatedLength(void)'), call<number>('uint32_t SizeofSecurityAttributes(void)'))
    assert.equal(security.createDirectory(made, WINDOWS_STATE_DIR_SDDL), false, 'already there: left to the trust check')
    assert.throws(() => security.createDirectory(join(dir, 'no', 'parent'), WINDOWS_STATE_DIR_SDDL), { code: 'ENOENT' })
    assert.equal(call<number>('int LiveAllocations(void)'), 0)
  })

  it('elevated is Administrators enabled in the token (CheckTokenMembership), the SID freed', () => {
    call('void SetMember(int)', 1)
    assert.equal(security.isElevated(), true)
    call('void SetMember(int)', 0)
    assert.equal(security.isElevated(), false)
    assert.equal(call<number>('int LiveAllocations(void)'), 0)
  })
})
