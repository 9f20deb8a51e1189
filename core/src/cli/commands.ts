import { createInterface } from 'node:readline'
import { Writable } from 'node:stream'
import { basename, join, resolve } from 'node:path'
import { loadConfig, sameDaemonFlags, describeConfig, checkInstanceFlag, ConfigInvalidError, DEFAULT_CONFIG_PATH, type DaemonConfig, type LoadedConfig } from '../config/index.js'
import { daemonCommandLine } from '../config/daemon-command.js'
import { callDaemon, type ControlApi, type DaemonStatus, type TrafficTotals } from '../daemon/control-api.js'
import { REINSTALL_WHY } from '../daemon/config-reload.js'
import { withStartHint } from '../control/control-client.js'
import { liveHolderFor } from '../daemon/instance-lock.js'
import { instanceConfigPath } from '../config/instance.js'
import type { PluginStatus } from '../plugin/plugin-host.js'
import { apiKeyCheckTimeoutMs, checkApiKey, saveApiKeyFile } from '../daemon/api-key-file.js'
import { silentLogger } from '../contracts/logger.js'
import { NON_LOCAL_CLIENT } from '../contracts/forwarder.js'
import type { RejectedEndpoint } from '../protocol/endpoints.js'
import type { CleanupReport } from '../daemon/cleanup.js'
import { LOG_FORMATS, type LogFormat } from '../log/log-format.js'
import { NgrokdError, formatError, isNgrokdError } from '../errors/ngrokd-error.js'
import { CORE_VERSION } from '../version.js'
import { parseCommandArgs, helpText, type CommandSpec } from './args.js'
import { driverVersionLines } from './driver-versions.js'
import { renderTable } from './table.js'
import { terminalSafe, waitingLine } from './terminal-text.js'
import { runsAsSystemdService } from '../util/systemd-service.js'
import { pluginThatThrew } from '../plugin/plugin-context.js'

/**
 * What only some commands need is imported when they run: `status`, `list` and `version` start without
 * the daemon, the logger or the drivers (a third of the time and memory of loading everything).
 */
const load = {
  daemon: () => import('../daemon/daemon.js'),
  cleanup: () => import('../daemon/cleanup.js'),
  serviceAction: () => import('./service-action.js'),
  logger: () => import('../log/create-logger.js'),
  youngGeneration: () => import('../util/young-generation.js'),
}

export interface Command extends CommandSpec {
  run(argv: string[]): Promise<number>
}

/** Declares a command; keeps the option types flowing into run(). */
function defineCommand<O extends CommandSpec['options']>(c: CommandSpec<O> & { run(this: CommandSpec<O>, argv: string[]): Promise<number> }): Command {
  return c as unknown as Command
}

/**
 * Calls the daemon of `config` on its control.socket; when nothing answers there but a daemon holds the
 * state dir, on the socket that daemon was started with (control.socket was edited since: a reload says it
 * needs a restart). Only a socket that is not there or that nobody listens on is tried again.
 */
async function onDaemonOf<T>(config: DaemonConfig, call: (socket: string) => Promise<T>, configFile: string | undefined): Promise<T> {
  try {
    return await call(config.control.socket)
  } catch (e) {
    const cause = (e as { cause?: NodeJS.ErrnoException }).cause?.code
    if (cause !== 'ENOENT' && cause !== 'ECONNREFUSED') throw e
    // the state dir's lock only (no run dir): a daemon on the same interface or hosts block is another config's
    const holder = (await liveHolderFor(config, null))?.holder
    if (!holder?.socket || holder.socket === config.control.socket) throw withStartHint(e, daemonCommandLine('run', config, configFile))
    return call(holder.socket)
  }
}

/** Said when the running daemon is of another version than this command (npm installed a new one; the service runs the old). */
function versionSkew(daemonVersion: unknown): string | undefined {
  if (daemonVersion === CORE_VERSION) return undefined
  return `the running daemon is ngrokd ${typeof daemonVersion === 'string' ? daemonVersion : '(of an unknown version)'} and this command is ${CORE_VERSION}: restart the daemon to run this install (sudo systemctl restart ngrokd, or stop and start ngrokd run)`
}

/**
 * Prints a reply of the daemon for a person; a reply this version cannot read (a daemon of another version) is
 * printed as it is, with why, instead of failing on a field it lacks.
 */
function printReply(command: string, reply: unknown, render: () => string, skew?: string): void {
  if (skew) console.error(`ngrokd ${command}: ${skew}`)
  let text: string
  try {
    text = render()
  } catch (e) {
    if (!(e instanceof TypeError)) throw e
    console.error(`ngrokd ${command}: the daemon's reply is not what this version reads (${e.message}); shown as it is${skew ? '' : ' (`ngrokd status` shows the daemon\'s version)'}`)
    text = JSON.stringify(reply, null, 2)
  }
  console.log(text)
}

/**
 * The configuration a command acts on. What the search for a config file stopped at (`config.search`: a package.json
 * that does not parse) is said on stderr, since it decides which daemon the command acts on; `run` passes `logged` and
 * logs it with the other notices.
 */
async function configFor(values: { config?: string; instance?: string }, search = true, salvage?: (e: NgrokdError<'NGROKD_ERR_CONFIG_INVALID'>) => void, logged = false): Promise<LoadedConfig> {
  if (values.instance !== undefined) checkInstanceFlag(values.instance)
  const loaded = await loadConfig({ configPath: values.config, ...(values.instance ? { instance: values.instance } : {}), ...(search ? {} : { search: false }), ...(salvage ? { salvage } : {}) })
  if (!logged) for (const notice of loaded.notices) if (notice.check === 'config.search') console.error(`ngrokd: warning: ${notice.message}`)
  return loaded
}

