import type { DaemonConfig } from '../config/daemon-config.js'
import { ConfigInvalidError } from '../config/config-invalid-error.js'
import type { Check } from '../contracts/check.js'
import { refusedKeyHint } from '../daemon/api-key-source.js'
import { callDaemon, type ControlApi } from '../daemon/control-api.js'
import { withStartHint } from '../control/control-client.js'
import { daemonCommandLine } from '../config/daemon-command.js'
import { sameDaemonFlags } from '../config/load-config.js'
import { CORE_VERSION } from '../version.js'
import { STATE_LOCK_FILE, liveHolderFor, liveSubnetHolder, stateLockHolder, stateLockReadable } from '../daemon/instance-lock.js'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { failedCheck } from './ingress-checks.js'
import { publicDomainOf } from '../names/public-domain.js'
import { parseHostsBlock } from '../names/hosts-block.js'
import { instanceOf } from '../config/instance.js'
import { readFile, stat } from 'node:fs/promises'
import { openFilesIssue, openFilesLimit } from '../forward/connection-limits.js'
import { join } from 'node:path'

/** How many failing services doctor names one by one before summing up the rest. */
const SERVICES_NAMED = 10

/** A configuration that did not load: one failing check per problem, each naming the key, the value and the fix. */
export function configProblems(e: unknown): Check[] {
  if (!(e instanceof ConfigInvalidError) || e.issues.length === 0) return [failedCheck('config.load', e)]
  const headline = `${e.message.split('\n')[0]!.replace(/:$/, '')}: ${e.issues.length} problem${e.issues.length === 1 ? '' : 's'}, listed below`
  return [failedCheck('config.load', e, headline), ...issueChecks('config.invalid', e)]
}

/** One failing check `id` per issue of `e`: the key, the file or variable it was written in, the value and what is expected. */
export function issueChecks(id: string, e: ConfigInvalidError<'NGROKD_ERR_CONFIG_INVALID' | 'NGROKD_ERR_PLUGIN_INVALID'>): Check[] {
  return e.issues.map((issue): Check => ({
    id,
    status: 'fail',
    summary: `${issue.env ? `${issue.env} (${issue.key})` : issue.key}${issue.file && !issue.env ? ` in ${issue.file}` : ''}: ${issue.message}`,
    code: e.code,
    ...(e.hint ? { hint: e.hint } : {}),
  }))
}

/**
 * The running daemon: its phase, its last poll, and every service in error — a daemon that runs while
 * endpoints fail is not healthy, so each failing service is a failing check with its error and fix.
 */
export async function daemonChecks(config: DaemonConfig, configFile?: string): Promise<Check[]> {
  // as status and the daemon's log say it, to whoever may talk to that daemon
  const setKeyCommand = `ngrokd set-api-key${sameDaemonFlags(config.instance, configFile)}`
  let status
  try {
    status = await callDaemon(config.control.socket, 'GET /v1/status', undefined, 3_000)
  } catch (e) {
    // a daemon on this state dir, interface or hosts block that answers on another socket is running, and what it made is not left over
    const live = await liveHolderFor(config)
    if (live) {
      const { holder, holds } = live
      return [{
        id: 'daemon.running',
        status: 'warn',
        summary: `an ngrokd (pid ${holder.pid}, started ${holder.startedAt}) runs on ${holds}, but its control socket is ${holder.socket}, not ${config.control.socket}`,
        hint: 'run doctor with the config that daemon was started with (--config or --instance), or set control.socket to its socket',
      }]
    }
    // only a socket that is not there or that nobody listens on says no daemon runs (not one this user may not open)
    const cause = ((e as { cause?: NodeJS.ErrnoException }).cause)?.code
    const noDaemon = cause === 'ENOENT' || cause === 'ECONNREFUSED'
    const said = withStartHint(e, daemonCommandLine('run', config, configFile)) // how this daemon is started, when none runs
    return [
      { id: 'daemon.running', status: 'warn', summary: (e as Error).message, ...(isNgrokdError(said) && said.hint ? { hint: said.hint } : {}) },
      ...(noDaemon ? await leftoverChecks(config) : []),
      ...(await subnetTakenCheck(config)),
      // no daemon to read: the limit a daemon started from this shell would have (a service's is its unit's)
      ...openFilesCheck(config, openFilesLimit(), 'ngrokd run started from this shell'),
    ]
  }
  // a daemon of another version (npm installed a new ngrokd; the service runs the old one) may answer in other shapes
  const skew = status.version === CORE_VERSION ? [] : [{
    id: 'daemon.version',
    status: 'warn' as const,
    summary: `the running daemon is ngrokd ${typeof status.version === 'string' ? status.version : '(of an unknown version)'}, this doctor ${CORE_VERSION}`,
    hint: 'restart the daemon to run this install (sudo systemctl restart ngrokd, or stop and start ngrokd run)',
  }]
  try {
    return [...skew, ...(await runningDaemonChecks(config, status, setKeyCommand))]
  } catch (e) {
    if (!(e instanceof TypeError)) throw e
    return [...skew, { id: 'daemon.running', status: 'warn', summary: `a daemon answers, but its status is not what this doctor reads (${e.message})`, hint: skew.length ? skew[0]!.hint : 'ngrokd status --json shows its reply' }]
  }
}

