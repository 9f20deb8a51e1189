/**
 * The cloud simulator run from a command line: `ngrokd simulator` (simulator-command.ts) and the
 * `ngrokd-simulator` bin (cli.ts). Starts it, prints one JSON line `{apiUrl, apiKey, ingressEndpoint,
 * caFile, adminUrl}` once it is ready, and runs until SIGTERM/SIGINT.
 */
import { writeFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { NgrokdError, silentLogger } from '@ngrokd/core'
import { jsonLinesLogger } from './json-lines-logger.js'
import { parseCommandArgs } from '@ngrokd/core/cli'
import { CloudSimulator } from './cloud-simulator.js'
import { parseEndpointUrl } from './endpoint-url.js'
import { simulatorSpec, type SimulatorValues } from './simulator-options.js'
import { BACKEND_KINDS, type BackendKind } from './types.js'

function usageError(message: string, hint?: string): NgrokdError {
  return new NgrokdError('NGROKD_ERR_USAGE', message, hint ? { hint } : {})
}

function port(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined
  const n = Number(v)
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw usageError(`${flag} must be a port number, got ${v}`)
  return n
}


/**
 * Starts the simulator as the options say, prints its addresses as one JSON line and resolves with
 * exit code 0 once SIGTERM or SIGINT stopped it. A bad option rejects with NGROKD_ERR_USAGE before
 * anything listens; a failure after the start stops the simulator before it rejects.
 */
export async function runSimulator(values: SimulatorValues): Promise<number> {
  const endpoints = (values.endpoint ?? []).map((spec) => {
    const eq = spec.lastIndexOf('=')
    const url = eq < 0 ? spec : spec.slice(0, eq)
    try {
      parseEndpointUrl(url)
    } catch (e) {
      // the cloud's rule, as addEndpoint applies it, but as this flag's usage error
      throw new NgrokdError('NGROKD_ERR_USAGE', `--endpoint ${spec}: ${(e as Error).message.replace(/^simulator: endpoint url "[^"]*" /, 'the url ')}`, {
        hint: 'use http://name.namespace[:port] or tcp://name.namespace:port; the admin API\'s POST /endpoints serves a malformed one with skipValidation',
      })
    }
    if (eq < 0) return { url }
    const backend = spec.slice(eq + 1) as BackendKind
    if (!BACKEND_KINDS.includes(backend)) throw usageError(`--endpoint ${spec}: unknown backend ${backend} (one of ${BACKEND_KINDS.join(', ')})`)
    return { url, backend }
  })
  const validity = values['cert-validity-ms'] === undefined ? undefined : Number(values['cert-validity-ms'])
  if (validity !== undefined && !(Number.isInteger(validity) && validity > 0)) throw usageError(`--cert-validity-ms must be a positive number of milliseconds, got ${values['cert-validity-ms']}`)
  const rateLimit = values['rate-limit'] === undefined ? undefined : Number(values['rate-limit'])
  if (rateLimit !== undefined && !(Number.isInteger(rateLimit) && rateLimit >= 0)) throw usageError(`--rate-limit must be a whole number of requests a minute (0: no limit), got ${values['rate-limit']}`)
  const apiPort = port(values['api-port'], '--api-port')
  const ingressPort = port(values['ingress-port'], '--ingress-port')

  const sim = await CloudSimulator.start({
    ...(values.host === undefined ? {} : { host: values.host }),
    ...(apiPort === undefined ? {} : { apiPort }),
    ...(ingressPort === undefined ? {} : { ingressPort }),
    ...(values['api-key'] === undefined ? {} : { apiKey: values['api-key'] }),
    ...(validity === undefined ? {} : { certValidityMs: validity }),
    ...(rateLimit === undefined ? {} : { rateLimitPerMinute: rateLimit }),
    ...(values['advertise-ingress'] === undefined ? {} : { advertisedIngressEndpoint: values['advertise-ingress'] }),
    logger: values.verbose ? jsonLinesLogger((line) => process.stderr.write(line)) : silentLogger,
  }).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'EADDRINUSE' && e.code !== 'EADDRNOTAVAIL' && e.code !== 'EACCES') throw e
    throw new NgrokdError('NGROKD_ERR_LISTEN', `the simulator cannot listen: ${e.message}`, {
      cause: e,
      hint: e.code === 'EADDRNOTAVAIL' ? 'give --host an address of this machine' : 'give --api-port / --ingress-port a free port (or leave them out: any free port)',
    })
  })
  try {
    for (const e of endpoints) sim.addEndpoint(e)
    let caFile: string | null = null
    if (values['ca-out'] !== undefined) {
      caFile = resolve(values['ca-out'])
      try {
        writeFileSync(caFile, sim.caCertPem, { mode: 0o644 })
      } catch (e) {
        throw usageError(`--ca-out ${values['ca-out']}: ${(e as Error).message}`, 'name a file in a folder that exists and that you may write')
      }
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

/** `ngrokd simulator ARGV`: the exit code. A usage error (NGROKD_ERR_USAGE) names the flag. */
export async function runSimulatorCommand(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs(simulatorSpec, argv)
  if (values.help) {
    console.log(`${simulatorSpec.summary}\n\nUsage: ${simulatorSpec.usage}`)
    return 0
  }
  return runSimulator(values as SimulatorValues)
}