/**
 * For commands that only ask the daemon (`status`, `list`): a config file edited under a running daemon, and bad
 * now, does not hide that daemon. Its good keys (a bad one at its default) lead to the daemon, the command says that
 * the file is bad, and when no daemon answers there it fails with the file's error. A file that does not parse names
 * no key: the daemon asked is the one at the instance's default socket (with the environment's overrides), said so.
 */
async function askDaemon<T>(command: string, values: { config?: string; instance?: string }, call: (socket: string) => Promise<T>): Promise<{ reply: T; loaded: LoadedConfig }> {
  let invalid: NgrokdError<'NGROKD_ERR_CONFIG_INVALID'> | undefined
  const loaded = await configFor(values, true, (e) => (invalid = e))
  try {
    let asked = loaded.config.control.socket
    const reply = await onDaemonOf(loaded.config, (socket) => call((asked = socket)), loaded.source)
    if (invalid instanceof ConfigInvalidError) {
      console.error(`ngrokd ${command}: warning: ${invalid.message}\nthe daemon answering runs on the configuration it read before; fix the file before it reloads or restarts (ngrokd doctor checks it)`)
    } else if (invalid) {
      const instance = loaded.config.instance ? ` of instance ${loaded.config.instance}` : ''
      console.error(`ngrokd ${command}: warning: ${invalid.message}\nthe file was not read: this is the daemon at ${asked}, where the defaults${instance} and the environment lead, which need not be the one of this file; fix the file and ask again (ngrokd doctor checks it)`)
    }
    return { reply, loaded }
  } catch (e) {
    const cause = (e as { cause?: NodeJS.ErrnoException }).cause?.code
    throw invalid && (cause === 'ENOENT' || cause === 'ECONNREFUSED') ? invalid : e
  }
}

/** The Windows service never looks for a config file where it runs (its working directory is System32's): only --config or the default file. */
function searchFor(values: { service?: boolean | undefined }): boolean {
  return !values.service
}

/** How much longer than `forwarder.drain_timeout` a stop may take before the process exits anyway. */
const STOP_GRACE_MS = 10_000