/** Another daemon (another instance whose name chose the same /16) serves `net.subnet`: a start of this one is refused. */
async function subnetTakenCheck(config: DaemonConfig): Promise<Check[]> {
  const holder = await liveSubnetHolder(config.net.subnet)
  if (!holder) return []
  return [{
    id: 'daemon.subnet',
    status: 'fail',
    code: 'NGROKD_ERR_ALREADY_RUNNING',
    summary: `net.subnet ${config.net.subnet} is served by another ngrokd (pid ${holder.pid}${holder.instance ? `, instance ${holder.instance}` : ''}, state dir ${holder.stateDir}): a start of this one is refused`,
    hint: `set net.subnet in this ${config.instance ? 'instance\'s ' : ''}config file to a /16 no other ngrokd serves (each instance needs its own)`,
  }]
}

/** The checks of a daemon that answered, from its status and its services. */
async function runningDaemonChecks(config: DaemonConfig, status: ControlApi['GET /v1/status']['reply'], setKeyCommand: string): Promise<Check[]> {
  const checks: Check[] = [
    {
      id: 'daemon.running',
      status: status.phase === 'running' ? 'ok' : 'warn',
      summary: `ngrokd ${status.version} is ${status.phase} (pid ${status.pid}): ${status.services.serving} serving, ${status.services.error} in error`,
      ...(status.phase === 'waiting-for-api-key' ? { hint: setKeyCommand } : {}),
    },
  ]
  const stateLock = await stateLockCheck(config.stateDir, status.pid)
  if (stateLock) checks.push(stateLock)
  // the daemon's own key, wherever it came from: what this shell's environment says about a key proves nothing about it
  // only a refusal (401/403) judges the key: a server error or an unreachable API says nothing about it (daemon.poll, api.reach)
  const lastError = status.apiKey.lastError
  // a daemon older than this doctor gives no status: its message says "HTTP 401"
  const refused = lastError !== undefined && (lastError.status === undefined ? /\bHTTP 40[13]\b/.test(lastError.message) : lastError.status === 401 || lastError.status === 403)
  checks.push(
    refused
      ? { id: 'daemon.api-key', status: 'fail', summary: `the daemon's API key (from ${status.apiKey.source}) was refused: ${lastError.message}`, hint: refusedKeyHint(status.apiKey.source, setKeyCommand) }
      : { id: 'daemon.api-key', status: 'ok', summary: `the daemon's API key comes from ${status.apiKey.source}${lastError ? ` (its last API call failed, not for the key: ${lastError.message})` : ''}` },
  )
  const stateError = status.stateError
  if (stateError) checks.push({ id: 'daemon.state', status: 'fail', summary: `the daemon cannot keep its state in state_dir: ${stateError.message}`, code: stateError.code, ...(stateError.hint ? { hint: stateError.hint } : {}) })
  const pollError = status.lastPoll && !status.lastPoll.ok ? status.lastPoll.error : undefined
  if (status.lastPoll && !status.lastPoll.ok) checks.push({ id: 'daemon.poll', status: 'warn', summary: `last API poll failed: ${pollError?.message}`, ...(pollError?.code ? { code: pollError.code } : {}), ...(pollError?.hint ? { hint: pollError.hint } : {}) })
  if (status.names.state === 'frozen') checks.push({ id: 'daemon.names', status: 'fail', summary: `names frozen since ${status.names.since}: ${status.names.error.message}`, code: status.names.error.code, ...(status.names.error.hint ? { hint: status.names.error.hint } : {}) })
  const { services, skipped = [] } = await callDaemon(config.control.socket, 'GET /v1/endpoints', undefined, 10_000)
  checks.push(...publicNameChecks(services.map((s) => s.hostname)))
  for (const r of skipped.filter((x) => x.code === 'NGROKD_ERR_NAME_UNSAFE')) {
    checks.push({ id: 'names.unsafe', status: 'warn', summary: `${r.url} (${r.id}) is not served: ${r.reason}`, code: r.code!, hint: 'intended: nothing to do; else change names.allow / names.deny, or the endpoint' })
  }
  if (status.services.error > 0) {
    const failing = services.filter((s) => s.state === 'error')
    for (const s of failing.slice(0, SERVICES_NAMED)) {
      checks.push({ id: 'daemon.service', status: 'fail', summary: `${s.url} (${s.address ?? 'no address'}): ${s.error?.message ?? 'in error'}`, ...(s.error?.code ? { code: s.error.code } : {}), ...(s.error?.hint ? { hint: s.error.hint } : {}) })
    }
    if (failing.length > SERVICES_NAMED) checks.push({ id: 'daemon.service', status: 'fail', summary: `and ${failing.length - SERVICES_NAMED} more services in error: ngrokd list shows them all` })
  }
  // network mode: a service this machine reaches but other machines cannot is a failure of what was asked for
  const offNetwork = services.filter((s) => s.network?.error)
  for (const s of offNetwork.slice(0, SERVICES_NAMED)) {
    const e = s.network!.error!
    checks.push({ id: 'daemon.network', status: 'fail', summary: `${s.url} is not on the network (${s.network!.address}:${s.network!.port}): ${e.message}`, ...(e.code ? { code: e.code } : {}), ...(e.hint ? { hint: e.hint } : {}) })
  }
  if (offNetwork.length > SERVICES_NAMED) checks.push({ id: 'daemon.network', status: 'fail', summary: `and ${offNetwork.length - SERVICES_NAMED} more services not on the network: ngrokd list shows them all` })
  checks.push(...openFilesCheck(config, openFilesLimit(status.pid), `the daemon (pid ${status.pid})`))
  return checks
}

