import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { linkSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { koffi } from '../util/koffi.js'
import { loadScm, loadServiceDispatcher } from './windows-service-ffi.js'
import { runAsWindowsService } from './windows-service-control.js'
import { installWindowsService, planWindowsService } from './windows-service.js'

// Runs the real koffi declarations of windows-service-ffi.ts over stand-in advapi32/kernel32 libraries that keep
// the Win32 contracts these calls rely on (winsvc.h, errhandlingapi.h): the last error is per thread, as Windows
// keeps it, and StartServiceCtrlDispatcherW calls ServiceMain and the control handler from the thread it runs on.
// Built with the machine's C compiler; the Windows calling convention itself is checked by probe/regenerate.mjs.
const STAND_IN = String.raw`
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
static __thread uint32_t last_error; /* per thread, as Windows keeps it */
uint32_t GetLastError(void) { return last_error; }
static char record[4096];
static void add(const char *s) { strncat(record, s, sizeof(record) - strlen(record) - 1); }
static void add_wide(const char *label, const uint16_t *w) {
  add(label); add("=");
  if (!w) { add("NULL;"); return; }
  char one[2] = { 0, 0 };
  for (; *w; w++) { one[0] = (char)*w; add(one); }
  add(";");
}
const char *Recorded(void) { return record; }
void Forget(void) { record[0] = 0; }

/* the dispatcher: mode 0 a process started from a prompt, 1 the SCM's run (ServiceMain, STOP, STOPPED), 2 a failure after ServiceMain */
typedef struct { const uint16_t *name; void (*main)(uint32_t, uint16_t **); } table_entry;
typedef uint32_t (*handler_ex)(uint32_t, uint32_t, void *, void *);
typedef struct { uint32_t type, state, accepted, exit, specific, checkpoint, hint; } service_status;
static int mode;
static handler_ex handler;
static volatile int running, stopped;
void SetMode(int m) { mode = m; running = stopped = 0; handler = 0; }
int StartServiceCtrlDispatcherW(const table_entry *table) {
  if (mode == 0) { last_error = 1063; return 0; } /* ERROR_FAILED_SERVICE_CONTROLLER_CONNECT */
  add_wide("dispatch", table[0].name);
  if (table[1].name || table[1].main) { last_error = 13; return 0; } /* ERROR_INVALID_DATA: the table ends with two NULLs */
  table[0].main(0, 0);
  if (mode == 2) { last_error = 1067; return 0; } /* ERROR_PROCESS_ABORTED, say */
  for (int i = 0; i < 5000 && !running; i++) usleep(1000); /* the SCM sends STOP once the service accepts it */
  char line[32];
  snprintf(line, sizeof line, "stop=%u;", handler ? handler(1, 0, 0, 0) : 999); /* SERVICE_CONTROL_STOP */
  add(line);
  for (int i = 0; i < 5000 && !stopped; i++) usleep(1000);
  return stopped;
}
void *RegisterServiceCtrlHandlerExW(const uint16_t *name, handler_ex h, void *context) { add_wide("handler", name); handler = h; return (void *)0x30; }
int SetServiceStatus(void *h, const service_status *s) {
  char line[32];
  snprintf(line, sizeof line, "status=%u/%u;", s->state, s->specific);
  add(line);
  if (s->state == 4 && s->accepted & 1) running = 1; /* SERVICE_RUNNING, SERVICE_ACCEPT_STOP */
  if (s->state == 1) stopped = 1; /* SERVICE_STOPPED */
  return h == (void *)0x30;
}

/* the SCM: "ngrokd" is registered already and running */
static uint32_t state = 4; /* SERVICE_RUNNING */
void *OpenSCManagerW(const uint16_t *machine, const uint16_t *db, uint32_t access) { return (void *)0x10; }
void *CreateServiceW(void *scm, const uint16_t *name, const uint16_t *display, uint32_t access, uint32_t type, uint32_t start, uint32_t err, const uint16_t *bin, const uint16_t *group, uint32_t *tag, const uint16_t *deps, const uint16_t *user, const uint16_t *password) {
  add_wide("CreateServiceW", name);
  last_error = 1073; /* ERROR_SERVICE_EXISTS */
  return 0;
}
void *OpenServiceW(void *scm, const uint16_t *name, uint32_t access) { char line[40]; snprintf(line, sizeof line, "access=0x%x;", access); add_wide("OpenServiceW", name); add(line); return (void *)0x20; }
int ChangeServiceConfigW(void *svc, uint32_t type, uint32_t start, uint32_t err, const uint16_t *bin, const uint16_t *group, uint32_t *tag, const uint16_t *deps, const uint16_t *user, const uint16_t *password, const uint16_t *display) {
  char line[64];
  snprintf(line, sizeof line, "ChangeServiceConfigW type=0x%x start=%u err=%u;", type, start, err);
  add(line); add_wide("binary", bin); add_wide("group", group); add_wide("user", user); add_wide("password", password); add_wide("display", display);
  add("deps="); for (const uint16_t *p = deps; *p || p[1]; p++) { char one[2] = { *p ? (char)*p : '|', 0 }; add(one); } add(";");
  return svc == (void *)0x20;
}
int ChangeServiceConfig2W(void *svc, uint32_t level, void *info) { char line[32]; snprintf(line, sizeof line, "Config2=%u;", level); add(line); return 1; }
static void fill(service_status *s) { memset(s, 0, sizeof *s); s->type = 0x10; s->state = state; }
int QueryServiceStatus(void *svc, service_status *s) { fill(s); char line[32]; snprintf(line, sizeof line, "query=%u;", state); add(line); if (state == 3) state = 1; return 1; }
int ControlService(void *svc, uint32_t control, service_status *s) {
  char line[32]; snprintf(line, sizeof line, "control=%u;", control); add(line);
  if (state != 4) { last_error = 1062; return 0; } /* ERROR_SERVICE_NOT_ACTIVE */
  state = 3; fill(s); return 1; /* SERVICE_STOP_PENDING */
}
int StartServiceW(void *svc, uint32_t argc, const uint16_t **argv) {
  char line[32]; snprintf(line, sizeof line, "start argc=%u argv=%s;", argc, argv ? "set" : "NULL"); add(line);
  if (state != 1) { last_error = 1056; return 0; } /* ERROR_SERVICE_ALREADY_RUNNING */
  state = 4; return 1;
}
int DeleteService(void *svc) { add("DeleteService;"); return 1; }
int CloseServiceHandle(void *h) { return 1; }
`

const cc = ['cc', 'gcc', 'clang'].find((c) => !spawnSync(c, ['--version']).error)

describe('windows-service-ffi over stand-in Win32 libraries', { skip: cc ? false : 'no C compiler to build the stand-in libraries with' }, () => {
  let dir: string
  let root: string
  let setMode: (mode: number) => void
  let recorded: () => string
  let forget: () => void
  const daemon = { start: async () => {}, stop: async () => {}, stopWaitHintMs: 1_000 }

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'ngrokd-win32-scm-'))
    const source = join(dir, 'stand-in.c')
    writeFileSync(source, STAND_IN)
    // the ffi module opens `${systemRoot}\System32\<dll>`: on Linux one file name beside `root`, both links to one library
    const library = join(dir, 'stand-in.so')
    const built = spawnSync(cc!, ['-shared', '-fPIC', '-o', library, source], { encoding: 'utf8' })
    assert.equal(built.status, 0, built.stderr)
    root = join(dir, 'root')
    for (const dll of ['kernel32.dll', 'advapi32.dll']) linkSync(library, `${root}\\System32\\${dll}`)
    const lib = koffi.load(library)
    setMode = lib.func('void SetMode(int mode)') as (mode: number) => void
    recorded = lib.func('const char *Recorded(void)') as () => string
    forget = lib.func('void Forget(void)') as () => void
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  it('run --service from a prompt: the dispatcher fails before ServiceMain, read as 1063 although its last error is the worker thread\'s', async () => {
    setMode(0)
    await assert.rejects(
      runAsWindowsService(loadServiceDispatcher(root), 'ngrokd', daemon),
      (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_SERVICE') && /started from a prompt/.test((e as Error).message) && /sc start ngrokd/.test(String((e as { hint?: string }).hint)),
    )
  })

  it('run --service by the SCM: ServiceMain and the handler called from the dispatcher thread run on the main thread, and STOPPED ends it', async () => {
    setMode(1)
    forget()
    assert.equal(await runAsWindowsService(loadServiceDispatcher(root), 'ngrokd-work', daemon), 0)
    // the handler's return is recorded on the dispatcher thread, STOPPED on the main thread once the daemon has
    // stopped: those two may come in either order; STOP_PENDING must come before both
    const calls = recorded()
    assert.equal(calls.slice(0, calls.indexOf('status=3/0;') + 'status=3/0;'.length), 'dispatch=ngrokd-work;handler=ngrokd-work;status=2/0;status=4/0;status=3/0;', 'STOP_PENDING is reported before the handler returns')
    assert.ok(['stop=0;status=1/0;', 'status=1/0;stop=0;'].includes(calls.slice(calls.indexOf('status=3/0;') + 'status=3/0;'.length)), calls)
  })

  it('a dispatcher that fails after ServiceMain ran: an error that says so, not the prompt case', async () => {
    setMode(2)
    await assert.rejects(
      runAsWindowsService(loadServiceDispatcher(root), 'ngrokd', daemon),
      (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_SERVICE') && /StartServiceCtrlDispatcherW failed after the service had started/.test((e as Error).message) && !/prompt/.test((e as Error).message),
    )
  })

  it('a second install over the real declarations: ChangeServiceConfigW with the plan, the running service stopped and started', async () => {
    forget()
    const plan = planWindowsService({ nodePath: 'C:\\Program Files\\nodejs\\node.exe', cliPath: 'C:\\npm\\ngrokd.js', configPath: 'C:\\ProgramData\\ngrokd\\config.yml' })
    assert.equal(await installWindowsService(loadScm(root), plan, { stopTimeoutMs: 5_000, pollMs: 1 }), 'replaced')
    assert.equal(
      recorded(),
      'CreateServiceW=ngrokd;OpenServiceW=ngrokd;access=0x36;' +
        'ChangeServiceConfigW type=0x10 start=2 err=1;binary="C:\\Program Files\\nodejs\\node.exe" C:\\npm\\ngrokd.js run --service --config C:\\ProgramData\\ngrokd\\config.yml;' +
        'group=NULL;user=LocalSystem;password=;display=ngrokd;deps=Tcpip|Dnscache;' +
        'Config2=1;Config2=2;Config2=4;query=4;control=1;query=3;query=1;start argc=0 argv=NULL;',
    )
  })
})