const runCommand = defineCommand({
  name: 'run',
  summary: 'Run the daemon in the foreground: register, discover endpoints, serve them by hostname until SIGTERM/SIGINT; SIGHUP reloads the config.',
  usage:
    'ngrokd run [--config FILE] [--log-format json|pretty|auto]\n\n' +
    '  --log-format F   json: one JSON object per line (for journald and log shippers); pretty: readable lines;\n' +
    '                   auto (the default): pretty when stderr is a terminal, json otherwise\n' +
    '  --service        (Windows) run as the service ngrokd service install registered: the Service Control Manager\n' +
    '                   starts and stops it; the log goes to state_dir\\ngrokd.log',
  options: { 'log-format': { type: 'string' }, service: { type: 'boolean' } } as const,
  optionValues: { 'log-format': LOG_FORMATS },
  optionPlatforms: { service: ['win32'] },
  async run(argv) {
    const { values } = parseCommandArgs(this, argv)
    if (values.help) return printHelp(this)
    const youngGeneration = await load.youngGeneration()
    youngGeneration.holdYoungGeneration() // loading and starting the daemon must not grow the new space for good
    const format = logFormat(values['log-format'])
    const { config, source, notices, apiKeyOrigin, empty: startedEmpty } = await configFor(values, searchFor(values), undefined, true)
    if (values.service && process.platform !== 'win32') {
      throw new NgrokdError('NGROKD_ERR_USAGE', '--service is for the Windows service', { hint: 'on this system, ngrokd service install sets up the service, which runs ngrokd run' })
    }
    const [{ createLogger, logFileDestination }, { Daemon }, { releaseAfterReconcile, releaseFreedMemoryAfterStart }] = await Promise.all([load.logger(), load.daemon(), import('../util/release-memory.js')])
    // the service's log file goes into the state dir: made first as the daemon makes it (on Windows with its protected
    // DACL, and judged), not by the log's own mkdir, which would give it the DACL %ProgramData% hands down
    if (values.service) await (await import('../daemon/state-dir.js')).prepareStateDir(config.stateDir)
    const logger = createLogger({
      level: config.log.level,
      ...(format === 'auto' ? {} : { pretty: format === 'pretty' }),
      // a service has no console: its log is a file in the state dir
      ...(values.service ? { destination: logFileDestination(join(config.stateDir, 'ngrokd.log')) } : {}),
    })
    logger.debug({ config: describeConfig(config) }, 'effective configuration')
    for (const notice of notices) logger.warn(notice.message)
    youngGeneration.collectYoungGarbageEvery(config.forwarder.youngGcEveryMib)
    // a reload reads the file this start read: one that went missing is an error, never the built-in defaults
    // (a package.json's `ngrokd` key is found again by the search that found it)
    const rereadFile = source && values.config === undefined && basename(source) !== 'package.json' ? source : undefined
    const reread = async () => {
      const again = await configFor(rereadFile ? { ...values, config: rereadFile } : values, searchFor(values), undefined, true).catch((e: unknown) => Promise.reject(rereadError(e, rereadFile)))
      // a file that held settings at the start and is empty now is most likely being written: never all the defaults
      if (again.empty && !startedEmpty) {
        throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `config file ${again.source} is empty now (a write under way?); it held settings when this daemon started`, {
          hint: 'write the file whole (to a temporary file, then rename it over), then reload; the daemon keeps the configuration it runs on',
        })
      }
      return again
    }
    const daemon = new Daemon({
      config,
      logger,
      loadConfig: reread,
      ...(source ? { configSource: source } : {}),
      ...(apiKeyOrigin ? { apiKeyOrigin } : {}),
      afterReconcile: (report) => releaseAfterReconcile(report), // what a poll and its reconcile freed
      // a systemd service is restarted by Restart=on-failure: exit for it
      ...(runsAsSystemdService()
        ? {
            onRestartNeeded: (reason: string) => {
              logger.error(`${reason}; exiting, for systemd to start ngrokd again (Restart=on-failure)`)
              stopAndExit(1)
            },
          }
        : {}),
    })
    // the process is ours here (not a library embedding Daemon): once it serves, give back what starting
    // freed (and after each reconcile, above) and let V8's young generation grow for the hot path, up to its cap
    const start = async () => {
      await daemon.start()
      releaseFreedMemoryAfterStart()
      if (config.forwarder.maxYoungGenerationMib > 0) youngGeneration.capYoungGeneration(config.forwarder.maxYoungGenerationMib)
      else youngGeneration.releaseYoungGeneration()
    }
    // A promise that failed with nobody to handle it (a plugin's or driver's fire-and-forget) is a bug of its
    // own: said, and the services stay up. Node's default would end the process and leave every address behind.
    process.on('unhandledRejection', (reason) => {
      logger.error({ err: reason }, `a promise failed and nothing handled it (a bug, most likely in a plugin or driver); ngrokd runs on: ${formatError(reason)}`)
    })
    if (values.service) {
      const [{ runAsWindowsService }, { loadServiceDispatcher }] = await Promise.all([import('../service/windows-service-control.js'), import('../service/windows-service-ffi.js')])
      return runAsWindowsService(loadServiceDispatcher(process.env.SystemRoot ?? 'C:\\Windows'), config.instance ? `ngrokd-${config.instance}` : 'ngrokd', {
        start,
        stop: () => daemon.stop(),
        stopWaitHintMs: config.forwarder.drainTimeoutMs + STOP_GRACE_MS,
      })
    }
    // SIGHUP (also what closing the terminal of a foreground run sends) reloads; it never kills without cleanup
    process.on('SIGHUP', () => {
      reread()
        .then((next) => daemon.reload(next.config, next.source))
        .catch((e: unknown) => logger.error({ err: e }, `SIGHUP: the configuration was not reloaded, the running one stays: ${formatError(e)}`))
    })
    let stopping = false
    /** The stop's exit code: a start that failed meanwhile for a reason of its own puts its code here. */
    let exitCode = 0
    let starting: Promise<void> | undefined
    /** Drains, cleans up and exits with `code`: on SIGTERM/SIGINT, and after an uncaught exception (code 1). */
    const stopAndExit = (code: number) => {
      stopping = true
      exitCode = code
      // every API call takes the stop signal and drains end after drain_timeout: a stop that still
      // takes longer than that plus a grace is stuck, and must not outlive a service manager's timeout
      const bound = config.forwarder.drainTimeoutMs + STOP_GRACE_MS
      setTimeout(() => {
        logger.error(`stopping took longer than ${bound} ms (forwarder.drain_timeout + ${STOP_GRACE_MS / 1000} s): exiting; \`ngrokd cleanup\` (or the next start) removes what is left`)
        process.exit(1)
      }, bound)
      // a start under way settles first: one that failed for a reason of its own sets the exit code
      Promise.all([daemon.stop(), starting?.catch(() => {})]).then(
        // a stop that left something behind (said in its last line) is no clean exit
        () => process.exit(exitCode === 0 && daemon.leftBehind.length > 0 ? 1 : exitCode),
        (e) => {
          logger.error({ err: e }, `cleanup failed: ${formatError(e)}`)
          process.exit(1)
        },
      )
    }
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        // a second signal (Ctrl-C again, or one to the whole process group) hurries the stop; it still cleans up
        logger.warn(`${signal} again: closing open connections now; names and addresses are still removed`)
        daemon.endDrains()
        return
      }
      logger.info(`${signal}: draining and cleaning up`)
      stopAndExit(0)
    }
    process.on('SIGTERM', onSignal)
    process.on('SIGINT', onSignal)
    // A throw out of a callback leaves the process in a state nobody knows: stop as on SIGTERM, cleaning up.
    process.on('uncaughtException', (e) => {
      // a plugin's own callback (a timer, a socket of its own): that plugin is degraded, the daemon runs on
      if (pluginThatThrew(e) !== undefined) return
      if (stopping) {
        logger.error({ err: e }, `uncaught exception while stopping: ${formatError(e)}`)
        return
      }
      logger.fatal({ err: e }, `uncaught exception (a bug, most likely in a plugin or driver): ${formatError(e)}; draining and cleaning up`)
      stopAndExit(1)
    })
    try {
      starting = start()
      await starting
    } catch (e) {
      // a signal during the start: stopAndExit undoes the start and exits, with this failure's code if it had its own
      if (stopping && isNgrokdError(e, 'NGROKD_ERR_ABORTED')) await new Promise(() => {})
      logger.fatal({ err: e }, `ngrokd could not start: ${formatError(e)}`)
      const code = isNgrokdError(e, 'NGROKD_ERR_ALREADY_RUNNING') ? 2 : 1
      if (stopping) {
        exitCode = code
        await new Promise(() => {})
      }
      return code
    }
    await new Promise(() => {}) // until a signal
    return 0
  },
})