/** `forwarder.open-files`: a warning when `who`, with `limit` open files, cannot reach forwarder.max_connections. */
function openFilesCheck(config: DaemonConfig, limit: number | undefined, who: string): Check[] {
  const issue = openFilesIssue(config.forwarder.maxConnections, limit, who)
  return issue ? [{ id: 'forwarder.open-files', status: 'warn', summary: issue.message, hint: issue.hint }] : []
}

/**
 * The running daemon (`pid`, as its status gives it) must hold the lock of its state dir: one removed under it (the
 * folder, or the lock) refuses no second daemon until the daemon takes it back at its next poll.
 */
async function stateLockCheck(stateDir: string, pid: number): Promise<Check | undefined> {
  // a member of control.group runs doctor too: the 0700 state dir is not its to read, and says nothing of the lock
  if (!(await stateLockReadable(stateDir))) return undefined
  const holder = await stateLockHolder(stateDir)
  if (holder?.pid === pid) return undefined
  const path = join(stateDir, STATE_LOCK_FILE)
  return {
    id: 'daemon.state-lock',
    status: 'fail',
    summary: holder
      ? `the lock ${path} names another ngrokd (pid ${holder.pid}, control socket ${holder.socket}), not the running daemon (pid ${pid}): both write their state in ${stateDir}`
      : `the running daemon (pid ${pid}) holds no lock in its state_dir ${stateDir} (${path} is missing): the folder or its lock was removed while it runs, and a second ngrokd there would not be refused`,
    code: 'NGROKD_ERR_STATE',
    hint: holder
      ? 'stop one of the two daemons, then restart the other; never remove state_dir while ngrokd runs'
      : 'the daemon makes the state dir again, takes its lock back and saves its state at its next poll (ngrokd status shows when it last polled); never remove state_dir while ngrokd runs',
  }
}

