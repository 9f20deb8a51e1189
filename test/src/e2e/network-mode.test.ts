// Network mode: endpoints also served on net.network.listen, one stable port each, reached from
// "another machine on the LAN" (a second network namespace over a veth pair). For http endpoints every
// request of a keep-alive connection arrives with the endpoint's Host; bodies (chunked, Expect:
// 100-continue) arrive whole; tcp bytes are untouched; a restart keeps every port.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, execFileSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { CloudSimulator, type EchoReply, type EndpointObject } from '@ngrokd/plugin-simulator'
import { netnsSkip } from '../helpers/netns.js'
import { netDriverCases } from '../helpers/net-drivers.js'
import { E2eDaemon } from '../helpers/e2e-daemon.js'
import { snapshotHostsFile } from '../helpers/hosts-guard.js'
import { httpRequest } from '../helpers/clients.js'
import { deleteLink } from '../helpers/ip-link.js'
import { ngrokdCli } from '../helpers/ngrokd-cli.js'
import { createServer } from 'node:net'

/** The LAN: a veth pair between the test namespace (the daemon's machine) and a client namespace. */
const LAN_NS = `ngrokd-lan-${process.pid}`
const HOST_IF = 'ngkvlan0'
const PEER_IF = 'ngkvlan1'
const DAEMON_LAN = '10.201.0.1'
const CLIENT_LAN = '10.201.0.2'
/** `net.network.start_port`'s default. */
const START_PORT = 20_000
/** Safety net for one client run in the LAN namespace; not a performance bound. */
const CLIENT_TIMEOUT_MS = 60_000

const ip = (...args: string[]): void => {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] })
}

/**
 * Runs `script` (CommonJS, for `node -e`) with `node` inside the client namespace; `plan` reaches it
 * as JSON in LAN_CLIENT_PLAN, and its stdout is parsed as JSON.
 */
function onLanClient<T>(script: string, plan: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    execFile(
      'ip',
      ['netns', 'exec', LAN_NS, process.execPath, '-e', script],
      { env: { ...process.env, LAN_CLIENT_PLAN: JSON.stringify(plan) }, timeout: CLIENT_TIMEOUT_MS, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`LAN client failed: ${err.message}\n${stderr}`))
        else resolve(JSON.parse(stdout) as T)
      },
    )
  })
}

interface HttpPlanResult {
  results: Array<{ status: number; reply: EchoReply }>
  /** Sockets the client opened for all its requests. */
  sockets: number
  /** The client's own addresses on those sockets. */
  locals: string[]
  sent: Record<string, number>
}

/**
 * One keep-alive connection (an agent with one socket): three GETs, a chunked POST, an Expect:
 * 100-continue POST, an h2c upgrade the server declines, one more GET; every request with the Host a LAN
 * client would send (ip:port).
 */
const HTTP_CLIENT = `
const http = require('node:http')
const crypto = require('node:crypto')
const { host, port } = JSON.parse(process.env.LAN_CLIENT_PLAN)
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
const sockets = new Set()
const locals = new Set()
function send(method, path, opts = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, method, path, agent, headers: { host: host + ':' + port, ...(opts.headers || {}) } }, (res) => {
      let data = ''
      res.setEncoding('utf8')
      res.on('data', (c) => (data += c))
      res.on('end', () => resolve({ status: res.statusCode, reply: JSON.parse(data) }))
    })
    req.on('socket', (s) => {
      sockets.add(s)
      if (s.connecting) s.once('connect', () => locals.add(s.localAddress))
      else locals.add(s.localAddress)
    })
    req.on('error', reject)
    if (opts.expect) return void req.on('continue', () => req.end(opts.body))
    if (opts.chunked) {
      for (let i = 0; i < opts.body.length; i += 16384) req.write(opts.body.subarray(i, i + 16384))
      return void req.end()
    }
    req.end(opts.body)
  })
}
;(async () => {
  const results = []
  for (const p of ['/one', '/two', '/three']) results.push(await send('GET', p))
  const big = crypto.randomBytes(200000)
  results.push(await send('POST', '/chunked', { body: big, chunked: true, headers: { 'transfer-encoding': 'chunked' } }))
  const small = crypto.randomBytes(50000)
  results.push(await send('POST', '/expect', { body: small, expect: true, headers: { expect: '100-continue', 'content-length': String(small.length) } }))
  // what curl --http2 sends: an h2c upgrade the server declines with a plain 200; the connection goes on in HTTP/1.1
  results.push(await send('GET', '/h2c', { headers: { connection: 'Upgrade, HTTP2-Settings', upgrade: 'h2c', 'http2-settings': 'AAMAAABkAAQCAAAAAAIAAAAA' } }))
  results.push(await send('GET', '/last'))
  agent.destroy()
  process.stdout.write(JSON.stringify({ results, sockets: sockets.size, locals: [...locals], sent: { chunked: big.length, expect: small.length } }))
})().catch((e) => {
  console.error(e && e.stack)
  process.exit(1)
})
`