/**
 * A reload's failure to read the file the start found without --config (the default file, or the search's): its
 * going missing is said as that, not as a --config typo.
 */
export function rereadError(e: unknown, startFile: string | undefined): unknown {
  if (!startFile || !isNgrokdError(e, 'NGROKD_ERR_CONFIG_NOT_FOUND')) return e
  return new NgrokdError('NGROKD_ERR_CONFIG_NOT_FOUND', `the config file this daemon started from, ${startFile}, is gone`, {
    hint: 'put it back; the daemon keeps running on what it read at its start',
    cause: e,
  })
}

function logFormat(value: string | undefined): LogFormat {
  if (value === undefined) return 'auto'
  if ((LOG_FORMATS as readonly string[]).includes(value)) return value as LogFormat
  throw new NgrokdError('NGROKD_ERR_USAGE', `--log-format ${JSON.stringify(value)} is not a log format`, { hint: `use one of ${LOG_FORMATS.join(', ')}` })
}

const statusCommand = defineCommand({
  name: 'status',
  summary: 'Show what the running daemon is doing: registration, interface, last poll, services.',
  usage: 'ngrokd status [--json] [--config FILE]',
  options: { json: { type: 'boolean' } } as const,
  async run(argv) {
    const { values } = parseCommandArgs(this, argv)
    if (values.help) return printHelp(this)
    const {
      reply: status,
      loaded: { config, source },
    } = await askDaemon('status', values, (socket) => callDaemon(socket, 'GET /v1/status'))
    if (values.json) {
      console.log(JSON.stringify(status, null, 2))
      return 0
    }
    printReply('status', status, () => {
    const iface = status.interface
    const poll = status.lastPoll
    const now = Date.now()
    const lines = [
      `ngrokd ${status.version} (pid ${status.pid}, up ${formatDuration(status.uptimeSeconds)}): ${status.phase}`,
      // from a daemon older than this CLI: no config line
      ...(status.config ? [`config:     ${status.config.file ?? 'no file: defaults and environment'}${status.config.restartPending.length ? `; a restart would apply ${status.config.restartPending.join(', ')}` : ''}`] : []),
      `operator:   ${status.operatorId ?? '(not registered yet)'}`,
      `api key:    ${status.apiKey.source.startsWith('none yet') ? status.apiKey.source : `from ${status.apiKey.source}`}`,
      ...(status.apiKey.lastError ? [`api error:  ${formatWhen(status.apiKey.lastError.at, now)}: ${status.apiKey.lastError.message}`, ...fixLine(status.apiKey.lastError.hint)] : []),
      ...(status.stateError ? [`state:      FAILED ${formatWhen(status.stateError.at, now)}: ${status.stateError.message} (${status.stateError.code})`, ...fixLine(status.stateError.hint)] : []),
      ...(status.registrationUpdate
        ? [
            `            registration update (${status.registrationUpdate.changed.join(', ')} changed) not taken by ngrok since ${formatWhen(status.registrationUpdate.since, now)}: ${status.registrationUpdate.error}`,
            `            serving with the registration as ngrok has it; tried again in ${formatDuration(Math.max(0, Math.round((Date.parse(status.registrationUpdate.retryAt) - now) / 1000)))}`,
          ]
        : []),
      `ingress:    ${status.ingressEndpoint ? `${status.ingressEndpoint}${ingressSource(status.ingressEndpointSource)} (${status.ingressVerification === 'verified' ? 'certificate verification on' : status.ingressVerification}${ingressFailures(status.traffic)})` : 'not known yet: the registration names it'}`,
      ...(status.ingressCheck && !status.ingressCheck.ok ? [`            FAILED its check ${formatWhen(status.ingressCheck.at, now)}: ${status.ingressCheck.message}`, ...fixLine(status.ingressCheck.hint)] : []),
      `interface:  ${iface?.name ?? '-'} via ${status.driver ?? '-'} (${iface?.kind ?? '-'}), subnet ${status.subnet ?? '-'}`,
      ...(iface?.notes ?? []).map((n) => `            note: ${n}`),
      ...(status.forwarder ? [`forwarder:  ${status.forwarder.kind === 'worker-pool' ? `${status.forwarder.workers} worker threads` : `main thread (${status.forwarder.reason})`}`] : []),
      `last poll:  ${poll ? `${formatWhen(poll.at, now)} ${poll.ok ? `ok, ${poll.endpoints} endpoints` : `FAILED: ${poll.error?.message}`}` : 'not yet'}; every ${+(status.pollIntervalMs / 1000).toFixed(1)} s`,
      ...(poll && !poll.ok && poll.error?.hint !== status.apiKey.lastError?.hint ? fixLine(poll.error?.hint) : []),
      `services:   ${status.services.serving} serving, ${status.services.error} in error, ${status.openConnections} open connections`,
      ...(status.services.networkError ? [`network:    ${status.services.networkError} service(s) not exposed on the network: ngrokd list shows why`] : []),
      ...(poll?.rejected ?? []).slice(0, SKIPPED_SHOWN).map(skippedLine),
      ...((poll?.rejected?.length ?? 0) > SKIPPED_SHOWN ? [`skipped:    and ${poll!.rejected!.length - SKIPPED_SHOWN} more: ngrokd list shows them all`] : []),
      ...(status.names.state === 'frozen' ? [`names:      FROZEN since ${formatWhen(status.names.since, now)}: ${status.names.error.message}`, ...fixLine(status.names.error.hint ?? 'see ngrokd doctor')] : []),
      ...status.plugins.map(pluginLine),
      ...trafficLines(status.traffic),
      ...(status.memory ? [`memory:     ${formatBytes(status.memory.rss)} resident (JS heap ${formatBytes(status.memory.heapUsed)}, buffers ${formatBytes(status.memory.arrayBuffers)})`] : []),
      ...(status.metrics ? [`metrics:    ${status.metrics}`] : []),
    ]
    if (status.phase === 'waiting-for-api-key') lines.push('', `waiting for an API key: run \`ngrokd set-api-key${sameDaemonFlags(config.instance, source)}\``)
    // every line may quote the API (its error messages, the operator id, the ingress it names)
    return lines.map(terminalSafe).join('\n')
    }, versionSkew(status.version))
    return 0
  },
})

