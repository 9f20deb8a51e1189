import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import * as S from './windows-service.js'
import { parseScmPrototypes, scmStructLayouts, SCM_PROTOTYPES, SERVICE_DISPATCH_PROTOTYPES } from './windows-service-ffi.js'

function fixture(): Record<string, Record<string, number>> {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir)
  return JSON.parse(readFileSync(join(dir, 'src/service/windows-abi.json'), 'utf8')).targets
}

const NODE = 'C:\\Program Files\\nodejs\\node.exe'
const CLI = 'C:\\Program Files\\nodejs\\node_modules\\ngrokd\\node_modules\\@ngrokd\\core\\dist\\bin\\ngrokd.js'
const CONFIG = 'C:\\ProgramData\\ngrokd\\config.yml'

class FakeScm implements S.ScmApi {
  calls: string[] = []
  services = new Map<string, { plan: S.WindowsServicePlan; description?: string; recovery?: S.WindowsServicePlan['recovery']; flag?: boolean; deleted?: boolean }>()
  open = new Set<bigint>()
  fail = new Map<string, number>()
  #next = 100n
  #byHandle = new Map<bigint, string>()
  #h(name: string) {
    const h = this.#next++
    this.open.add(h)
    this.#byHandle.set(h, name)
    return h
  }
  openManager(access: number) {
    this.calls.push(`OpenSCManagerW(0x${access.toString(16)})`)
    const e = this.fail.get('OpenSCManagerW')
    return e ? { handle: 0n, error: e } : { handle: this.#h('SCM'), error: 0 }
  }
  createService(_m: bigint, plan: S.WindowsServicePlan) {
    this.calls.push(`CreateServiceW(${plan.name})`)
    if (this.services.has(plan.name)) return { handle: 0n, error: S.ERROR_SERVICE_EXISTS }
    // CreateServiceW: a display name that is another service's name or display name (compared without case)
    const shown = plan.displayName.toLowerCase()
    if ([...this.services.entries()].some(([name, s]) => name.toLowerCase() === shown || s.plan.displayName.toLowerCase() === shown)) return { handle: 0n, error: S.ERROR_DUPLICATE_SERVICE_NAME }
    this.services.set(plan.name, { plan })
    return { handle: this.#h(plan.name), error: 0 }
  }
  openService(_m: bigint, name: string) {
    this.calls.push(`OpenServiceW(${name})`)
    return this.services.has(name) ? { handle: this.#h(name), error: 0 } : { handle: 0n, error: S.ERROR_SERVICE_DOES_NOT_EXIST }
  }
  setDescription(h: bigint, d: string) {
    this.calls.push('ChangeServiceConfig2W(DESCRIPTION)')
    this.services.get(this.#byHandle.get(h)!)!.description = d
    return 0
  }
  setFailureActions(h: bigint, r: S.WindowsServicePlan['recovery']) {
    this.calls.push('ChangeServiceConfig2W(FAILURE_ACTIONS)')
    const e = this.fail.get('FAILURE_ACTIONS')
    if (e) return e
    this.services.get(this.#byHandle.get(h)!)!.recovery = r
    return 0
  }
  setFailureActionsOnNonCrashFailures(h: bigint, on: boolean) {
    this.calls.push('ChangeServiceConfig2W(FAILURE_ACTIONS_FLAG)')
    this.services.get(this.#byHandle.get(h)!)!.flag = on
    return 0
  }
  deleteService(h: bigint) {
    this.calls.push('DeleteService')
    this.services.delete(this.#byHandle.get(h)!)
    return 0
  }
  closeServiceHandle(h: bigint) {
    assert.ok(this.open.delete(h), `CloseServiceHandle of a handle that is not open: ${h}`)
  }
}

describe('Windows service registration', () => {
  it('constants and SERVICE_FAILURE_ACTIONSW / SC_ACTION layouts match mingw-w64 (winsvc.h, winnt.h)', () => {
    const targets = fixture()
    for (const v of Object.values(targets)) {
      for (const k of ['SERVICE_WIN32_OWN_PROCESS', 'SERVICE_AUTO_START', 'SERVICE_ERROR_NORMAL', 'SC_MANAGER_CONNECT', 'SC_MANAGER_CREATE_SERVICE', 'SERVICE_QUERY_STATUS', 'SERVICE_CHANGE_CONFIG', 'SERVICE_STOP', 'DELETE', 'SERVICE_CONFIG_DESCRIPTION', 'SERVICE_CONFIG_FAILURE_ACTIONS', 'SERVICE_CONFIG_FAILURE_ACTIONS_FLAG', 'SC_ACTION_NONE', 'SC_ACTION_RESTART', 'SC_ACTION_RUN_COMMAND', 'ERROR_SERVICE_EXISTS', 'ERROR_SERVICE_DOES_NOT_EXIST', 'ERROR_SERVICE_MARKED_FOR_DELETE', 'ERROR_DUPLICATE_SERVICE_NAME'] as const) {
        assert.equal((S as Record<string, unknown>)[k], v[k], k)
      }
      assert.equal(v['sizeof SC_ACTION'], S.SC_ACTION_SIZE)
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

  it('installs: CreateServiceW, description, failure actions and their flag; every handle closed', () => {
    const scm = new FakeScm()
    const plan = S.planWindowsService({ nodePath: NODE, cliPath: CLI })
    S.installWindowsService(scm, plan)
    assert.deepEqual(scm.calls, ['OpenSCManagerW(0x3)', 'CreateServiceW(ngrokd)', 'ChangeServiceConfig2W(DESCRIPTION)', 'ChangeServiceConfig2W(FAILURE_ACTIONS)', 'ChangeServiceConfig2W(FAILURE_ACTIONS_FLAG)'])
    const s = scm.services.get('ngrokd')!
    assert.deepEqual(s.recovery, plan.recovery)
    assert.equal(s.flag, true)
    assert.equal(scm.open.size, 0)
    assert.throws(() => S.installWindowsService(scm, plan), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_SERVICE') && /ERROR_SERVICE_EXISTS \(1073\)/.test((e as Error).message) && /uninstall first/.test(String((e as { hint?: string }).hint)))
    S.uninstallWindowsService(scm)
    S.uninstallWindowsService(scm)
    assert.equal(scm.services.size, 0)
    assert.equal(scm.open.size, 0)
  })

  it('a named instance installs beside the default service: its display name is its own', () => {
    const scm = new FakeScm()
    S.installWindowsService(scm, S.planWindowsService({ nodePath: NODE, cliPath: CLI }))
    const work = S.planWindowsService({ nodePath: NODE, cliPath: CLI, instance: 'work' })
    assert.equal(work.displayName, 'ngrokd (work)')
    S.installWindowsService(scm, work)
    assert.deepEqual([...scm.services.keys()], ['ngrokd', 'ngrokd-work'])
    const clash = { ...work, name: 'ngrokd-other' }
    assert.throws(() => S.installWindowsService(scm, clash), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_SERVICE') && /ERROR_DUPLICATE_SERVICE_NAME \(1078\)/.test((e as Error).message))
  })

  it('a failed step deletes the half-made service; ACCESS_DENIED says to elevate', () => {
    const scm = new FakeScm()
    scm.fail.set('FAILURE_ACTIONS', 87)
    assert.throws(() => S.installWindowsService(scm, S.planWindowsService({ nodePath: NODE, cliPath: CLI })), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_SERVICE'))
    assert.equal(scm.services.size, 0)
    assert.equal(scm.open.size, 0)
    const denied = new FakeScm()
    denied.fail.set('OpenSCManagerW', S.ERROR_ACCESS_DENIED)
    assert.throws(() => S.installWindowsService(denied, S.planWindowsService({ nodePath: NODE, cliPath: CLI })), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_PERMISSION') && /elevated/.test(String((e as { hint?: string }).hint)))
  })
})
