/**
 * The cloud simulator as a command: `ngrokd simulator` (the `ngrokd` package adds {@link simulatorCommand}
 * to core's CLI, as it adds `demo`) and the `ngrokd-simulator` bin (cli.ts) run the same
 * {@link runSimulator}: start the simulator, print one JSON line `{apiUrl, apiKey, ingressEndpoint,
 * caFile, adminUrl}` once it is ready, and run until SIGTERM/SIGINT.
 */
import { writeFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { NgrokdError, silentLogger, type LogFn, type Logger } from '@ngrokd/core'
import { parseCommandArgs, type Command, type CommandSpec } from '@ngrokd/core/cli'
import { CloudSimulator } from './cloud-simulator.js'
import { BACKEND_KINDS, type BackendKind } from './types.js'

/** The simulator's options, in `node:util` parseArgs form. */
export const SIMULATOR_OPTIONS = {
  host: { type: 'string' },
  'api-port': { type: 'string' },
  'ingress-port': { type: 'string' },
  'api-key': { type: 'string' },
  'cert-validity-ms': { type: 'string' },
  'advertise-ingress': { type: 'string' },
  'ca-out': { type: 'string' },
  endpoint: { type: 'string', multiple: true },
  verbose: { type: 'boolean' },
} as const

export type SimulatorValues = { [K in keyof typeof SIMULATOR_OPTIONS]?: (typeof SIMULATOR_OPTIONS)[K] extends { multiple: true } ? string[] : (typeof SIMULATOR_OPTIONS)[K] extends { type: 'boolean' } ? boolean : string }

/** What each option does, for both programs' help. */
export const SIMULATOR_OPTIONS_HELP = `  --host ADDR              listen address (default: API 127.0.0.1, ingress 127.0.0.1 and ::1)
  --api-port N             API port (default: any free port)
  --ingress-port N         binding ingress port (default: any free port)
  --api-key KEY            API key clients must send (default: random)
  --cert-validity-ms N     validity of issued client certificates (default: 1 year)
  --advertise-ingress H[:P] what binding.ingress_endpoint reports (default: localhost:<ingress port>)
  --ca-out FILE            write the CA certificate (PEM) to FILE
  --endpoint URL[=BACKEND] serve an endpoint from the start; repeatable. BACKEND: ${BACKEND_KINDS.join(', ')}
  --verbose                log to stderr
  -h, --help               this help

Prints {"apiUrl","apiKey","ingressEndpoint","caFile","adminUrl"} as one JSON line when ready, then runs
until SIGTERM or Ctrl-C. The admin API under adminUrl (loopback clients only) adds and removes endpoints,
injects faults and reads counters: see the README of @ngrokd/plugin-simulator.`

function usageError(message: string): NgrokdError {
  return new NgrokdError('NGROKD_ERR_USAGE', message)
}

function port(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined
  const n = Number(v)
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw usageError(`${flag} must be a port number, got ${v}`)
  return n
}

function stderrLogger(bindings: Record<string, unknown> = {}): Logger {
  const log =
    (level: string): LogFn =>
    (a: string | object, b?: string) => {
      const fields = typeof a === 'string' ? { msg: a } : { ...a, msg: b }
      process.stderr.write(`${JSON.stringify({ level, time: new Date().toISOString(), ...bindings, ...fields }, errReplacer)}\n`)
    }
  return {
    trace: log('trace'),
    debug: log('debug'),
    info: log('info'),
    warn: log('warn'),
    error: log('error'),
    fatal: log('fatal'),
    child: (more) => stderrLogger({ ...bindings, ...more }),
  }
}

function errReplacer(_key: string, value: unknown): unknown {
  return value instanceof Error ? { message: value.message, code: (value as NodeJS.ErrnoException).code } : value
}

/**
 * Starts the simulator as the options say, prints its addresses as one JSON line and resolves with
 * exit code 0 once SIGTERM or SIGINT stopped it. A bad option rejects with NGROKD_ERR_USAGE before
 * anything listens; a failure after the start stops the simulator before it rejects.
 */
export async function runSimulator(values: SimulatorValues): Promise<number> {
  const endpoints = (values.endpoint ?? []).map((spec) => {
    const eq = spec.lastIndexOf('=')
    if (eq < 0) return { url: spec }
    const backend = spec.slice(eq + 1) as BackendKind
    if (!BACKEND_KINDS.includes(backend)) throw usageError(`--endpoint ${spec}: unknown backend ${backend} (one of ${BACKEND_KINDS.join(', ')})`)
    return { url: spec.slice(0, eq), backend }
  })
  const validity = values['cert-validity-ms'] === undefined ? undefined : Number(values['cert-validity-ms'])
  if (validity !== undefined && !(Number.isInteger(validity) && validity > 0)) throw usageError(`--cert-validity-ms must be a positive number of milliseconds, got ${values['cert-validity-ms']}`)
  const apiPort = port(values['api-port'], '--api-port')
  const ingressPort = port(values['ingress-port'], '--ingress-port')

  const sim = await CloudSimulator.start({
    ...(values.host === undefined ? {} : { host: values.host }),
    ...(apiPort === undefined ? {} : { apiPort }),
    ...(ingressPort === undefined ? {} : { ingressPort }),
    ...(values['api-key'] === undefined ? {} : { apiKey: values['api-key'] }),
    ...(validity === undefined ? {} : { certValidityMs: validity }),
    ...(values['advertise-ingress'] === undefined ? {} : { advertisedIngressEndpoint: values['advertise-ingress'] }),
    logger: values.verbose ? stderrLogger() : silentLogger,
  })
  try {
    for (const e of endpoints) sim.addEndpoint(e)
    let caFile: string | null = null
    if (values['ca-out'] !== undefined) {
      caFile = resolve(values['ca-out'])
      writeFileSync(caFile, sim.caCertPem, { mode: 0o644 })
    }
    process.stdout.write(
      `${JSON.stringify({ apiUrl: sim.apiUrl, apiKey: sim.apiKey, ingressEndpoint: sim.ingressEndpoint, caFile, adminUrl: sim.adminUrl })}\n`,
    )
  } catch (e) {
    await sim.stop()
    throw e
  }
  await new Promise<void>((done) => {
    process.once('SIGTERM', done)
    process.once('SIGINT', done)
  })
  await sim.stop()
  return 0
}

const spec = {
  name: 'simulator',
  summary: 'Run the ngrok cloud simulator (API, CA, binding ingress, backends) on this machine until Ctrl-C.',
  usage: `ngrokd simulator [options]\n\n${SIMULATOR_OPTIONS_HELP}`,
  options: SIMULATOR_OPTIONS,
} as const satisfies CommandSpec

export const simulatorCommand: Command = {
  ...spec,
  async run(argv) {
    const { values } = parseCommandArgs(spec, argv)
    if (values.help) {
      // no --config here, unlike the daemon's commands
      console.log(`${spec.summary}\n\nUsage: ${spec.usage}`)
      return 0
    }
    if (values.config !== undefined) throw new NgrokdError('NGROKD_ERR_USAGE', 'ngrokd simulator reads no configuration file', { hint: 'see ngrokd simulator --help' })
    return runSimulator(values as SimulatorValues)
  },
}