/** `plugin:     dns 1.0.0 running`, or failed/degraded with its error: what a plugin's author prints is escaped. */
export function pluginLine(p: PluginStatus): string {
  const error = p.error ? `: ${p.error.message} (${p.error.code}); ngrokd doctor checks it` : ''
  return terminalSafe(`plugin:     ${p.name} ${p.version} ${p.state === 'running' ? 'running' : p.state.toUpperCase()}${error}`)
}

/** How many skipped endpoints `status` names one by one. */
const SKIPPED_SHOWN = 10

/** One endpoint the daemon does not serve, and why (malformed, or a name skipped as unsafe). */
/** `            fix: <hint>` under a status line, when there is a hint. */
function fixLine(hint: string | undefined): string[] {
  return hint ? [`            fix: ${hint}`] : []
}

function skippedLine(r: RejectedEndpoint): string {
  return terminalSafe(`skipped:    ${r.url || '(no url)'} (${r.id || 'no id'}): ${r.reason}`)
}

/** A moment for people: local time, and how long ago (`14:02:07 (12s ago)`; the date too when not today). */
export function formatWhen(iso: string, now: number = Date.now()): string {
  const at = new Date(iso)
  if (Number.isNaN(at.getTime())) return iso
  const pad = (n: number) => String(n).padStart(2, '0')
  const time = `${pad(at.getHours())}:${pad(at.getMinutes())}:${pad(at.getSeconds())}`
  const today = new Date(now).toDateString() === at.toDateString()
  const day = today ? '' : `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())} `
  const ago = Math.round((now - at.getTime()) / 1000)
  return `${day}${time} (${ago >= 0 ? `${formatDuration(ago)} ago` : 'in the future: check the clock'})`
}

/** `59s`, `12m 5s`, `3h 4m`, `2d 1h`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`
  return `${Math.floor(s / 86_400)}d ${Math.floor((s % 86_400) / 3600)}h`
}

function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024
    i++
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`
}

/** Where the ingress address came from, when that is not the registration (PROTOCOL.md: the default is said in `status`). */
function ingressSource(source: DaemonStatus['ingressEndpointSource']): string {
  if (source === 'default') return ", ngrok's documented default: the registration named no ingress"
  if (source === 'config') return ', from ingress.endpoint'
  return ''
}

/** Beside "verification on": that connections to the ingress failed, so it does not read as all is well. */
function ingressFailures(t: TrafficTotals | undefined): string {
  const failed = t?.errors.NGROKD_ERR_INGRESS_TLS ?? 0
  const unreachable = (t?.errors.NGROKD_ERR_INGRESS_UNREACHABLE ?? 0) + (t?.errors.NGROKD_ERR_INGRESS_TIMEOUT ?? 0)
  if (failed > 0) return `, but ${failed} TLS handshake(s) with it failed: check ingress.ca_file, the log and ngrokd doctor`
  return unreachable > 0 ? `, but ${unreachable} connection(s) could not reach it or timed out: the log says when; ngrokd doctor dials it` : ''
}

function trafficLines(t: TrafficTotals | undefined): string[] {
  if (!t) return []
  const errors = Object.entries(t.errors).map(([code, n]) => `${code} ×${n}`)
  const nonLocal = t.errors[NON_LOCAL_CLIENT] ?? 0
  const refused = nonLocal > 0 ? `${t.refused} refused: ${t.refused - nonLocal} at a limit, ${nonLocal} from another machine` : `${t.refused} refused at a limit`
  return [
    `traffic:    ${t.connections} connections (${refused}), ${formatBytes(t.bytesIn)} in, ${formatBytes(t.bytesOut)} out` +
      (t.meanHandshakeMs !== undefined ? `, mean ingress handshake ${t.meanHandshakeMs.toFixed(1)} ms` : ''),
    ...(errors.length ? [`errors:     ${errors.join(', ')}`] : []),
  ]
}

const listCommand = defineCommand({
  name: 'list',
  summary: 'List the endpoints being served: hostname, IP, ports, proto, state, open connections.',
  usage: 'ngrokd list [--json] [--config FILE]',
  options: { json: { type: 'boolean' } } as const,
  async run(argv) {
    const { values } = parseCommandArgs(this, argv)
    if (values.help) return printHelp(this)
    const { reply } = await askDaemon('list', values, (socket) => callDaemon(socket, 'GET /v1/endpoints'))
    if (values.json) {
      console.log(JSON.stringify(reply.services, null, 2))
      return 0
    }
    printReply('list', reply, () => renderList(reply))
    return 0
  },
})

