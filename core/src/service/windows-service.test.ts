import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import * as S from './windows-service.js'
import { parseScmPrototypes, scmStructLayouts, SCM_PROTOTYPES, SERVICE_ALL_ACCESS, SERVICE_DISPATCH_PROTOTYPES } from './windows-service-ffi.js'
import { FakeScm } from './windows-scm.test-helper.js'

/** What mingw-w64's headers say, per target (made by drivers/windows-wintun/probe/regenerate.mjs). */
const fixture = (): Record<string, Record<string, number>> => JSON.parse(readFileSync(new URL('./windows-abi.json', import.meta.url), 'utf8')).targets

const NODE = 'C:\\Program Files\\nodejs\\node.exe'
const CLI = 'C:\\Program Files\\nodejs\\node_modules\\ngrokd\\node_modules\\@ngrokd\\core\\dist\\bin\\ngrokd.js'
const CONFIG = 'C:\\ProgramData\\ngrokd\\config.yml'
const OPTIONS = { stopTimeoutMs: 5_000, pollMs: 1 }

describe('Windows service registration', () => {
  it('constants and SERVICE_FAILURE_ACTIONSW / SC_ACTION layouts match mingw-w64 (winsvc.h, winnt.h)', () => {
    const targets = fixture()
    for (const v of Object.values(targets)) {
      for (const k of ['SERVICE_WIN32_OWN_PROCESS', 'SERVICE_AUTO_START', 'SERVICE_ERROR_NORMAL', 'SC_MANAGER_CONNECT', 'SC_MANAGER_CREATE_SERVICE', 'SERVICE_QUERY_STATUS', 'SERVICE_CHANGE_CONFIG', 'SERVICE_STOP', 'SERVICE_START', 'SERVICE_STOPPED', 'SERVICE_CONTROL_STOP', 'DELETE', 'SERVICE_CONFIG_DESCRIPTION', 'SERVICE_CONFIG_FAILURE_ACTIONS', 'SERVICE_CONFIG_FAILURE_ACTIONS_FLAG', 'SC_ACTION_NONE', 'SC_ACTION_RESTART', 'SC_ACTION_RUN_COMMAND', 'ERROR_SERVICE_EXISTS', 'ERROR_SERVICE_DOES_NOT_EXIST', 'ERROR_SERVICE_MARKED_FOR_DELETE', 'ERROR_DUPLICATE_SERVICE_NAME', 'ERROR_SERVICE_ALREADY_RUNNING', 'ERROR_SERVICE_CANNOT_ACCEPT_CTRL', 'ERROR_SERVICE_NOT_ACTIVE'] as const) {
        assert.equal((S as Record<string, unknown>)[k], v[k], k)
      }
      assert.equal(v['sizeof SC_ACTION'], S.SC_ACTION_SIZE)
      assert.equal(SERVICE_ALL_ACCESS, v.SERVICE_ALL_ACCESS, 'SERVICE_ALL_ACCESS')
    }
    if (process.arch === 'x64' || process.arch === 'arm64') {
      const x64 = targets.x86_64!
      for (const [k, n] of Object.entries(scmStructLayouts())) assert.equal(n, x64[k], `koffi ${k}`)
    }
    assert.equal(parseScmPrototypes(), SCM_PROTOTYPES.length + SERVICE_DISPATCH_PROTOTYPES.length)
  })

  it('quotes arguments the way CommandLineToArgvW reads them back', () => {
    assert.equal(S.quoteWindowsArg('run'), 'run')
    assert.equal(S.quoteWindowsArg('C:\\Program Files\\nodejs\\node.exe'), '"C:\\Program Files\\nodejs\\node.exe"')
    assert.equal(S.quoteWindowsArg(''), '""')
    assert.equal(S.quoteWindowsArg('a "b"'), '"a \\"b\\""')
    assert.equal(S.quoteWindowsArg('C:\\dir with space\\'), '"C:\\dir with space\\\\"', 'a trailing backslash is doubled before the closing quote')
    assert.equal(S.quoteWindowsArg('a\\\\"b c'), '"a\\\\\\\\\\"b c"')
  })

  it('plans a LocalSystem auto-start service with quoted paths, restarts, and cleanup on the third failure', () => {
    const plan = S.planWindowsService({ nodePath: NODE, cliPath: CLI, configPath: CONFIG })
    assert.equal(plan.name, 'ngrokd')
    assert.equal(plan.binaryPath, `"${NODE}" "${CLI}" run --service --config ${CONFIG}`)
    assert.equal(plan.recovery.command, `"${NODE}" "${CLI}" cleanup --config ${CONFIG}`)
    assert.deepEqual(plan.recovery.actions, [
      { type: 'restart', delayMs: 5000 },
      { type: 'restart', delayMs: 30000 },
      { type: 'run-command', delayMs: 0 },
    ])
    assert.equal(plan.recovery.resetPeriodSeconds, 86400)
    assert.equal(plan.recovery.onNonCrashFailures, true)
    assert.deepEqual(S.encodeScActions(plan.recovery.actions), Buffer.from('01000000881300000100000030750000' + '0300000000000000', 'hex'))
    assert.deepEqual(S.encodeDependencies(['Tcpip', 'Dnscache']), Buffer.from('Tcpip\0Dnscache\0\0', 'utf16le'))
    assert.match(plan.cleanupAfterStop, /cleanup --config/)
    assert.throws(() => S.planWindowsService({ nodePath: 'node.exe', cliPath: CLI }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID'))
    // a named instance: its own service, and every command it runs names the instance
    const work = S.planWindowsService({ nodePath: NODE, cliPath: CLI, configPath: CONFIG, instance: 'work' })
    assert.equal(work.name, 'ngrokd-work')
    assert.equal(work.binaryPath, `"${NODE}" "${CLI}" run --service --config ${CONFIG} --instance work`)
    assert.equal(work.recovery.command, `"${NODE}" "${CLI}" cleanup --config ${CONFIG} --instance work`)
    assert.throws(() => S.planWindowsService({ nodePath: NODE, cliPath: CLI, instance: 'Work!' }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID'))
  })

  it('installs: CreateServiceW, description, failure actions and their flag, then StartServiceW; every handle closed', async () => {
    const scm = new FakeScm()
    const plan = S.planWindowsService({ nodePath: NODE, cliPath: CLI })
    assert.equal(await S.installWindowsService(scm, plan, OPTIONS), 'created')
    assert.deepEqual(scm.calls, ['OpenSCManagerW(0x3)', 'CreateServiceW(ngrokd)', 'ChangeServiceConfig2W(DESCRIPTION)', 'ChangeServiceConfig2W(FAILURE_ACTIONS)', 'ChangeServiceConfig2W(FAILURE_ACTIONS_FLAG)', 'StartServiceW'])
    const s = scm.services.get('ngrokd')!
    assert.deepEqual(s.recovery, plan.recovery)
    assert.equal(s.flag, true)
    assert.equal(s.runningOn, plan)
    assert.equal(scm.open.size, 0)
    s.stopPolls = 2 // STOP_PENDING twice, then STOPPED: the uninstall waits for its stop, which removes what it made
    scm.calls = []
    await S.uninstallWindowsService(scm, 'ngrokd', OPTIONS)
    assert.deepEqual(scm.calls.slice(1), [
      `OpenServiceW(ngrokd, 0x${(S.DELETE | S.SERVICE_STOP | S.SERVICE_QUERY_STATUS).toString(16)})`,
      'QueryServiceStatus',
      'ControlService(STOP)',
      'QueryServiceStatus',
      'QueryServiceStatus',
      'QueryServiceStatus',
      'DeleteService',
    ])
    await S.uninstallWindowsService(scm, 'ngrokd', OPTIONS)
    assert.equal(scm.services.size, 0)
    assert.equal(scm.open.size, 0)
  })

  it('a second install replaces the first: its configuration changed, the running service stopped and started on it', async () => {
    const scm = new FakeScm()
    await S.installWindowsService(scm, S.planWindowsService({ nodePath: NODE, cliPath: CLI }), OPTIONS)
    scm.services.get('ngrokd')!.stopPolls = 2 // STOP_PENDING twice, then STOPPED
    scm.calls = []
    const second = S.planWindowsService({ nodePath: NODE, cliPath: CLI, configPath: CONFIG })
    assert.equal(await S.installWindowsService(scm, second, OPTIONS), 'replaced')
    const access = S.SERVICE_CHANGE_CONFIG | S.SERVICE_QUERY_STATUS | S.SERVICE_STOP | S.SERVICE_START
    assert.deepEqual(scm.calls, [
      'OpenSCManagerW(0x3)',
      'CreateServiceW(ngrokd)',
      `OpenServiceW(ngrokd, 0x${access.toString(16)})`,
      'ChangeServiceConfigW',
      'ChangeServiceConfig2W(DESCRIPTION)',
      'ChangeServiceConfig2W(FAILURE_ACTIONS)',
      'ChangeServiceConfig2W(FAILURE_ACTIONS_FLAG)',
      'QueryServiceStatus',
      'ControlService(STOP)',
      'QueryServiceStatus',
      'QueryServiceStatus',
      'QueryServiceStatus',
      'StartServiceW',
    ])
    const s = scm.services.get('ngrokd')!
    assert.equal(s.plan, second)
    assert.equal(s.runningOn, second, 'the service runs the new command line')
    assert.deepEqual(s.recovery, second.recovery)
    assert.equal(scm.open.size, 0)
  })

  it('a second install over a stopped service starts it; over a starting one, asks the stop again until it is taken', async () => {
    const scm = new FakeScm()
    const plan = S.planWindowsService({ nodePath: NODE, cliPath: CLI })
    await S.installWindowsService(scm, plan, OPTIONS)
    const s = scm.services.get('ngrokd')!
    s.state = S.SERVICE_STOPPED
    scm.calls = []
    assert.equal(await S.installWindowsService(scm, plan, OPTIONS), 'replaced')
    assert.deepEqual(scm.calls.slice(-2), ['QueryServiceStatus', 'StartServiceW'])
    assert.equal(s.state, 4)
    s.state = 2 // START_PENDING: ControlService answers ERROR_SERVICE_CANNOT_ACCEPT_CTRL until RUNNING
    s.startPolls = 1
    scm.calls = []
    await S.installWindowsService(scm, plan, OPTIONS)
    assert.deepEqual(scm.calls.slice(7), ['QueryServiceStatus', 'ControlService(STOP)', 'QueryServiceStatus', 'ControlService(STOP)', 'QueryServiceStatus', 'QueryServiceStatus', 'StartServiceW'])
    assert.equal(scm.open.size, 0)
  })

  it('a service that does not stop in time: a coded error naming it, the new configuration kept, every handle closed', async () => {
    const scm = new FakeScm()
    const plan = S.planWindowsService({ nodePath: NODE, cliPath: CLI })
    await S.installWindowsService(scm, plan, OPTIONS)
    scm.services.get('ngrokd')!.stopPolls = Infinity
    const second = S.planWindowsService({ nodePath: NODE, cliPath: CLI, configPath: CONFIG })
    await assert.rejects(
      S.installWindowsService(scm, second, { stopTimeoutMs: 30, pollMs: 5 }),
      (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_SERVICE') && /ngrokd did not stop within 1 s/.test((e as Error).message) && /sc query ngrokd/.test(String((e as { hint?: string }).hint)),
    )
    assert.equal(scm.services.get('ngrokd')!.plan, second)
    assert.ok(!scm.calls.includes('DeleteService'), 'the service installed before is never deleted')
    assert.equal(scm.open.size, 0)
    // a failed ChangeServiceConfigW leaves the service installed before, running, and says so
    const other = new FakeScm()
    await S.installWindowsService(other, plan, OPTIONS)
    other.fail.set('ChangeServiceConfigW', S.ERROR_DUPLICATE_SERVICE_NAME)
    await assert.rejects(S.installWindowsService(other, second, OPTIONS), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_SERVICE') && /ChangeServiceConfigW ngrokd failed: ERROR_DUPLICATE_SERVICE_NAME/.test((e as Error).message))
    assert.equal(other.services.get('ngrokd')!.state, 4)
    assert.equal(other.open.size, 0)
  })

  it('whether a service is registered: OpenServiceW, its handle closed', async () => {
    const scm = new FakeScm()
    assert.equal(S.windowsServiceInstalled(scm, 'ngrokd'), false)
    await S.installWindowsService(scm, S.planWindowsService({ nodePath: NODE, cliPath: CLI, instance: 'work' }), OPTIONS)
    assert.equal(S.windowsServiceInstalled(scm, 'ngrokd'), false)
    assert.equal(S.windowsServiceInstalled(scm, 'ngrokd-work'), true)
    assert.equal(scm.open.size, 0)
    scm.fail.set('OpenSCManagerW', S.ERROR_ACCESS_DENIED)
    assert.throws(() => S.windowsServiceInstalled(scm, 'ngrokd'), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_PERMISSION'))
  })

  it('a named instance installs beside the default service: its display name is its own', async () => {
    const scm = new FakeScm()
    await S.installWindowsService(scm, S.planWindowsService({ nodePath: NODE, cliPath: CLI }), OPTIONS)
    const work = S.planWindowsService({ nodePath: NODE, cliPath: CLI, instance: 'work' })
    assert.equal(work.displayName, 'ngrokd (work)')
    await S.installWindowsService(scm, work, OPTIONS)
    assert.deepEqual([...scm.services.keys()], ['ngrokd', 'ngrokd-work'])
    const clash = { ...work, name: 'ngrokd-other' }
    await assert.rejects(S.installWindowsService(scm, clash, OPTIONS), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_SERVICE') && /ERROR_DUPLICATE_SERVICE_NAME \(1078\)/.test((e as Error).message))
  })

  it('a failed step deletes the half-made service; ACCESS_DENIED says to elevate', async () => {
    const scm = new FakeScm()
    scm.fail.set('FAILURE_ACTIONS', 87)
    await assert.rejects(S.installWindowsService(scm, S.planWindowsService({ nodePath: NODE, cliPath: CLI }), OPTIONS), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_SERVICE'))
    assert.equal(scm.services.size, 0)
    assert.equal(scm.open.size, 0)
    const denied = new FakeScm()
    denied.fail.set('OpenSCManagerW', S.ERROR_ACCESS_DENIED)
    await assert.rejects(S.installWindowsService(denied, S.planWindowsService({ nodePath: NODE, cliPath: CLI }), OPTIONS), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_PERMISSION') && /elevated/.test(String((e as { hint?: string }).hint)))
  })
})
