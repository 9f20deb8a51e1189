import { existsSync } from 'node:fs'
import { access, constants, lstat, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { Check } from '../contracts/check.js'
import { silentLogger } from '../contracts/logger.js'
import { loadConfig, redactSecret, type DaemonConfig } from '../config/index.js'
import { daemonCommandLine } from '../config/daemon-command.js'
import { CONFIG_SEARCH_PLACES } from '../config/load-config.js'
import { runsAsRoot } from '../util/trusted-path.js'
import { nearestExisting } from '../util/nearest-existing.js'
import { resolveDriver } from '../driver/resolve-driver.js'
import type { DriverRequirement } from '../driver/define-driver.js'
import { failedCheck as failed, ingressChecks } from './ingress-checks.js'
import { pluginChecks } from './plugin-checks.js'
import { wellFormedChecks } from '../contracts/check-shape.js'
import { configProblems, daemonChecks, runningInterfaceChecks, runningNameResolverChecks } from './daemon-checks.js'
import { assertTrustedHostsFile, hostsFileResolverFor } from '../names/platform-hosts-file.js'
import { NgrokApiClient } from '../api/ngrok-api-client.js'
import { hasNetAdmin } from '../util/privilege.js'
import { notAFileKind } from '../util/state-dir-problem.js'
import { checkStateDirTrust } from '../daemon/state-dir.js'
import { START_CHECKS, nameResolverDriverOf } from '../daemon/start-checks.js'
import { stateDirProblem } from '../util/state-dir-problem.js'
import { API_KEY_FILE, apiKeyFilePath, checkApiKey, readApiKeyFile } from '../daemon/api-key-file.js'
import { USER_AGENT } from '../version.js'
import { callDaemon } from '../daemon/control-api.js'
import { INSTANCE_ENV } from '../config/instance.js'
import { REGISTRATION_FILES } from '../registration/registration.js'
import { ENDPOINT_CACHE_FILE } from '../daemon/endpoint-poller.js'
import { ALLOCATIONS_FILE } from '../alloc/persistent-allocator.js'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { ConfigInvalidError } from '../config/config-invalid-error.js'

export interface DoctorOptions {
  configPath?: string
  /** `--instance NAME`: that instance's configuration. */
  instance?: string
  /** Skip the check that calls the ngrok API. */
  offline?: boolean
  /** Called with each check as it is made (a person sees progress while the slow ones run). */
  onCheck?: (check: Check) => void
  /** Told before a check that may wait (the API, the ingress), what it waits for; the next `onCheck` ends the wait. */
  onWait?: (what: string) => void
}

export interface DoctorReport {
  checks: Check[]
  /** False when any check failed. */
  ok: boolean
}

/**
 * `ngrokd doctor`: every check reads, none changes the machine. Core checks (config, driver,
 * privilege, state, API key and reachability, trust roots, the daemon) plus each component's
 * `diagnose()`.
 */
export async function runDoctor({ configPath, instance, offline = false, onCheck, onWait }: DoctorOptions = {}): Promise<DoctorReport> {
  const checks: Check[] = []
  const report = (...made: Check[]): void => {
    checks.push(...made)
    if (onCheck) for (const c of made) onCheck(c)
  }
  const [major, minor] = process.versions.node.split('.').map(Number) as [number, number]
  // 20.18 / 22.9: tls allowPartialTrustChain, which trusting ngrok's intermediate CA needs
  const nodeOk = (major === 20 && minor >= 18) || (major === 22 && minor >= 12) || major >= 23
  const nodeCheck: Check = { id: 'node.version', status: nodeOk ? 'ok' : 'fail', summary: `Node.js ${process.version}`, ...(nodeOk ? {} : { hint: 'use Node 20.18+ or 22.12+ (24 recommended)' }) }

  let config: DaemonConfig
  let source: string | undefined
  let apiKeyInFile = false
  try {
    const loaded = await loadConfig({ configPath, ...(instance ? { instance } : {}) })
    config = loaded.config
    source = loaded.source
    apiKeyInFile = loaded.source !== undefined && (await fileHoldsApiKey(configPath, instance))
    report({ id: 'config.load', status: 'ok', summary: `configuration from ${loaded.source ?? 'defaults and environment'}` })
    // as root the current directory is not searched: say so when a config file there looks meant (looked at, never read)
    const passedOver = configPath === undefined && runsAsRoot() ? CONFIG_SEARCH_PLACES.filter((f) => f !== 'package.json').map((f) => join(process.cwd(), f)).find((f) => existsSync(f)) : undefined
    if (passedOver && passedOver !== loaded.source) {
      report({ id: 'config.search', status: 'warn', summary: `${passedOver} is not read: as root the current directory is not searched (it may be another user's)`, hint: `pass it with --config ${passedOver}, or move it to /etc/ngrokd/config.yml` })
    }
    for (const notice of loaded.notices) report({ id: notice.check, status: 'warn', summary: notice.message })
  } catch (e) {
    // every problem, one check each; and nothing below runs against a configuration that did not load
    // (not the built-in defaults either: that would call the real API with a key meant for another one)
    report(...configProblems(e), nodeCheck)
    report(...(await runningDespiteConfig(configPath, instance)))
    report({ id: 'config.other-checks', status: 'skip', summary: 'the other checks need a configuration that loads: fix the problems above and run ngrokd doctor again' })
    return { checks, ok: false }
  }
  report(nodeCheck)

  // a control.group member asking about the daemon of another user (root): this user's rights are not the daemon's
  const otherUsers = await otherUsersStateDir(config.stateDir)
  if (otherUsers) report(otherUsers.check)
  const privileged = hasNetAdmin() || otherUsers?.uid === 0
  try {
    const resolved = await resolveDriver(config.net.driver, { configDir: config.configDir, kind: 'interface', privileged })
    report({
      id: 'driver.resolve',
      status: 'ok',
      summary: `net.driver ${config.net.driver}${config.net.driver === resolved.name ? '' : ` → ${resolved.name}`} (${resolved.specifier}, for ${resolved.driver.platforms.join('/')}, core ${resolved.driver.ngrokd})${needs(resolved.driver.requirements)}`,
    })
    if (resolved.reason && config.net.driver === 'auto') report({ id: 'driver.auto', status: privileged ? 'ok' : 'warn', summary: resolved.reason })
    const driverChecks = otherUsers ? [] : await resolved.driver.diagnose?.({ logger: silentLogger, stateDir: config.stateDir, platform: process.platform }, {
      name: config.net.interfaceName,
      subnet: config.net.subnet,
      stateDir: config.stateDir,
      force: config.net.force,
      ...config.net.driverOptions,
    })
    // a running daemon's driver checks the interface it has open: its check replaces the module's of the same id
    const live = wellFormedChecks(await runningInterfaceChecks(config), 'driver.diagnose', `the running daemon's driver ${resolved.name}`, 'NGROKD_ERR_DRIVER_FAILED')
    const liveIds = new Set(live.map((c) => c.id))
    report(...wellFormedChecks(driverChecks ?? [], 'driver.diagnose', `driver ${resolved.name}: diagnose()`, 'NGROKD_ERR_DRIVER_FAILED').filter((c) => !liveIds.has(c.id)), ...live)
  } catch (e) {
    report(failed('driver.resolve', e))
  }
  // what else the start resolves and would stop on (net.driver is the check above)
  const nameDriver = await nameResolverDriverOf(config).then(
    (found) => (report({ id: 'names.resolver', status: 'ok', summary: `names.resolver ${config.names.resolver}` }), found),
    (e: unknown) => void report(failed('names.resolver', e)),
  )
  // a name-resolver driver's own checks, as the interface driver's above
  if (nameDriver && !otherUsers) {
    const ctx = { logger: silentLogger, stateDir: config.stateDir, platform: process.platform }
    const nameChecks = await Promise.resolve()
      .then(() => nameDriver.driver.diagnose?.(ctx, { ...config.names.driverOptions }))
      .catch((e: unknown) => [failed('driver.diagnose', e)])
    // a running daemon's resolver checks what it has open: its check replaces the module's of the same id
    const live = wellFormedChecks(await runningNameResolverChecks(config), 'driver.diagnose', `the running daemon's name-resolver driver ${nameDriver.name}`, 'NGROKD_ERR_DRIVER_FAILED')
    const liveIds = new Set(live.map((c) => c.id))
    report(...wellFormedChecks(nameChecks ?? [], 'driver.diagnose', `name-resolver driver ${nameDriver.name}: diagnose()`, 'NGROKD_ERR_DRIVER_FAILED').filter((c) => !liveIds.has(c.id)), ...live)
  }
  const said = { 'control.group': `control.group ${config.control.group} exists`, 'control.socket': `control.socket ${config.control.socket} can be made` }
  for (const key of ['control.group', 'control.socket'] as const) {
    if (key === 'control.group' && !config.control.group) continue
    await START_CHECKS[key](config).then(
      () => report({ id: key, status: 'ok', summary: said[key] }),
      (e: unknown) => report(failed(key, e)),
    )
  }

  // as run judges it, whatever names.resolver is (a plugin's resolver may fall back to the hosts file)
  const refused = await assertTrustedHostsFile(config).then(
    () => undefined,
    (e: unknown) => (isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED') || isNgrokdError(e, 'NGROKD_ERR_HOSTS_FILE') ? e : undefined), // a missing file is the access check's to say
  )
  if (refused) report({ id: 'hosts-file.access', status: 'fail', summary: refused.message, code: refused.code, ...(refused.hint ? { hint: refused.hint } : {}) })
  else if (config.names.resolver === 'hosts-file' && !otherUsers) {
    report(...((await hostsFileResolverFor(config, silentLogger).diagnose?.()) ?? []))
  }

  if (!otherUsers) report(await checkStateDir(config.stateDir))
  report(...(await checkStateFiles(config.stateDir)))
  if (apiKeyInFile) report(...(await checkConfigSecretMode(source!)))

  const keyFrom = config.api.key ? 'config or environment' : apiKeyFilePath(config.stateDir)
  const setKeyCommand = daemonCommandLine('set-api-key', config, source)
  let apiKey: string | undefined
  try {
    const given = config.api.key ?? (await readApiKeyFile(config.stateDir))
    apiKey = given === undefined ? undefined : checkApiKey(given, `the API key from ${keyFrom}`, setKeyCommand)
    report(
      apiKey
        ? { id: 'api.key', status: 'ok', summary: `API key ${redactSecret(apiKey)} (${keyFrom})` }
        : { id: 'api.key', status: 'warn', summary: 'no ngrok API key: ngrokd run will wait for one', hint: `echo "$KEY" | ${setKeyCommand}`, code: 'NGROKD_ERR_API_KEY_MISSING' },
    )
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    // the saved key is root's alone (0600): a control.group member's doctor cannot read it, which is no failure
    if (code === 'EACCES' || code === 'EPERM') {
      report({ id: 'api.key', status: 'skip', summary: `${apiKeyFilePath(config.stateDir)} is root's alone: not read (${code})`, hint: 'run ngrokd doctor with sudo to check the saved API key', code: 'NGROKD_ERR_PERMISSION' })
    } else report(failed('api.key', e))
  }
  if (apiKey && !offline) {
    try {
      const timeoutMs = Math.min(config.api.timeoutMs, 10_000)
      const api = new NgrokApiClient({ baseUrl: config.api.url, apiKey, logger: silentLogger, userAgent: USER_AGENT, timeoutMs, maxRetries: 0 })
      onWait?.(`asking the ngrok API at ${config.api.url} (up to ${Math.ceil(timeoutMs / 1000)} s)`)
      const operators = await api.listOperators()
      report({ id: 'api.reach', status: 'ok', summary: `${config.api.url} answers; the key sees ${operators.length} operator registration(s)` })
    } catch (e) {
      report(failed('api.reach', e))
    }
  } else if (offline) {
    report({ id: 'api.reach', status: 'skip', summary: '--offline: the ngrok API was not called' })
  }

  if (!offline) onWait?.(`dialling the binding ingress (up to ${Math.ceil((config.forwarder.handshakeTimeoutMs + config.forwarder.connRequestTimeoutMs) / 1000)} s)`)
  report(...(await ingressChecks(config, { offline })))
  report(...(await pluginChecks(config)))

  report(...(await daemonChecks(config, source)))

  return { checks, ok: !checks.some((c) => c.status === 'fail') }
}

/**
 * Where `state_dir` is another user's (a `control.group` member runs doctor about root's daemon): that user and the
 * check that says so. What this user may write or do (state_dir, the hosts file, the driver's own checks) is then not
 * judged: it is not what the daemon may. Undefined as root, on Windows, and for a state_dir of this user's or none yet.
 */
async function otherUsersStateDir(dir: string): Promise<{ uid: number; check: Check } | undefined> {
  const me = process.getuid?.()
  if (me === undefined || runsAsRoot()) return undefined
  const st = await stat(dir).catch(() => undefined)
  if (!st || st.uid === me) return undefined
  const owner = st.uid === 0 ? 'root' : `uid ${st.uid}`
  return {
    uid: st.uid,
    check: {
      id: 'doctor.user',
      status: 'skip',
      summary: `state_dir ${dir} is ${owner}'s and this doctor runs as uid ${me}: what the daemon may write and do (state_dir, the hosts file, the driver's own checks) is not judged by this user's rights`,
      hint: `run sudo ngrokd doctor${owner === 'root' ? '' : ` (or doctor as ${owner})`} to check them`,
    },
  }
}

async function checkStateDir(dir: string): Promise<Check> {
  const st = await stat(dir).catch(() => undefined)
  if (st && !st.isDirectory()) {
    return { id: 'state.dir', status: 'fail', summary: `state_dir ${dir} is not a directory`, hint: 'set state_dir to a directory (ngrokd creates a missing one)', code: 'NGROKD_ERR_STATE' }
  }
  // a missing one is made with its missing parents: what matters is the nearest folder that exists
  const target = st ? dir : nearestExisting(dir)
  const existing = await stat(target).catch(() => undefined)
  if (existing && !existing.isDirectory()) {
    return { id: 'state.dir', status: 'fail', summary: `state_dir ${dir} cannot be made: ${target} is not a directory`, hint: 'set state_dir to a directory (ngrokd creates a missing one)', code: 'NGROKD_ERR_STATE' }
  }
  if (st) {
    // the daemon refuses a state_dir another user could change, as root
    const untrusted = await checkStateDirTrust(dir).then(() => undefined, (e: unknown) => e)
    if (untrusted) return failed('state.dir', untrusted)
  }
  try {
    await access(target, constants.W_OK)
    return { id: 'state.dir', status: 'ok', summary: st ? `${dir} is writable` : `${dir} will be created` }
  } catch (e) {
    // by its errno, as run says it: a read-only file system is no matter of privilege
    const problem = stateDirProblem(dir, e)
    const why = problem ? problem.why : (e as NodeJS.ErrnoException).code ?? String(e)
    return { id: 'state.dir', status: 'fail', summary: `${target} is not writable: ${why}`, hint: problem?.hint ?? 'run as root, or set state_dir to a directory you own', code: problem?.code ?? 'NGROKD_ERR_STATE' }
  }
}

/** `; needs CAP_NET_ADMIN (capability), …` from a driver's declared requirements. */
function needs(requirements: readonly DriverRequirement[] = []): string {
  return requirements.length ? `; needs ${requirements.map((r) => `${r.name} (${r.kind}${r.optional ? ', optional' : ''})`).join(', ')}` : ''
}

/**
 * With a config file that no longer loads (edited under a running daemon): the daemon its good keys lead to (a bad one
 * at its default), when one answers there; it runs on the configuration it read before. A file that does not parse
 * names no key: the daemon at the defaults' socket (with the environment's overrides) need not be the file's, and what
 * the file did not give (its state_dir, its forwarder.max_connections) judges nothing of it. Nothing else is checked.
 */
async function runningDespiteConfig(configPath: string | undefined, instance: string | undefined): Promise<Check[]> {
  let unread = false // a bad key is a ConfigInvalidError; any other error means the file was not read at all
  const salvaged = await loadConfig({ configPath, ...(instance ? { instance } : {}), salvage: (e) => (unread ||= !(e instanceof ConfigInvalidError)) }).catch(() => undefined)
  if (!salvaged) return []
  const socket = salvaged.config.control.socket
  const answers = await callDaemon(socket, 'GET /v1/status', undefined, 3_000).then(() => true, () => false)
  if (!answers) return []
  const checks = await daemonChecks(salvaged.config, salvaged.source).catch(() => [])
  if (!unread) return checks.map((c) => (c.id === 'daemon.running' ? { ...c, summary: `${c.summary}; it runs on the configuration it read before the file went bad` } : c))
  const ofInstance = salvaged.config.instance ? ` of instance ${salvaged.config.instance}` : ''
  return checks
    .filter((c) => !JUDGED_BY_THE_FILE.has(c.id))
    .map((c) => (c.id === 'daemon.running' ? { ...c, summary: `${c.summary}; the file was not read: this is the daemon at ${socket}, where the defaults${ofInstance} and the environment lead, which need not be the one of this file` } : c))
}

/** Checks of a running daemon against its configuration's values: said of no daemon when the file was not read. */
const JUDGED_BY_THE_FILE = new Set(['daemon.state-lock', 'forwarder.open-files'])

/** Whether the config file itself names `api.key` (the environment's key, which wins, aside): read again without it. */
async function fileHoldsApiKey(configPath: string | undefined, instance: string | undefined): Promise<boolean> {
  const env = process.env[INSTANCE_ENV] ? { [INSTANCE_ENV]: process.env[INSTANCE_ENV] } : {}
  const fileOnly = await loadConfig({ configPath, ...(instance ? { instance } : {}), env, salvage: () => {} }).catch(() => undefined)
  return fileOnly?.apiKeyOrigin?.startsWith('api.key in ') === true
}

/** A config file that holds `api.key` is a secret as the API key file is: readable by its owner only (POSIX modes). */
async function checkConfigSecretMode(file: string): Promise<Check[]> {
  if (process.platform === 'win32') return []
  const st = await stat(file).catch(() => undefined)
  const mode = (st?.mode ?? 0) & 0o777
  if (!st || !(mode & 0o077)) return []
  return [{ id: 'config.secret-mode', status: 'warn', summary: `${file} holds api.key and is mode ${mode.toString(8)}: others can read the key`, hint: `chmod 600 ${file}, or take api.key out of it and give the key with ngrokd set-api-key (saved 0600)` }]
}

/**
 * The registration files (which ngrokd writes itself) must be plain files, never links; the API key file a file
 * (a link to a secret store is fine); the client key and the API key readable by their owner only; the state dir
 * (created 0700), the endpoint list and the allocations (written 0600) private to it too (a warning: names, no secret).
 */
async function checkStateFiles(dir: string): Promise<Check[]> {
  const checks: Check[] = []
  if (process.platform !== 'win32') {
    for (const path of [dir, join(dir, ENDPOINT_CACHE_FILE), join(dir, ALLOCATIONS_FILE)]) {
      const st = await lstat(path).catch(() => undefined)
      const mode = (st?.mode ?? 0) & 0o777
      if (!st || st.isSymbolicLink() || !(mode & 0o077)) continue
      const want = path === dir ? '700' : '600'
      checks.push({ id: 'state.private-mode', status: 'warn', summary: `${path} is mode ${mode.toString(8)}: others can ${path === dir ? 'list it' : 'read it'} (ngrokd makes it ${want})`, hint: `chmod ${want} ${path}` })
    }
  }
  for (const name of [...Object.values(REGISTRATION_FILES), API_KEY_FILE]) {
    const path = join(dir, name)
    const st = await (name === API_KEY_FILE ? stat : lstat)(path).catch(() => undefined)
    if (!st) continue
    if (!st.isFile()) {
      const what = notAFileKind(st)
      const then = name === API_KEY_FILE ? 'give the key again: ngrokd set-api-key' : 'start ngrokd: it writes its registration files itself (a missing key or certificate is made anew and registered)'
      checks.push({ id: 'state.files', status: 'fail', summary: `${path} is ${what}, not a file of ngrokd's`, hint: `remove it (rm -r ${path}), then ${then}`, code: 'NGROKD_ERR_STATE' })
      continue
    }
    if (name !== REGISTRATION_FILES.key && name !== API_KEY_FILE) continue
    const mode = st.mode & 0o777
    checks.push(
      mode & 0o077
        ? { id: 'state.secret-mode', status: 'fail', summary: `${path} is mode ${mode.toString(8)}: others can read it`, hint: `chmod 600 ${path}` }
        : { id: 'state.secret-mode', status: 'ok', summary: `${path} is mode 600` },
    )
  }
  return checks
}
