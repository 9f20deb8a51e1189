import { describe, it, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import * as C from './windows-service-control.js'

const { ServiceControl, runAsWindowsService } = C

/** What mingw-w64's headers say, per target (made by drivers/windows-wintun/probe/regenerate.mjs). */
const fixture = (): Record<string, Record<string, number>> => JSON.parse(readFileSync(new URL('./windows-abi.json', import.meta.url), 'utf8')).targets

/** The states reported, as `STATE/checkpoint/accepted/exit/specific`. */
function recorder() {
  const statuses: C.ServiceStatus[] = []
  const name = (s: number) => ({ 1: 'STOPPED', 2: 'START_PENDING', 3: 'STOP_PENDING', 4: 'RUNNING' })[s] ?? String(s)
  return {
    statuses,
    setStatus: (s: C.ServiceStatus) => void statuses.push(s),
    trail: () => statuses.map((s) => `${name(s.dwCurrentState)}/${s.dwCheckPoint}/${s.dwControlsAccepted}/${s.dwWin32ExitCode}/${s.dwServiceSpecificExitCode}`),
  }
}

const settle = () => new Promise((r) => setImmediate(r))

describe('the Windows service state machine (run --service)', () => {
  it('constants match mingw-w64 (winsvc.h, winerror.h)', () => {
    for (const v of Object.values(fixture())) {
      for (const k of ['SERVICE_STOPPED', 'SERVICE_START_PENDING', 'SERVICE_STOP_PENDING', 'SERVICE_RUNNING', 'SERVICE_ACCEPT_STOP', 'SERVICE_ACCEPT_SHUTDOWN', 'SERVICE_ACCEPT_PRESHUTDOWN', 'SERVICE_CONTROL_STOP', 'SERVICE_CONTROL_INTERROGATE', 'SERVICE_CONTROL_SHUTDOWN', 'SERVICE_CONTROL_PRESHUTDOWN', 'ERROR_FAILED_SERVICE_CONTROLLER_CONNECT', 'ERROR_SERVICE_SPECIFIC_ERROR'] as const) {
        assert.equal((C as Record<string, unknown>)[k], v[k], k)
      }
      assert.equal(v['sizeof SERVICE_STATUS'], C.SERVICE_STATUS_FIELDS.length * 4, 'seven DWORDs')
    }
  })

  it('start: START_PENDING, then RUNNING accepting STOP, SHUTDOWN and PRESHUTDOWN; stop: STOP_PENDING, cleanup, STOPPED with exit 0', async () => {
    const scm = recorder()
    const events: string[] = []
    let stopped: number | undefined
    const service = new ServiceControl({
      setStatus: scm.setStatus,
      start: async () => void events.push('start'),
      stop: async () => void events.push(`stop while ${scm.trail().at(-1)}`),
      stopWaitHintMs: 15_000,
      onStopped: (code) => (stopped = code),
    })
    await service.serviceMain()
    assert.deepEqual(scm.trail(), ['START_PENDING/1/0/0/0', 'RUNNING/0/261/0/0'])
    assert.equal(scm.statuses[0]!.dwWaitHint, 15_000)
    assert.equal(scm.statuses[0]!.dwServiceType, 0x10)
    assert.equal(service.control(C.SERVICE_CONTROL_INTERROGATE), C.NO_ERROR)
    assert.equal(service.control(0x80), C.ERROR_CALL_NOT_IMPLEMENTED, 'a user control it does not know')
    assert.equal(service.control(C.SERVICE_CONTROL_STOP), C.NO_ERROR)
    assert.equal(service.control(C.SERVICE_CONTROL_SHUTDOWN), C.NO_ERROR, 'a second stop joins the first')
    await settle()
    assert.deepEqual(events, ['start', 'stop while STOP_PENDING/1/0/0/0'])
    assert.deepEqual(scm.trail().slice(2), ['STOP_PENDING/1/0/0/0', 'STOPPED/0/0/0/0'])
    assert.equal(stopped, 0)
  })

  it('a start that fails reports STOPPED with a service-specific error, so the recovery actions count it', async () => {
    const scm = recorder()
    const service = new ServiceControl({ setStatus: scm.setStatus, start: () => Promise.reject(new Error('no driver')), stop: async () => {}, stopWaitHintMs: 1 })
    await service.serviceMain()
    assert.deepEqual(scm.trail(), ['START_PENDING/1/0/0/0', `STOPPED/0/0/${C.ERROR_SERVICE_SPECIFIC_ERROR}/1`])
  })

  it('a long stop tells the SCM it is still working: a new checkpoint every couple of seconds', async (t: TestContext) => {
    t.mock.timers.enable({ apis: ['setInterval'] })
    const scm = recorder()
    let finish!: () => void
    const service = new ServiceControl({ setStatus: scm.setStatus, start: async () => {}, stop: () => new Promise<void>((r) => (finish = r)), stopWaitHintMs: 9_000 })
    await service.serviceMain()
    service.control(C.SERVICE_CONTROL_STOP)
    t.mock.timers.tick(C.STOP_CHECKPOINT_EVERY_MS)
    t.mock.timers.tick(C.STOP_CHECKPOINT_EVERY_MS)
    finish()
    await settle()
    assert.deepEqual(scm.trail().slice(2), ['STOP_PENDING/1/0/0/0', 'STOP_PENDING/2/0/0/0', 'STOP_PENDING/3/0/0/0', 'STOPPED/0/0/0/0'])
    assert.ok(scm.statuses.slice(2, 5).every((s) => s.dwWaitHint === 9_000))
  })

  it('runAsWindowsService: ServiceMain and the handler come from the dispatcher, which returns once STOPPED was reported', async () => {
    const scm = recorder()
    // a stand-in for the SCM: calls ServiceMain, sends STOP once RUNNING, returns after STOPPED
    const dispatcher: C.ServiceDispatcher = {
      dispatch: (name, { main, control }) =>
        new Promise((resolve) => {
          assert.equal(name, 'ngrokd-work')
          main((status) => {
            scm.setStatus(status)
            if (status.dwCurrentState === C.SERVICE_RUNNING) setImmediate(() => assert.equal(control(C.SERVICE_CONTROL_STOP), C.NO_ERROR))
            if (status.dwCurrentState === C.SERVICE_STOPPED) setImmediate(() => resolve(0))
          })
        }),
    }
    const code = await runAsWindowsService(dispatcher, 'ngrokd-work', { start: async () => {}, stop: () => Promise.reject(new Error('cleanup failed')), stopWaitHintMs: 1_000 })
    assert.equal(code, 1, 'a failed cleanup is the exit code')
    assert.equal(scm.trail().at(-1), `STOPPED/0/0/${C.ERROR_SERVICE_SPECIFIC_ERROR}/1`)
  })

  it('started from a prompt instead of by the SCM: a coded error that says how to run it', async () => {
    const dispatcher: C.ServiceDispatcher = { dispatch: async () => C.ERROR_FAILED_SERVICE_CONTROLLER_CONNECT }
    await assert.rejects(
      runAsWindowsService(dispatcher, 'ngrokd', { start: async () => {}, stop: async () => {}, stopWaitHintMs: 1 }),
      (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_SERVICE') && /sc start ngrokd/.test(String((e as { hint?: string }).hint)),
    )
  })
})