/** The interface driver's checks of the interface a running daemon has open; none without a daemon (or from one older than this doctor). */
export function runningInterfaceChecks(config: DaemonConfig): Promise<Check[]> {
  return callDaemon(config.control.socket, 'GET /v1/interface/checks', undefined, 10_000).then((r) => r.checks, () => [])
}

/** The name resolver's checks of what a running daemon has open; none without a daemon (or from one older than this doctor). */
export function runningNameResolverChecks(config: DaemonConfig): Promise<Check[]> {
  return callDaemon(config.control.socket, 'GET /v1/names/checks', undefined, 10_000).then((r) => r.checks, () => [])
}

/**
 * No daemon answers: what a crashed one left (its hosts block, its interface, its control socket)
 * is not fine — names still point at addresses nothing serves. One warning each, with the fix.
 */
async function leftoverChecks(config: DaemonConfig): Promise<Check[]> {
  const leftover = (what: string, many = false): Check => ({
    id: 'daemon.leftovers',
    status: 'warn',
    summary: `no daemon runs, but ${what} ${many ? 'are' : 'is'} still there (left by a daemon that did not stop cleanly?)`,
    hint: 'sudo ngrokd cleanup removes it (or start ngrokd run, which adopts it)',
  })
  const left: Check[] = []
  // whatever names.resolver is: a plugin's resolver may have fallen back to the hosts file
  const text = await readFile(config.names.hostsFile).catch(() => undefined)
  const records = text ? parseHostsBlock(text, instanceOf(config)).records : []
  if (records.length > 0) left.push(leftover(`${records.length} name${records.length === 1 ? '' : 's'} in the ngrokd ${config.instance ? `instance ${config.instance} ` : ''}block of ${config.names.hostsFile}`, records.length > 1))
  // Linux lists this network namespace's links in /proc/net/dev (/sys/class/net is that of whoever mounted /sys); elsewhere the cleanup finds out
  const links = process.platform === 'linux' ? await readFile('/proc/net/dev', 'utf8').catch(() => '') : ''
  // kept on purpose by a clean stop when cleanup.remove_interface_on_stop is false. Only the name is known here: the
  // driver tells its own link from another program's (which cleanup and run refuse) when it opens it.
  const name = config.net.interfaceName
  if (config.cleanup.removeInterfaceOnStop && links.split('\n').some((line) => line.split(':')[0]!.trim() === name)) {
    left.push({
      id: 'daemon.leftovers',
      status: 'warn',
      summary: `no daemon runs, but an interface named ${name} is there: left by a daemon that did not stop cleanly, or another program's of that name`,
      hint: `sudo ngrokd cleanup removes it if ngrokd made it (ngrokd run adopts it); one that is not ngrokd's both refuse and leave alone: then set net.interface_name to a name no other interface uses`,
    })
  }
  if (await stat(config.control.socket).then((s) => s.isSocket(), () => false)) left.push(leftover(`control socket ${config.control.socket}`))
  return left
}

/**
 * A served hostname that is also a registrable public domain (`github.com`, `api.web.dev`): every
 * program on this machine reaches ngrok's endpoint instead of the internet under that name. Maybe
 * intended (a legacy `*.ngrok.app` endpoint), maybe not: a warning per name.
 */
export function publicNameChecks(hostnames: readonly string[]): Check[] {
  return [...new Set(hostnames)].sort().flatMap((hostname): Check[] => {
    const domain = publicDomainOf(hostname)
    if (domain === undefined) return []
    return [{
      id: 'names.public-domain',
      status: 'warn',
      summary: `${hostname} is served, and ${domain === hostname ? 'it is' : `it is under ${domain},`} a public internet domain: this machine reaches the ngrok endpoint instead of the real site under that name`,
      hint: `if that is not intended, add ${hostname}${domain === hostname ? '' : ` (or ${domain})`} to names.deny, or list only your own suffixes in names.allow`,
    }]
  })
}