/** `ngrokd list`'s text: one row per hostname and proto, then each failing service's error and fix, then what was skipped. */
export function renderList({ services, skipped = [], draining = 0 }: ControlApi['GET /v1/endpoints']['reply']): string {
  const skippedLines = skipped.map(skippedLine)
  if (draining > 0) skippedLines.push(`draining:   ${draining} connection${draining === 1 ? '' : 's'} of removed endpoints (closed at the latest when forwarder.drain_timeout ends) or of network ports that moved (at the latest after forwarder.idle_timeout)`)
  if (services.length === 0) return ['no endpoints (ngrokd status tells whether the daemon has polled the API yet)', ...skippedLines].join('\n')
  // one row per hostname and proto: several ports of one host share its IP
  const rows = new Map<string, { hostname: string; address: string; ports: number[]; proto: string; states: Set<string>; conns: number; errors: string[]; network: string[] }>()
  for (const s of [...services].sort((a, b) => a.hostname.localeCompare(b.hostname) || a.port - b.port)) {
    const key = `${s.hostname} ${s.proto}`
    const row = rows.get(key) ?? { hostname: s.hostname, address: s.address ?? '-', ports: [], proto: s.proto, states: new Set(), conns: 0, errors: [], network: [] }
    row.ports.push(s.port)
    if (s.network) row.network.push(`${s.network.address}:${s.network.port}`)
    row.states.add(s.state)
    row.conns += s.openConnections + (s.network?.openConnections ?? 0) // this machine's and the network's
    if (s.error) row.errors.push(`${s.port}: ${terminalSafe(s.error.message)}${s.error.hint ? `\n  fix: ${terminalSafe(s.error.hint)}` : ''}`)
    if (s.network?.error) row.errors.push(`${s.port}: not on the network (${s.network.address}:${s.network.port}): ${terminalSafe(s.network.error.message)}${s.network.error.hint ? `\n  fix: ${terminalSafe(s.network.error.hint)}` : ''}`)
    if (s.nameError) row.errors.push(`${s.port}: name not updated: ${terminalSafe(s.nameError.message)}${s.nameError.hint ? `\n  fix: ${terminalSafe(s.nameError.hint)}` : ''}`)
    rows.set(key, row)
  }
  const networkMode = [...rows.values()].some((r) => r.network.length > 0)
  return [
    renderTable(
      ['HOSTNAME', 'IP', 'PORTS', 'PROTO', 'STATE', 'CONNS', ...(networkMode ? ['NETWORK'] : [])],
      [...rows.values()].map((r) => [terminalSafe(r.hostname), r.address, r.ports.join(','), r.proto, [...r.states].join('/'), String(r.conns), ...(networkMode ? [r.network.join(',') || '-'] : [])]),
    ),
    ...[...rows.values()].flatMap((r) => r.errors.map((e) => `${terminalSafe(r.hostname)}:${e}`)),
    ...skippedLines,
  ].join('\n')
}

const setApiKeyCommand = defineCommand({
  name: 'set-api-key',
  summary: 'Give ngrokd your ngrok API key. Reads it from stdin (or prompts without echo); saved 0600 in state_dir.',
  usage: 'echo "$KEY" | sudo ngrokd set-api-key   |   sudo ngrokd set-api-key   (prompts)',
  options: {} as const,
  allowPositionals: true,
  async run(argv) {
    const { values, positionals } = parseCommandArgs(this, argv)
    if (values.help) return printHelp(this)
    if (positionals.length > 1) throw new NgrokdError('NGROKD_ERR_USAGE', `set-api-key takes one key, got ${positionals.length} arguments`, { hint: 'pipe the key in: echo "$KEY" | sudo ngrokd set-api-key' })
    const { config, apiKeyOrigin, source, notices } = await configFor(values)
    let key = positionals[0]
    if (key) console.error('warning: a key given as an argument is visible to other users in the process list; prefer stdin')
    key ??= process.stdin.isTTY ? await promptHidden('ngrok API key: ') : await readStdin()
    key = key.trim()
    const setKey = daemonCommandLine('set-api-key', config, source)
    if (!key) throw new NgrokdError('NGROKD_ERR_API_KEY_MISSING', 'no API key given', { hint: `pipe it in: echo "$NGROK_API_KEY" | ${setKey}` })
    key = checkApiKey(key, 'the key given', setKey)
    const checkingKey = `checking the key with the ngrok API at ${config.api.url} (up to ${Math.ceil(apiKeyCheckTimeoutMs(config.api.timeoutMs) / 1000)} s)`
    try {
      // the daemon asks the API once, for at most apiKeyCheckTimeoutMs, before it answers
      const waiting = waitingLine(checkingKey)
      const res = await onDaemonOf(config, (socket) => callDaemon(socket, 'POST /v1/api-key', { key }, apiKeyCheckTimeoutMs(config.api.timeoutMs) + CONTROL_SLACK_MS), source).finally(waiting)
      console.log(
        res.unverified
          ? `API key handed to the running daemon and saved to ${res.saved}, but not verified: the ngrok API could not be asked (${res.unverified})`
          : `the ngrok API accepted the key; handed to the running daemon and saved to ${res.saved}`,
      )
    } catch (e) {
      if (!(e instanceof Error && /not running/.test(e.message))) throw e
      // asked here as the daemon would ask it: a key the API refuses is not saved, for the next start to be refused
      const { askApiAboutKey } = await import('../daemon/api-key-check.js')
      // api.allow_insecure_http: the key goes out in clear, said before it does (as run logs it)
      for (const notice of notices) if (notice.check === 'api.insecure-http') console.error(`ngrokd: warning: ${notice.message}`)
      const waiting = waitingLine(checkingKey)
      const unverified = await askApiAboutKey(key, config.api, silentLogger).finally(waiting)
      const path = await saveApiKeyFile(config.stateDir, key)
      console.log(
        unverified
          ? `ngrokd is not running; API key saved to ${path} for its next start, but not verified: the ngrok API could not be asked (${unverified})`
          : `the ngrok API accepted the key; ngrokd is not running: saved to ${path} for its next start`,
      )
    }
    // the saved key is the last resort at a start: a configured one wins over it
    if (apiKeyOrigin) console.error(`warning: ${apiKeyOrigin} also names an API key, and it wins at the next start: remove it there so that this key is used`)
    return 0
  },
})

