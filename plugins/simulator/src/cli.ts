#!/usr/bin/env node
/**
 * ngrokd-simulator: runs the cloud simulator until SIGTERM/SIGINT and prints one JSON line
 * `{apiUrl, apiKey, ingressEndpoint, caFile, adminUrl}` once it is ready.
 */
import { writeFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { formatError, silentLogger, type LogFn, type Logger } from '@ngrokd/core'
import { CloudSimulator } from './cloud-simulator.js'
import { BACKEND_KINDS, type BackendKind } from './types.js'

const USAGE = `usage: ngrokd-simulator [options]

  --host ADDR              listen address (default: API 127.0.0.1, ingress 127.0.0.1 and ::1)
  --api-port N             API port (default: any free port)
  --ingress-port N         binding ingress port (default: any free port)
  --api-key KEY            API key clients must send (default: random)
  --cert-validity-ms N     validity of issued client certificates (default: 1 year)
  --advertise-ingress H[:P] what binding.ingress_endpoint reports (default: localhost:<ingress port>)
  --ca-out FILE            write the CA certificate (PEM) to FILE
  --endpoint URL[=BACKEND] serve an endpoint from the start; repeatable. BACKEND: ${BACKEND_KINDS.join(', ')}
  --verbose                log to stderr
  --help                   this text

Prints {"apiUrl","apiKey","ingressEndpoint","caFile","adminUrl"} as one JSON line when ready.
`

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

function port(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined
  const n = Number(v)
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${flag} must be a port number, got ${v}`)
  return n
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      host: { type: 'string' },
      'api-port': { type: 'string' },
      'ingress-port': { type: 'string' },
      'api-key': { type: 'string' },
      'cert-validity-ms': { type: 'string' },
      'advertise-ingress': { type: 'string' },
      'ca-out': { type: 'string' },
      endpoint: { type: 'string', multiple: true },
      verbose: { type: 'boolean' },
      help: { type: 'boolean' },
    },
    strict: true,
  })
  if (values.help) {
    process.stdout.write(USAGE)
    return
  }
  const endpoints = (values.endpoint ?? []).map((spec) => {
    const eq = spec.lastIndexOf('=')
    if (eq < 0) return { url: spec }
    const backend = spec.slice(eq + 1) as BackendKind
    if (!BACKEND_KINDS.includes(backend)) throw new Error(`--endpoint ${spec}: unknown backend ${backend}`)
    return { url: spec.slice(0, eq), backend }
  })
  const validity = values['cert-validity-ms'] === undefined ? undefined : Number(values['cert-validity-ms'])
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
  let stopping = false
  const stop = () => {
    if (stopping) return
    stopping = true
    sim.stop().then(
      () => process.exit(0),
      (e) => {
        process.stderr.write(`ngrokd-simulator: stop failed: ${formatError(e)}\n`)
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)

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
}

main().catch((e: unknown) => {
  process.stderr.write(`ngrokd-simulator: ${formatError(e)}\n`)
  process.exit(2)
})
