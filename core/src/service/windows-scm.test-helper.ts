import assert from 'node:assert/strict'
import * as S from './windows-service.js'

const SERVICE_STOP_PENDING = 3 // winsvc.h
const SERVICE_START_PENDING = 2 // winsvc.h
const SERVICE_RUNNING = 4 // winsvc.h

export interface FakeService {
  plan: S.WindowsServicePlan
  description?: string
  recovery?: S.WindowsServicePlan['recovery']
  flag?: boolean
  /** SERVICE_STATUS.dwCurrentState. */
  state: number
  /** The plan it was started on (what its process runs). */
  runningOn?: S.WindowsServicePlan
  /** QueryServiceStatus answers STOP_PENDING this many times after a stop before STOPPED; Infinity: a stop that hangs. */
  stopPolls: number
  /** QueryServiceStatus answers START_PENDING this many times before RUNNING (ControlService refuses meanwhile). */
  startPolls: number
}

/** The Service Control Manager in JS: services by name, their states, and every call made, in order. */
export class FakeScm implements S.ScmApi {
  calls: string[] = []
  services = new Map<string, FakeService>()
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
  #service(h: bigint): FakeService {
    const s = this.services.get(this.#byHandle.get(h)!)
    assert.ok(s, `a handle of no service: ${h}`)
    return s
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
    this.services.set(plan.name, { plan, state: S.SERVICE_STOPPED, stopPolls: 1, startPolls: 0 })
    return { handle: this.#h(plan.name), error: 0 }
  }
  openService(_m: bigint, name: string, access: number) {
    this.calls.push(`OpenServiceW(${name}, 0x${access.toString(16)})`)
    return this.services.has(name) ? { handle: this.#h(name), error: 0 } : { handle: 0n, error: S.ERROR_SERVICE_DOES_NOT_EXIST }
  }
  changeConfig(h: bigint, plan: S.WindowsServicePlan) {
    this.calls.push('ChangeServiceConfigW')
    const e = this.fail.get('ChangeServiceConfigW')
    if (e) return e
    this.#service(h).plan = plan
    return 0
  }
  setDescription(h: bigint, d: string) {
    this.calls.push('ChangeServiceConfig2W(DESCRIPTION)')
    this.#service(h).description = d
    return 0
  }
  setFailureActions(h: bigint, r: S.WindowsServicePlan['recovery']) {
    this.calls.push('ChangeServiceConfig2W(FAILURE_ACTIONS)')
    const e = this.fail.get('FAILURE_ACTIONS')
    if (e) return e
    this.#service(h).recovery = r
    return 0
  }
  setFailureActionsOnNonCrashFailures(h: bigint, on: boolean) {
    this.calls.push('ChangeServiceConfig2W(FAILURE_ACTIONS_FLAG)')
    this.#service(h).flag = on
    return 0
  }
  queryState(h: bigint) {
    this.calls.push('QueryServiceStatus')
    const s = this.#service(h)
    if (s.state === SERVICE_STOP_PENDING && s.stopPolls-- <= 0) s.state = S.SERVICE_STOPPED
    else if (s.state === SERVICE_START_PENDING && s.startPolls-- <= 0) s.state = SERVICE_RUNNING
    return { state: s.state, error: 0 }
  }
  stopService(h: bigint) {
    this.calls.push('ControlService(STOP)')
    const s = this.#service(h)
    if (s.state === S.SERVICE_STOPPED) return S.ERROR_SERVICE_NOT_ACTIVE
    if (s.state !== SERVICE_RUNNING) return S.ERROR_SERVICE_CANNOT_ACCEPT_CTRL
    s.state = SERVICE_STOP_PENDING
    return 0
  }
  startService(h: bigint) {
    this.calls.push('StartServiceW')
    const s = this.#service(h)
    if (s.state !== S.SERVICE_STOPPED) return S.ERROR_SERVICE_ALREADY_RUNNING
    s.state = SERVICE_RUNNING
    s.runningOn = s.plan
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
