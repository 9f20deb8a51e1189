#!/usr/bin/env node
/**
 * The benchmark's server side, in a process of its own so the measuring client does not share an
 * event loop with it: the cloud simulator (API, CA, binding ingress, backends), optionally with many
 * generated endpoints, plus "direct" TCP ports that hand each accepted socket straight to the
 * simulator's own `bulk` and `http-echo` backend code (the no-tunnel baseline).
 *
 * Started by {@link SimHost}: argv[2] is a JSON {@link SimHostSpec}; one JSON {@link SimHostInfo}
 * line on stdout when ready; SIGTERM stops it.
 */
import net, { createServer, type Server } from 'node:net'
import { createRequire, syncBuiltinESMExports } from 'node:module'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { Duplex } from 'node:stream'
import { silentLogger, type Logger } from '@ngrokd/core'
import { CloudSimulator, SimulatorCa, type AddEndpointInput } from '@ngrokd/plugins/simulator'

export interface SimHostSpec {
  endpoints?: AddEndpointInput[]
  /** `count` endpoints `http://<prefix>NNNNN.<domain>` (http-echo), in this order. */
  generate?: { count: number; prefix: string; domain: string }
  /** Open the direct backend ports. */
  direct?: boolean
}

export interface SimHostInfo {
  apiUrl: string
  apiKey: string
  caCertPem: string
  ingressPort: number
  /** 127.0.0.1 ports served by the simulator's backends without the ingress; null unless `direct`. */
  direct: { bulk: number; http: number } | null
  /** Setup time of the generated endpoints (not a figure; the simulator's add is O(n) per endpoint). */
  setupMs: number
}

/** The part of the simulator's (unexported) `Backends` class used here. */
interface BackendsLike {
  serve(endpoint: { id: string; backend: 'bulk' | 'http-echo'; host: string }, socket: Duplex): void
  close(): void
}

/**
 * The direct baseline must run the very backend code the ingress hands tunnelled connections to, but
 * `@ngrokd/plugins/simulator` does not export it: load the built module by file path.
 */
async function loadBackends(): Promise<new (ca: SimulatorCa, logger: Logger) => BackendsLike> {
  const pkg = createRequire(import.meta.url).resolve('@ngrokd/plugins/package.json')
  const mod = (await import(pathToFileURL(join(dirname(pkg), 'dist/simulator/backends.js')).href)) as {
    Backends?: new (ca: SimulatorCa, logger: Logger) => BackendsLike
  }
  if (typeof mod.Backends !== 'function') throw new Error('sim-host: @ngrokd/plugins dist/simulator/backends.js has no Backends export (rebuild plugins)')
  return mod.Backends
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

/**
 * TCP_NODELAY on every socket the simulator accepts, as Go's net package (ngrok's ingress) sets by
 * default. The simulator's ingress listener leaves Nagle on, and then every keep-alive HTTP answer
 * that leaves it as two TLS records waits for the client's delayed ACK (~40 ms on Linux): the
 * figure would measure that, not the tunnel. Harmless once the simulator sets it itself.
 */
function acceptWithNoDelay(): void {
  const original = net.createServer
  const patched = ((...args: Parameters<typeof net.createServer>) => {
    const server = original(...args)
    server.on('connection', (socket: net.Socket) => socket.setNoDelay(true))
    return server
  }) as typeof net.createServer
  net.createServer = patched
  syncBuiltinESMExports() // the simulator's `import { createServer } from 'node:net'` sees it too
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '{}') as SimHostSpec
  acceptWithNoDelay()
  const sim = await CloudSimulator.start()
  const servers: Server[] = []
  let backends: BackendsLike | undefined
  const stop = () => {
    for (const s of servers) s.close()
    backends?.close()
    void sim.stop().then(() => process.exit(0))
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)

  const t0 = performance.now()
  for (const e of spec.endpoints ?? []) sim.addEndpoint(e)
  if (spec.generate) {
    const { count, prefix, domain } = spec.generate
    for (let i = 0; i < count; i++) sim.addEndpoint({ url: `http://${prefix}${String(i).padStart(5, '0')}.${domain}` })
  }
  const setupMs = performance.now() - t0

  let direct: SimHostInfo['direct'] = null
  if (spec.direct) {
    const Backends = await loadBackends()
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

  const info: SimHostInfo = { apiUrl: sim.apiUrl, apiKey: sim.apiKey, caCertPem: sim.caCertPem, ingressPort: sim.ingressPort, direct, setupMs }
  process.stdout.write(`${JSON.stringify(info)}\n`)
}

main().catch((e: unknown) => {
  process.stderr.write(`sim-host: ${e instanceof Error ? e.stack : String(e)}\n`)
  process.exit(2)
})