/** Writes the payload, half-closes, and prints what came back (base64). */
const TCP_CLIENT = `
const net = require('node:net')
const { host, port, payload } = JSON.parse(process.env.LAN_CLIENT_PLAN)
const s = net.connect({ host, port, allowHalfOpen: true }, () => s.end(Buffer.from(payload, 'base64')))
const chunks = []
s.on('data', (c) => chunks.push(c))
s.on('end', () => {
  process.stdout.write(JSON.stringify({ received: Buffer.concat(chunks).toString('base64') }))
  s.destroy()
})
s.on('error', (e) => {
  console.error(e.stack)
  process.exit(1)
})
`

const [net] = netDriverCases('netm')

describe(`network mode from another machine on the LAN (${net!.driver})`, { skip: netnsSkip }, () => {
  let sim: CloudSimulator
  let daemon: E2eDaemon
  let eps: Record<'web' | 'api8080' | 'echo', EndpointObject>
  const hosts = snapshotHostsFile()
  let ports = new Map<string, number>()

  /** url → network port, from `ngrokd list --json`'s source (GET /v1/endpoints). */
  async function networkPorts(): Promise<Map<string, number>> {
    const services = await daemon.services()
    return new Map(services.map((s) => [s.url as string, s.network?.port as number]))
  }

  before(async () => {
    hosts.take()
    ip('netns', 'add', LAN_NS)
    ip('link', 'add', HOST_IF, 'type', 'veth', 'peer', 'name', PEER_IF)
    ip('link', 'set', PEER_IF, 'netns', LAN_NS)
    ip('addr', 'add', `${DAEMON_LAN}/24`, 'dev', HOST_IF)
    ip('link', 'set', HOST_IF, 'up')
    ip('netns', 'exec', LAN_NS, 'ip', 'addr', 'add', `${CLIENT_LAN}/24`, 'dev', PEER_IF)
    ip('netns', 'exec', LAN_NS, 'ip', 'link', 'set', PEER_IF, 'up')
    ip('netns', 'exec', LAN_NS, 'ip', 'link', 'set', 'lo', 'up')

    sim = await CloudSimulator.start()
    eps = {
      web: sim.addEndpoint({ url: 'http://web.e2e' }),
      api8080: sim.addEndpoint({ url: 'http://api.e2e:8080' }),
      echo: sim.addEndpoint({ url: 'tcp://echo.e2e:7000' }),
    }
    // first run without network mode, then turn it on in the config file and restart on the same state_dir
    daemon = E2eDaemon.start({ name: 'netmode', sim, net: net! })
    await daemon.waitReady((s) => s.services?.serving === 3)
    assert.ok((await daemon.services()).every((s) => s.network === undefined), 'no network listeners unless net.network.listen is set')
    assert.equal((await daemon.stop('SIGTERM')).code, 0)
    daemon.config.net.network = { listen: DAEMON_LAN }
    writeFileSync(daemon.configFile, `${JSON.stringify(daemon.config, null, 2)}\n`)
    daemon.restart()
    await daemon.waitReady((s) => s.services?.serving === 3)
    ports = await networkPorts()
  })

  after(async () => {
    await daemon?.dispose()
    await sim?.stop()
    try {
      ip('netns', 'del', LAN_NS) // takes the peer end with it, and so the whole pair
    } catch {
      // never created
    }
    deleteLink(HOST_IF)
    hosts.assertRestored()
  })

  test('every service gets a port counted from start_port, shown by the control API', () => {
    assert.deepEqual([...ports.values()].sort(), [START_PORT, START_PORT + 1, START_PORT + 2])
    assert.ok(existsSync(join(daemon.stateDir, 'network-ports.json')), 'the ports are persisted in state_dir')
  })

  test('http: one keep-alive connection from the LAN, every Host rewritten (after a declined upgrade too), chunked and 100-continue bodies whole', async () => {
    const port = ports.get('http://web.e2e')!
    const run = await onLanClient<HttpPlanResult>(HTTP_CLIENT, { host: DAEMON_LAN, port })
    assert.equal(run.sockets, 1, 'all seven requests went over one connection')
    assert.deepEqual(run.locals, [CLIENT_LAN], 'the requests came from the other namespace')
    assert.deepEqual(run.results.map((r) => r.status), Array(7).fill(200))
    assert.deepEqual(run.results.map((r) => r.reply.host), Array(7).fill('web.e2e'), 'the backend saw the endpoint hostname on every request')
    assert.deepEqual(run.results.map((r) => r.reply.endpoint_id), Array(7).fill(eps.web.id))
    assert.deepEqual(run.results.map((r) => r.reply.path), ['/one', '/two', '/three', '/chunked', '/expect', '/h2c', '/last'])
    const [, , , chunked, expect] = run.results
    assert.equal(chunked!.reply.headers['transfer-encoding'], 'chunked')
    assert.equal(chunked!.reply.body_bytes, run.sent.chunked)
    assert.equal(expect!.reply.headers.expect, '100-continue')
    assert.equal(expect!.reply.body_bytes, run.sent.expect)
    const web = (await daemon.services()).find((s) => s.url === 'http://web.e2e')!
    assert.equal(web.network.totalConnections, 1)
    assert.equal(web.network.rewriteHost, 'web.e2e')
  })

  test('http on a non-default port: the Host value carries the port', async () => {
    const run = await onLanClient<HttpPlanResult>(HTTP_CLIENT, { host: DAEMON_LAN, port: ports.get('http://api.e2e:8080')! })
    assert.deepEqual(new Set(run.results.map((r) => r.reply.host)), new Set(['api.e2e:8080']))
    assert.deepEqual(new Set(run.results.map((r) => r.reply.endpoint_id)), new Set([eps.api8080.id]))
  })

  test('tcp: bytes that look like HTTP pass untouched', async () => {
    const payload = Buffer.from('GET / HTTP/1.1\r\nHost: not-rewritten\r\n\r\n\x00\x01\x02')
    const { received } = await onLanClient<{ received: string }>(TCP_CLIENT, { host: DAEMON_LAN, port: ports.get('tcp://echo.e2e:7000')!, payload: payload.toString('base64') })
    assert.ok(Buffer.from(received, 'base64').equals(payload))
  })

  test('the local path is unchanged: by hostname, on the endpoint port', async () => {
    const res = await httpRequest('http://web.e2e/local')
    assert.equal(res.json<EchoReply>().host, 'web.e2e')
  })

  test('a restart keeps every port', async () => {
    const saved = readFileSync(join(daemon.stateDir, 'network-ports.json'), 'utf8')
    assert.equal((await daemon.stop('SIGTERM')).code, 0)
    daemon.restart()
    await daemon.waitReady((s) => s.services?.serving === 3)
    assert.deepEqual(await networkPorts(), ports)
    assert.deepEqual(JSON.parse(readFileSync(join(daemon.stateDir, 'network-ports.json'), 'utf8')).entries, JSON.parse(saved).entries.map((e: Record<string, unknown>) => ({ ...e, active: true })))
    const run = await onLanClient<HttpPlanResult>(HTTP_CLIENT, { host: DAEMON_LAN, port: ports.get('http://web.e2e')! })
    assert.deepEqual(new Set(run.results.map((r) => r.reply.host)), new Set(['web.e2e']))
  })

  test('a network port another program holds: list and doctor fail that service, with the fix', async () => {
    const squatter = createServer()
    await new Promise<void>((resolve) => squatter.listen(START_PORT + 3, DAEMON_LAN, resolve))
    try {
      sim.addEndpoint({ url: 'http://late.e2e' })
      await daemon.waitFor((s) => s.services?.serving === 4, 'the new endpoint served')
      const late = (await daemon.services()).find((s) => s.url === 'http://late.e2e')!
      assert.ok(late.network?.error, JSON.stringify(late))
      assert.equal(late.network.port, START_PORT + 3, 'the next network port, the one held')
      const r = await ngrokdCli(['doctor', '--json', '--offline', '--config', daemon.configFile])
      const checks = (JSON.parse(r.stdout) as { checks: Array<{ id: string; status: string; summary: string; hint?: string }> }).checks
      const off = checks.filter((c) => c.id === 'daemon.network')
      assert.equal(off.length, 1, r.stdout)
      assert.equal(off[0]!.status, 'fail')
      assert.match(off[0]!.summary, new RegExp(`^http://late\\.e2e is not on the network \\(${DAEMON_LAN.replace(/\./g, '\\.')}:${START_PORT + 3}\\): .*EADDRINUSE`))
      assert.match(off[0]!.hint ?? '', new RegExp(`already listens on ${DAEMON_LAN.replace(/\./g, '\\.')}:${START_PORT + 3}: stop it`))
      assert.equal(r.code, 1, 'a failing check')
    } finally {
      await new Promise((resolve) => squatter.close(resolve))
    }
  })
})