const reloadCommand = defineCommand({
  name: 'reload',
  summary: 'Make the running daemon read its configuration again (as SIGHUP does); says what applied and what needs a restart.',
  usage: 'sudo ngrokd reload [--config FILE] [--json]',
  options: { json: { type: 'boolean' } } as const,
  async run(argv) {
    const { values } = parseCommandArgs(this, argv)
    if (values.help) return printHelp(this)
    const reload = async () => {
      const { config, source, empty } = await configFor(values).catch((e: unknown) => {
        if (!isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID')) throw e
        // the daemon would refuse it too (SIGHUP): it was not asked, and keeps what it runs on
        throw new NgrokdError(e.code, `${e.message}\nA daemon of this config, if one runs, was not asked to reload and keeps the configuration it runs on.`, { cause: e.cause, ...(e.hint ? { hint: e.hint } : {}) })
      })
      // an empty file is most likely being written: read as all the defaults, it would pick another daemon's socket
      if (empty) {
        throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `config file ${source} is empty (a write under way?): it names no daemon to reload, and none was asked; a daemon running on it keeps the configuration it runs on`, {
          hint: 'reload once the file is written whole (write it to a temporary file, then rename it over); a configuration of the defaults is written {}',
        })
      }
      // the file named, for the daemon to refuse when it runs on another (it reads its own again)
      return onDaemonOf(config, (socket) => callDaemon(socket, 'POST /v1/reload', values.config === undefined ? {} : { config: resolve(values.config) }), source)
    }
    const result = await reload()
    if (values.json) {
      console.log(JSON.stringify(result, null, 2))
      return 0
    }
    console.log(result.applied.length ? `applied: ${result.applied.join(', ')}` : 'nothing changed that applies while running')
    if (result.restartNeeded.length) console.log(`needs a restart to take effect: ${result.restartNeeded.join(', ')}`)
    if (result.reinstallNeeded?.length) console.log(`needs \`sudo ngrokd service install\` again first (${REINSTALL_WHY}): ${result.reinstallNeeded.join(', ')}`)
    return 0
  },
})

/** Says on stderr what cleanup could not remove; the exit code: 1 when anything, else 0. */
function notRemoved({ failed }: CleanupReport): number {
  if (failed.length === 0) return 0
  console.error(`not removed:\n${failed.map((f) => `  ${f}`).join('\n')}\n(each line says why; for an address or the interface see the interface driver's documentation, else remove it by hand as the line says; \`ngrokd doctor\` says what is left)`)
  return 1
}

const cleanupCommand = defineCommand({
  name: 'cleanup',
  summary: 'Remove what a daemon that is gone (crash, kill -9) left: addresses, interface, hosts block, control socket, locks.',
  usage: 'sudo ngrokd cleanup [--config FILE]',
  options: {} as const,
  async run(argv) {
    const { values } = parseCommandArgs(this, argv)
    if (values.help) return printHelp(this)
    const config = await cleanupConfigFor(values)
    let report: CleanupReport
    try {
      const [{ cleanupLeftovers }, { createLogger }] = await Promise.all([load.cleanup(), load.logger()])
      report = await cleanupLeftovers(config, createLogger({ level: 'warn', pretty: true })) // a command's warnings are read by a person, piped or not
    } catch (e) {
      if (!isNgrokdError(e, 'NGROKD_ERR_ALREADY_RUNNING')) throw e
      console.error(`ngrokd cleanup: ${formatError(e)}\n(a running daemon removes what it made when it stops)`)
      return 2
    }
    console.log(report.removed.length ? `removed:\n${report.removed.map((r) => `  ${r}`).join('\n')}` : report.failed.length ? '' : 'nothing to clean up')
    return notRemoved(report)
  },
})

/** The keys that say what cleanup removes and where: a bad one of these stops it, any other bad key does not. */
const CLEANUP_KEYS = /^(?:state_dir|instance|net|names|control|plugins|server)\b/ // server.*: the Go daemon's names (server.socket_path)

/**
 * cleanup's configuration: after a crash, a key mistyped in the file since the start (one cleanup does not use:
 * `api.*`, `log.*`, an unknown key) must not leave the daemon's interface, addresses and hosts block behind, nor
 * fail the service's ExecStopPost. Such keys are said and left at their defaults; a bad key of what cleanup removes,
 * or a file that cannot be parsed, still stops it (it would clean up another configuration's).
 */
async function cleanupConfigFor(values: { config?: string; instance?: string }): Promise<DaemonConfig> {
  let invalid: NgrokdError<'NGROKD_ERR_CONFIG_INVALID'> | undefined
  const { config } = await configFor(values, true, (e) => (invalid = e))
  if (!invalid) return config
  const issues = invalid instanceof ConfigInvalidError ? invalid.issues : undefined
  if (!issues || issues.some((i) => CLEANUP_KEYS.test(i.key))) throw invalid
  console.error(`ngrokd cleanup: warning: ${invalid.message}\n(none of these says what to clean up: going on with their defaults)`)
  return config
}

