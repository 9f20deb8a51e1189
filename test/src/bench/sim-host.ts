#!/usr/bin/env node
/**
 * The benchmark's server side, in a process of its own so the measuring client does not share an
 * event loop with it: the cloud simulator (API, CA, binding ingress, backends), optionally with many
 * generated endpoints, plus "direct" TCP ports that hand each accepted socket straight to the
 * simulator's own `bulk` and `http-echo` backend code (the no-tunnel baseline).
 *
 * Started by {@link SimHost}: argv[2] is a JSON {@link SimHostSpec}; one JSON {@link SimHostInfo}
 * line on stdout when ready; SIGTERM, or the end of stdin (the bench went away), stops it.
 */
import { createServer, type Server } from 'node:net'
import { silentLogger } from '@ngrokd/core'
import { Backends, CloudSimulator, SimulatorCa, type AddEndpointInput } from '@ngrokd/plugin-simulator'

export interface SimHostSpec {
  endpoints?: AddEndpointInput[]
  /** `count` endpoints `http://<prefix>NNNNN.<domain>` (http-echo), in this order. */
  generate?: { count: number; prefix: string; domain: string }
  /** Open the direct backend ports. */
  direct?: boolean
  /** Also serve the API over HTTPS (CloudSimulator's `apiTls`), for the Go peer. */
  apiTls?: { names: string[]; port: number }
}

export interface SimHostInfo {
  apiUrl: string
  /** The same API over HTTPS; null unless `apiTls`. */
  apiHttpsUrl: string | null
  apiKey: string
  caCertPem: string
  ingressPort: number
  /** 127.0.0.1 ports served by the simulator's backends without the ingress; null unless `direct`. */
  direct: { bulk: number; http: number } | null
  /** Setup time of the generated endpoints (not a figure). */
  setupMs: number
}

function listenLoopback(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      server.off('error', reject)
      resolve((server.address() as { port: number }).port)
    })
  })
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '{}') as SimHostSpec
  // the bench measures the daemons, not ngrok's rate limit: 10,000 endpoints are 100 pages a start
  const sim = await CloudSimulator.start({ rateLimitPerMinute: 0, ...(spec.apiTls ? { apiTls: spec.apiTls } : {}) })
  const servers: Server[] = []
  let backends: Backends | undefined
  let stopping = false
  const stop = () => {
    if (stopping) return
    stopping = true
    for (const s of servers) s.close()
    backends?.close()
    void sim.stop().then(() => process.exit(0))
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  // stdin is a pipe from the bench: it closes when the bench exits, even by a crash or process.exit()
  process.stdin.on('end', stop).on('close', stop).resume()

  const t0 = performance.now()
  for (const e of spec.endpoints ?? []) sim.addEndpoint(e)
  if (spec.generate) {
    const { count, prefix, domain } = spec.generate
    for (let i = 0; i < count; i++) sim.addEndpoint({ url: `http://${prefix}${String(i).padStart(5, '0')}.${domain}` })
  }
  const setupMs = performance.now() - t0

  let direct: SimHostInfo['direct'] = null
  if (spec.direct) {
    const live = new Backends(SimulatorCa.create(), silentLogger)
    backends = live
    const serveAs = (backend: 'bulk' | 'http-echo') => {
      const endpoint = { id: `ep_direct_${backend}`, backend, host: `direct-${backend}.bench` }
      const server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => live.serve(endpoint, socket))
      servers.push(server)
      return listenLoopback(server)
    }
    direct = { bulk: await serveAs('bulk'), http: await serveAs('http-echo') }
  }

  const info: SimHostInfo = { apiUrl: sim.apiUrl, apiHttpsUrl: sim.apiHttpsUrl ?? null, apiKey: sim.apiKey, caCertPem: sim.caCertPem, ingressPort: sim.ingressPort, direct, setupMs }
  process.stdout.write(`${JSON.stringify(info)}\n`)
}

main().catch((e: unknown) => {
  process.stderr.write(`sim-host: ${e instanceof Error ? e.stack : String(e)}\n`)
  process.exit(2)
})
