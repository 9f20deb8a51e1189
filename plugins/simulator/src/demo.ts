import { mkdtemp, readFile, writeFile, copyFile, rm } from 'node:fs/promises'
import { appendFileSync } from 'node:fs'
import { constants, tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { connect } from 'node:net'
import { DaemonProcess, NgrokdError, formatError } from '@ngrokd/core'
import { parseCommandArgs, printHelp, rerunInPrivateNamespace, run } from '@ngrokd/core/cli'
import { demoSpec as spec } from './demo-spec.js'
import { CloudSimulator } from './cloud-simulator.js'
import { jsonLinesLogger } from './json-lines-logger.js'

const INSIDE = 'NGROKD_DEMO_INSIDE'

/** The endpoints the demo publishes in its simulated ngrok account. */
const DEMO_ENDPOINTS = [
  { url: 'http://api.demo' },
  { url: 'http://web.demo:8080' },
  { url: 'tcp://echo.demo:5432' },
  { url: 'https://status.demo-app.ngrok.app' },
]

/** `ngrokd demo`, loaded when it runs (demo-spec.ts holds its spec): outside the namespace it re-runs itself inside one. */
export async function runDemo(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs(spec, argv)
  if (values.help) return printHelp(spec)
  if (process.env[INSIDE] !== '1') {
    if (process.platform !== 'linux') {
      throw new NgrokdError('NGROKD_ERR_NAMESPACE', 'ngrokd demo needs Linux network namespaces', { hint: 'run the demo on Linux (a VM is fine)' })
    }
    console.log('ngrokd demo: entering a private network + mount namespace (your /etc/hosts and interfaces stay untouched)')
    // the script that runs this command (the `ngrokd` package's bin) runs again inside
    return rerunInPrivateNamespace([process.argv[1]!, 'demo', ...argv], { ...process.env, [INSIDE]: '1' })
  }
  return runInside({ once: values.once ?? false, shell: values.shell ?? false, keepLogs: values['keep-logs'] ?? false })
}

/**
 * The demo run again with `flags`, as the user started it: `npm run demo` from a clone (whose `ngrokd` is on no PATH)
 * takes its flags after `--`.
 */
export function demoCommandLine(flags: readonly string[], env: NodeJS.ProcessEnv = process.env): string {
  return env.npm_lifecycle_event === 'demo' ? `npm run demo -- ${flags.join(' ')}` : `ngrokd demo ${flags.join(' ')}`
}

function step(n: number, total: number, text: string): void {
  console.log(`[${n}/${total}] ${text}`)
}

/**
 * SIGINT and SIGTERM for the demo's whole life, from its first step: the first one stops it (`stopped` resolves), later
 * ones change nothing. Never the default action, which would leave the demo's folder behind: Ctrl-C at a terminal
 * reaches the demo twice (through the process group, and passed on by the process outside the namespace).
 */
function stopSignals(): { stopped: Promise<NodeJS.Signals>; dispose: () => void } {
  let received: NodeJS.Signals | undefined
  let resolve!: (signal: NodeJS.Signals) => void
  const stopped = new Promise<NodeJS.Signals>((r) => (resolve = r))
  const onSignal = (signal: NodeJS.Signals): void => {
    if (received !== undefined) return
    received = signal
    resolve(signal)
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  return {
    stopped,
    dispose: () => {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
    },
  }
}

async function runInside(opts: { once: boolean; shell: boolean; keepLogs: boolean }): Promise<number> {
  const signals = stopSignals()
  try {
    return await runInsideUntilStopped(opts, signals)
  } finally {
    signals.dispose()
  }
}

/** Thrown out of a step that a stop overtook. */
const STOPPED = Symbol('stopped')

async function runInsideUntilStopped(opts: { once: boolean; shell: boolean; keepLogs: boolean }, signals: ReturnType<typeof stopSignals>): Promise<number> {
  const total = 5
  const dir = await mkdtemp(join(tmpdir(), 'ngrokd-demo-'))
  const cleanups: Array<() => Promise<void> | void> = []
  const cleanup = async () => {
    for (const fn of cleanups.reverse()) await Promise.resolve().then(fn).catch(() => {})
    if (!opts.keepLogs) await rm(dir, { recursive: true, force: true })
    else console.log(`logs kept in ${dir}: ngrokd.log (the daemon), simulator.log (the cloud simulator)`)
  }
  /** `step`, or the stop a signal asked for (thrown as {@link STOPPED}), whichever comes first. */
  const untilStopped = <T>(step: Promise<T>): Promise<T> => {
    step.catch(() => {}) // a step a stop overtook may fail as what it waits for is cleaned up
    return Promise.race([step, signals.stopped.then(() => Promise.reject(STOPPED))])
  }
  try {
    run('ip', ['link', 'set', 'lo', 'up'])
    await copyFile('/etc/hosts', join(dir, 'hosts'))
    run('mount', ['--bind', join(dir, 'hosts'), '/etc/hosts'])
    cleanups.push(() => run('umount', ['/etc/hosts']))

    const simulatorLog = join(dir, 'simulator.log')
    const simStarting = CloudSimulator.start({ logger: jsonLinesLogger((line) => appendFileSync(simulatorLog, line)) })
    cleanups.push(async () => (await simStarting.catch(() => undefined))?.stop())
    const sim = await untilStopped(simStarting)
    for (const e of DEMO_ENDPOINTS) await sim.addEndpoint(e)
    step(1, total, `cloud simulator up: API ${sim.apiUrl}, binding ingress ${sim.ingressEndpoint}, ${DEMO_ENDPOINTS.length} endpoints`)

    const caFile = join(dir, 'simulator-ca.pem')
    await writeFile(caFile, sim.caCertPem)
    const socketPath = join(dir, 'ngrokd.sock')
    const configFile = join(dir, 'ngrokd.yml')
    await writeFile(
      configFile,
      [
        `api:`,
        `  url: ${sim.apiUrl}`,
        `  key: ${sim.apiKey}`,
        `ingress:`,
        `  ca_file: ${caFile}`,
        `bound_endpoints:`,
        `  poll_interval: 2s`,
        `net:`,
        `  driver: auto`,
        `state_dir: ${join(dir, 'state')}`,
        `control:`,
        `  socket: ${socketPath}`,
        `log:`,
        `  level: info`,
        '',
      ].join('\n'),
      { mode: 0o600 },
    )
    const logFile = join(dir, 'ngrokd.log')
    // the demo's daemon runs on its own config alone: never on this shell's NGROKD_* settings or its real NGROK_API_KEY
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^NGROKD?_/.test(name)))
    // its own process group: Ctrl-C reaches the demo, which stops it once (a second signal would cut connections)
    const daemon = new DaemonProcess({ configFile, socketPath, logFile, env, ownProcessGroup: true })
    cleanups.push(async () => {
      await daemon.stop('SIGTERM')
    })
    step(2, total, `ngrokd run started (pid ${daemon.pid}); its log: ${logFile}`)

    const registered = await untilStopped(daemon.waitFor((s) => s.phase === 'running' && Boolean(s.operatorId), { what: 'registration' }))
    step(3, total, `registered as operator ${registered.operatorId}; interface ${registered.interface?.name} via ${registered.driver} (${registered.interface?.kind})`)

    const serving = await untilStopped(daemon.waitFor((s) => s.services?.serving >= DEMO_ENDPOINTS.length, { what: 'every endpoint to be served' }))
    step(4, total, `${serving.services.serving} endpoints serving:`)
    const services = await daemon.services()
    for (const s of services) console.log(`      ${String(s.url).padEnd(40)} → ${s.address}:${s.port}`)

    step(5, total, 'requests by hostname, through /etc/hosts → ngrokd → mTLS → binding ingress → backend:')
    let failures = 0
    for (const e of DEMO_ENDPOINTS) {
      const started = performance.now()
      try {
        const answer = await untilStopped(probe(e.url, sim.caCertPem))
        console.log(`      ✔ ${e.url.padEnd(40)} ${answer} (${Math.round(performance.now() - started)} ms)`)
      } catch (err) {
        if (err === STOPPED) throw err
        failures++
        console.log(`      ✘ ${e.url.padEnd(40)} ${formatError(err)}`)
      }
    }
    if (opts.once) {
      console.log(failures === 0 ? 'demo passed: every endpoint answered by hostname. Cleaning up.' : `demo FAILED: ${failures} endpoint(s) did not answer. Daemon log: ${logFile}`)
      if (failures > 0) opts.keepLogs = true
      return failures === 0 ? 0 : 1
    }
    if (opts.shell) {
      console.log('\nA shell inside the demo namespace: try  curl http://api.demo/   or   curl http://web.demo:8080/x   ·   exit to stop the demo')
      const sh = spawn(process.env.SHELL || '/bin/sh', [], { stdio: 'inherit', env: { ...process.env, NGROKD_CONTROL_SOCKET: socketPath, PS1: '(ngrokd demo) \\w\\$ ' } })
      const exited = new Promise<void>((resolve) => sh.once('exit', () => resolve()))
      cleanups.push(() => void (sh.exitCode === null && sh.signalCode === null && sh.kill('SIGHUP')))
      await untilStopped(exited)
      return failures === 0 ? 0 : 1
    }
    console.log(`\nServing until Ctrl-C (run \`${demoCommandLine(['--shell'])}\` to get a shell inside the namespace and curl these hostnames yourself).`)
    await signals.stopped
    console.log('stopping: draining, removing names and addresses…')
    return failures === 0 ? 0 : 1
  } catch (e) {
    if (e === STOPPED) {
      const signal = await signals.stopped
      console.log(`stopped (${signal}) before the demo was done: draining, removing names and addresses…`)
      return 128 + constants.signals[signal] // as a shell reports a command a signal ended
    }
    // the log goes with the demo's directory: what the daemon said last is shown before that
    const said = await lastLogLines(join(dir, 'ngrokd.log'), LOG_LINES_SHOWN)
    if (said.length > 0) console.error(`ngrokd's last ${said.length} log line(s):\n${said.map((l) => `  ${l}`).join('\n')}`)
    throw e
  } finally {
    await cleanup()
  }
}

