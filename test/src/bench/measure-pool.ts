/**
 * Measures the forwarder variants side by side: in-thread, and the worker pool with 1 and 2 workers.
 * Not a test: it prints figures. The fake ingress and the load run in a child process, so the CPU time
 * taken here (`process.cpuUsage()`, all threads) is the forwarder's alone.
 *
 *   node test/dist-test/bench/measure-pool.js [--variants 0,1,2] [--download-mib 256] [--streams 1] [--connections 5000] [--concurrency 64]
 *
 * Per variant: a download of `--download-mib` split over `--streams` connections (MiB/s, CPU seconds per GiB,
 * and the main thread's event-loop delay meanwhile: what the control plane waits while bytes move),
 * then `--connections` short connections (connect, 1 byte each way, close), `--concurrency` at a time.
 */
import { fork } from 'node:child_process'
import net from 'node:net'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { createForwarder, type Logger } from '@ngrokd/core'
import { createTestPki, echo, freePort, startFakeIngress, type TestPki } from '@ngrokd/core/testing'

type ToPeer =
  | { t: 'start'; pki: TestPki }
  | { t: 'download'; port: number; bytes: number; streams: number }
  | { t: 'connections'; port: number; count: number; concurrency: number }
type FromPeer = { t: 'ingress'; endpoint: string } | { t: 'done'; ms: number; bytes?: number; failed?: number }

const CHUNK = 64 * 1024
const silent: Logger = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {}, child: () => silent } as Logger

if (process.argv[2] === 'peer') await peer()
else await main()

async function main(): Promise<void> {
  const arg = (name: string, fallback: string): string => {
    const i = process.argv.indexOf(`--${name}`)
    return i > 0 ? process.argv[i + 1]! : fallback
  }
  const variants = arg('variants', '0,1,2').split(',').map(Number)
  const downloadBytes = Number(arg('download-mib', '256')) * 1024 * 1024
  const count = Number(arg('connections', '5000'))
  const concurrency = Number(arg('concurrency', '64'))
  const streams = Number(arg('streams', '1'))
  const pki = createTestPki()
  const child = fork(fileURLToPath(import.meta.url), ['peer'], { stdio: 'inherit' })
  const ask = (message: ToPeer): Promise<FromPeer> =>
    new Promise((resolve) => {
      child.once('message', (m) => resolve(m as FromPeer))
      child.send(message)
    })
  const { endpoint } = (await ask({ t: 'start', pki })) as { endpoint: string }
  console.log(`node ${process.version}, ${(await import('node:os')).availableParallelism()} cores; download ${downloadBytes / 2 ** 20} MiB over ${streams} connection${streams > 1 ? 's' : ''}; ${count} connections, ${concurrency} at a time`)
  for (const workers of variants) {
    const forwarder = await createForwarder({
      logger: silent,
      settings: { workers, maxConnections: 100_000, maxConnectionsPerEndpoint: 100_000 },
      ingress: { credentials: () => pki.clientA, endpoint: () => endpoint, ca: pki.ingressCaPem },
    })
    const port = await freePort()
    const dlPort = await freePort()
    await forwarder.listen({ address: '127.0.0.1', port, target: { hostname: 'bench.prod', port: 80, proto: 'tcp' } })
    await forwarder.listen({ address: '127.0.0.1', port: dlPort, target: { hostname: 'bench.prod', port: 81, proto: 'tcp' } })
    // warm up: workers started, code compiled, TLS contexts built
    await ask({ t: 'connections', port, count: 200, concurrency: 16 })
    // how long the main thread (the control plane: API, reconcile, control socket) waits to run while bytes move
    const delay = monitorEventLoopDelay({ resolution: 5 })
    delay.enable()
    let cpu = process.cpuUsage()
    const dl = (await ask({ t: 'download', port: dlPort, bytes: downloadBytes, streams })) as { ms: number; bytes: number }
    let used = process.cpuUsage(cpu)
    delay.disable()
    const p99 = delay.percentile(99) / 1e6
    const mibs = dl.bytes / 2 ** 20 / (dl.ms / 1000)
    const cpuPerGiB = (used.user + used.system) / 1e6 / (dl.bytes / 2 ** 30)
    cpu = process.cpuUsage()
    const cs = (await ask({ t: 'connections', port, count, concurrency })) as { ms: number; failed: number }
    used = process.cpuUsage(cpu)
    const perSecond = count / (cs.ms / 1000)
    const cpuPerConn = (used.user + used.system) / count
    const name = workers === 0 ? 'in-thread' : `pool ${workers} worker${workers > 1 ? 's' : ''}`
    console.log(
      `${name.padEnd(16)} ${forwarder.forwarder.padEnd(12)} download ${mibs.toFixed(0).padStart(5)} MiB/s, ${cpuPerGiB.toFixed(2)} CPU s/GiB, main-thread delay p99 ${p99.toFixed(1)} ms | ` +
        `${perSecond.toFixed(0).padStart(5)} connections/s, ${cpuPerConn.toFixed(0)} CPU µs each, ${cs.failed} failed`,
    )
    await forwarder.close()
  }
  child.kill()
}

async function peer(): Promise<void> {
  const reply = (m: FromPeer): void => void process.send!(m)
  process.on('message', async (m: ToPeer) => {
    if (m.t === 'start') {
      const ingress = await startFakeIngress({
        pki: m.pki,
        onRequest: (conn) => {
          if (conn.request.port !== 81) return echo(conn)
          // port 81 is the download: its size is the first 8 bytes the client sends
          conn.accept()
          conn.socket.once('readable', () => {
            const head = conn.socket.read(8) as Buffer | null
            void send(conn.socket, head ? Number(head.readBigUInt64BE()) : 0)
          })
        },
      })
      reply({ t: 'ingress', endpoint: ingress.endpoint })
    } else if (m.t === 'download') {
      const start = performance.now()
      const each = await Promise.all(Array.from({ length: m.streams }, () => download(m.port, Math.floor(m.bytes / m.streams))))
      reply({ t: 'done', ms: performance.now() - start, bytes: each.reduce((n, b) => n + b, 0) })
    } else {
      reply(await connections(m.port, m.count, m.concurrency))
    }
  })
}

async function send(s: net.Socket, bytes: number): Promise<void> {
  const chunk = Buffer.alloc(CHUNK, 0x5a)
  for (let sent = 0; sent < bytes; sent += CHUNK) {
    if (!s.write(chunk)) await new Promise((resolve) => s.once('drain', resolve))
  }
  s.end()
}

/** Bytes received over one connection that asked for `bytes`. */
function download(port: number, bytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let got = 0
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      const head = Buffer.alloc(8)
      head.writeBigUInt64BE(BigInt(bytes))
      s.write(head)
    })
    s.on('data', (d: Buffer) => (got += d.length))
    s.once('end', () => {
      s.end()
      resolve(got)
    })
    s.once('error', reject)
  })
}

async function connections(port: number, count: number, concurrency: number): Promise<FromPeer> {
  const start = performance.now()
  let next = 0
  let failed = 0
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true })
      let ok = false
      s.on('connect', () => s.write('x'))
      s.on('data', () => {
        ok = true
        s.end()
      })
      s.on('error', () => {})
      s.once('close', () => {
        if (!ok) failed++
        resolve()
      })
    })
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        next++
        await one()
      }
    }),
  )
  return { t: 'done', ms: performance.now() - start, failed }
}