const uninstallCommand = defineCommand({
  name: 'uninstall',
  summary: 'Remove everything ngrokd keeps on this machine (what cleanup removes, then its state directory); --deregister also deletes its registration at ngrok.',
  usage: 'sudo ngrokd uninstall [--deregister] [--config FILE]\n\n  --deregister   first delete the registration at ngrok (needs the API key: api.key, NGROK_API_KEY or the saved one)\n\nStop the daemon first (sudo ngrokd service uninstall, or stop `ngrokd run`); then `npm uninstall -g ngrokd` removes the program.',
  options: { deregister: { type: 'boolean' } } as const,
  async run(argv) {
    const { values } = parseCommandArgs(this, argv)
    if (values.help) return printHelp(this)
    const { config, source } = await configFor(values)
    // an installed service of this config would start ngrokd again at the next boot, on nothing (or on a program npm removed)
    const service = await (await load.serviceAction()).installedServiceFor(config, values.config ?? source)
    if (service) {
      console.error(`ngrokd uninstall: the service ${service.service} is installed and would start ngrokd again at the next boot; nothing was removed\n(remove it first: ${process.platform === 'win32' ? 'from an elevated prompt, ' : 'sudo '}ngrokd service uninstall${sameDaemonFlags(config.instance, service.configFile)})`)
      return 2
    }
    let report
    try {
      const [{ uninstall }, { createLogger }] = await Promise.all([load.cleanup(), load.logger()])
      const waiting = values.deregister ? waitingLine(`deleting the registration at the ngrok API ${config.api.url} (up to ${Math.ceil(config.api.timeoutMs / 1000)} s a request)`) : () => {}
      report = await uninstall(config, createLogger({ level: 'warn', pretty: true }), { deregister: values.deregister ?? false }).finally(waiting)
    } catch (e) {
      if (!isNgrokdError(e, 'NGROKD_ERR_ALREADY_RUNNING')) throw e
      console.error(`ngrokd uninstall: ${formatError(e)}\n(stop it first: sudo ngrokd service uninstall, or stop \`ngrokd run\`)`)
      return 2
    }
    if (report.deregisterSkipped) console.log(report.deregisterSkipped)
    for (const id of report.deregistered) console.log(`deleted the registration ${id} at ngrok`)
    console.log(report.removed.length ? `removed:\n${report.removed.map((r) => `  ${r}`).join('\n')}` : 'nothing of ngrokd was left on this machine')
    if (report.leftAtNgrok) console.log(`the registration ${report.leftAtNgrok} stays at ngrok: delete it in the dashboard, or next time uninstall with --deregister`)
    if (report.unnamedLeftAtNgrok) {
      console.log(`a registration of this machine may stay at ngrok (operator.json, which named it, was unreadable): delete it in the dashboard; its metadata holds ${report.unnamedLeftAtNgrok}`)
    }
    console.log('to remove the program too: npm uninstall -g ngrokd')
    return notRemoved(report)
  },
})

const versionCommand = defineCommand({
  name: 'version',
  summary: 'Print the versions of ngrokd, Node.js and the built-in drivers for this system.',
  usage: 'ngrokd version',
  options: {} as const,
  readsNoConfig: true,
  async run(argv) {
    const { values } = parseCommandArgs(this, argv)
    if (values.help) return printHelp(this)
    console.log(`ngrokd ${CORE_VERSION}\nnode ${process.version} (${process.platform}-${process.arch})`)
    for (const line of driverVersionLines(process.platform)) console.log(line)
    return 0
  },
})

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

/** What a control call that waits on the daemon's own API call allows beyond that call's timeout. */
const CONTROL_SLACK_MS = 10_000

/** Reads a line without echo; Ctrl-C or Ctrl-D cancels (nothing is saved; Ctrl-C exits 130 as a shell's would). */
async function promptHidden(question: string): Promise<string> {
  let muted = false
  const output = new Writable({
    write(chunk, _enc, cb) {
      if (!muted) process.stderr.write(chunk)
      cb()
    },
  })
  const rl = createInterface({ input: process.stdin, output, terminal: true })
  try {
    return await new Promise<string>((resolve, reject) => {
      const cancelled = (how: string, exitCode: number) => () =>
        reject(Object.assign(new NgrokdError('NGROKD_ERR_API_KEY_MISSING', `cancelled (${how}): no API key given, nothing saved`), { exitCode }))
      rl.on('SIGINT', cancelled('Ctrl-C', 130))
      rl.on('close', cancelled('end of input', 1)) // Ctrl-D; after an answer the promise is settled already
      rl.question(question, (answer) => resolve(answer))
      muted = true
    })
  } finally {
    rl.close()
    process.stderr.write('\n')
  }
}

function printHelp(spec: CommandSpec): number {
  console.log(
    helpText(spec) +
      '\nOptions:\n' +
      (spec.readsNoConfig
        ? ''
        : `  -c, --config FILE   configuration file (default: ${DEFAULT_CONFIG_PATH}; not as root, first an ngrokd.yaml or .ngrokdrc searched for from the current directory)\n` +
          `  --instance NAME     a named instance (a second account): ${instanceConfigPath(DEFAULT_CONFIG_PATH, 'NAME')}, its own state, socket, interface, subnet and hosts block\n`) +
      (spec.options && 'json' in spec.options ? '  --json              the same as JSON, for scripts\n' : '') +
      '  -h, --help          this help',
  )
  return 0
}

export const commands: Command[] = [runCommand, statusCommand, listCommand, setApiKeyCommand, reloadCommand, cleanupCommand, uninstallCommand, versionCommand]
export { printHelp }