/** How much of the daemon's log a failed demo shows. */
const LOG_LINES_SHOWN = 8

/** The last `count` lines of a daemon log, each as its level, message and error (pino's JSON lines), or as written. */
export async function lastLogLines(file: string, count: number): Promise<string[]> {
  const text = await readFile(file, 'utf8').catch(() => '')
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .slice(-count)
    .map((line) => {
      try {
        const entry = JSON.parse(line) as { level?: number; msg?: string; err?: { message?: string; code?: string } }
        const level = entry.level === undefined ? '' : entry.level >= 50 ? 'error: ' : entry.level >= 40 ? 'warning: ' : ''
        // the daemon's messages mostly hold their error already (`could not start: …`): then only its code is added
        const message = entry.err?.message?.split('\n')[0]
        const said = message !== undefined && entry.msg?.includes(message)
        const err = message ? (said ? (entry.err?.code && !entry.msg?.includes(entry.err.code) ? ` (${entry.err.code})` : '') : ` (${message}${entry.err?.code ? `, ${entry.err.code}` : ''})`) : ''
        return `${level}${entry.msg ?? line}${err}`
      } catch {
        return line
      }
    })
}

/** Makes one real request to a demo URL by hostname and describes the answer. */
async function probe(url: string, ca: string): Promise<string> {
  const u = new URL(url)
  if (u.protocol === 'tcp:') {
    const message = `hello ngrokd ${Date.now()}\n`
    const echoed = await new Promise<string>((resolve, reject) => {
      const s = connect({ host: u.hostname, port: Number(u.port) })
      let got = ''
      s.setTimeout(10_000, () => s.destroy(new Error('no echo within 10 s')))
      s.on('connect', () => s.end(message))
      s.on('data', (d) => (got += d.toString()))
      s.on('end', () => resolve(got))
      s.on('error', reject)
    })
    if (echoed !== message) throw new Error(`echo mismatch: sent ${JSON.stringify(message)}, got ${JSON.stringify(echoed)}`)
    return `echoed ${echoed.length} bytes back (tcp)`
  }
  const body = await new Promise<string>((resolve, reject) => {
    const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(url, { method: 'GET', timeout: 10_000, ...(u.protocol === 'https:' ? { ca, allowPartialTrustChain: true } : {}) }, (res) => {
      let text = ''
      res.on('data', (d) => (text += d))
      res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`))))
    })
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')))
    req.on('error', reject)
    req.end()
  })
  const echo = JSON.parse(body) as { method?: string; host?: string; endpoint_id?: string; path?: string }
  return `HTTP 200 from ${echo.endpoint_id} (backend saw ${echo.method} ${echo.path}, Host: ${echo.host})${u.protocol === 'https:' ? ', TLS end to end' : ''}`
}
