/**
 * What one idle connection costs a Node process, TLS beside plain TCP: the floor under the daemon's
 * "RSS with 1,000 idle connections" (each forwarded connection holds one local TCP socket and one mTLS
 * socket to the ingress). Not a test: it prints figures.
 *
 *   node test/dist-test/bench/connection-memory.js [--connections 1000]
 *
 * The servers (TLS 1.3 with the kit's ingress certificate, and TCP, both echoing) run in a child
 * process; this process opens the client connections, exchanges one byte on each, collects garbage and
 * reports its RSS growth per connection (VmRSS) and the part that is V8 heap: the rest is native (libuv,
 * Node's TLS wrap, OpenSSL's connection state and buffers).
 */
import { fork } from 'node:child_process'
import { readFileSync } from 'node:fs'
import net from 'node:net'
import tls from 'node:tls'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import v8 from 'node:v8'
import vm from 'node:vm'
import { createTestPki } from '@ngrokd/core/testing'

type Ports = { tls: number; tcp: number }

async function servers(): Promise<void> {
  const pki = createTestPki()
  const echo = (s: net.Socket) => s.on('data', (d) => s.write(d)).on('error', () => {})
  const tlsServer = tls.createServer({ key: pki.ingress.keyPem, cert: pki.ingress.certPem }, echo).listen(0, '127.0.0.1')
  const tcpServer = net.createServer(echo).listen(0, '127.0.0.1')
  await Promise.all([tlsServer, tcpServer].map((s) => new Promise((r) => s.once('listening', r))))
  const port = (s: net.Server) => (s.address() as net.AddressInfo).port
  process.send!({ tls: port(tlsServer), tcp: port(tcpServer) } satisfies Ports)
}

const rssBytes = (): number => Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]) * 1024

async function settle(): Promise<void> {
  v8.setFlagsFromString('--expose-gc')
  const gc = vm.runInNewContext('gc') as () => void
  gc()
  await new Promise((r) => setTimeout(r, 200))
  gc()
}

async function measure(kind: 'tls' | 'tcp', ports: Ports, count: number): Promise<{ rss: number; heap: number }> {
  await settle()
  const rss0 = rssBytes()
  const heap0 = process.memoryUsage().heapUsed
  const open: net.Socket[] = []
  for (let i = 0; i < count; i++) {
    const socket = kind === 'tls' ? tls.connect({ port: ports.tls, host: '127.0.0.1', rejectUnauthorized: false }) : net.connect(ports.tcp, '127.0.0.1')
    await new Promise((r) => socket.once(kind === 'tls' ? 'secureConnect' : 'connect', r))
    socket.write('x')
    await new Promise((r) => socket.once('data', r))
    open.push(socket)
  }
  await settle()
  const result = { rss: (rssBytes() - rss0) / count, heap: (process.memoryUsage().heapUsed - heap0) / count }
  for (const s of open) s.destroy()
  return result
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { connections: { type: 'string', default: '1000' } } })
  const count = Number(values.connections)
  const child = fork(fileURLToPath(import.meta.url), ['servers'])
  const ports = await new Promise<Ports>((r) => child.once('message', (m) => r(m as Ports)))
  try {
    console.log(`Node ${process.version}, ${count} idle client connections each (one byte echoed), per connection:`)
    for (const kind of ['tcp', 'tls'] as const) {
      const { rss, heap } = await measure(kind, ports, count)
      console.log(`  ${kind.padEnd(3)}  RSS ${(rss / 1024).toFixed(1).padStart(6)} KiB, of which V8 heap ${(heap / 1024).toFixed(1).padStart(5)} KiB`)
    }
  } finally {
    child.kill()
  }
}

if (process.argv[2] === 'servers') await servers()
else await main()
