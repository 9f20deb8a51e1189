// The driver against the real kernel. As root on Linux this file re-runs itself under `unshare -n`
// (a throwaway network namespace that disappears with the process) and reports each of the child's
// tests here; the child refuses to start unless its namespace differs from ours, so nothing here
// touches the host's interfaces. Kernel state is read back with `ip -j` (iproute2), independently
// of the driver's own decoding. Elsewhere it is skipped with the reason.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { readlinkSync } from 'node:fs'
import { createConnection, createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import { isNgrokdError, silentLogger, type Check } from '@ngrokd/core/driver'
import driver from './index.js'
import { LINK_CREATE_GROUP, LINK_TAG, LinuxNetlinkInterface } from './linux-netlink-interface.js'
import { getAddrDumpRequest } from './netlink/messages.js'
import { RouteSocket, type NetlinkTransport } from './netlink/route-socket.js'

const NETNS_ENV = 'NGROKD_NETLINK_TEST_HOST_NETNS'
const hostNetns = process.env[NETNS_ENV]
const self = fileURLToPath(import.meta.url)

function skipReason(): string | undefined {
  if (process.platform !== 'linux') return 'real-kernel tests need Linux'
  if (process.getuid?.() !== 0) return 'real-kernel tests need root (they create a network namespace)'
  if (spawnSync('unshare', ['--version']).status !== 0) return 'unshare(1) from util-linux is not installed'
  if (spawnSync('ip', ['-V']).status !== 0) return 'ip(8) from iproute2 is not installed'
  return undefined
}

if (hostNetns === undefined) {
  test('linux-netlink against the real kernel, in a throwaway network namespace', { skip: skipReason() ?? false }, async (t) => {
    const { code, stdout, stderr } = await runInNetns()
    const results = parseTap(stdout)
    for (const r of results) {
      await t.test(r.name, { skip: r.skip ?? false }, () => {
        if (!r.ok) assert.fail(`${r.name}\n${r.details}`)
      })
    }
    assert.ok(results.length > 0, `the namespaced run reported no tests:\n${stdout.slice(0, 4000)}\n${stderr.slice(-4000)}`)
    assert.equal(code, 0, `the namespaced run failed:\n${stderr.slice(-4000)}`)
  })
} else {
  childTests()
}

function runInNetns(): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const execArgv = process.execArgv.filter((a) => !a.startsWith('--test'))
  // once its tests are done the child exits even if a native handle lingers (Node 20.14+ has the flag)
  const [major, minor] = process.versions.node.split('.').map(Number) as [number, number]
  const forceExit = major > 20 || (major === 20 && minor >= 14) ? ['--test-force-exit'] : []
  const child = spawn('unshare', ['-n', process.execPath, ...execArgv, ...forceExit, '--test-reporter=tap', self], {
    // NODE_TEST_CONTEXT would make the child talk node:test's internal protocol instead of TAP
    env: { ...process.env, NODE_TEST_CONTEXT: undefined, [NETNS_ENV]: readlinkSync('/proc/self/ns/net') },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })))
}

interface TapResult {
  ok: boolean
  name: string
  skip?: string
  details: string
}

/** Top-level `ok N - name` / `not ok N - name` lines of node:test's TAP reporter, with their YAML. */
function parseTap(text: string): TapResult[] {
  const results: TapResult[] = []
  for (const line of text.split('\n')) {
    const m = /^(not )?ok \d+ - (.*?)(?: # SKIP(?: (.*))?)?$/.exec(line)
    if (m) results.push({ ok: !m[1], name: m[2]!.replace(/\\#/g, '#'), ...(line.includes('# SKIP') ? { skip: m[3] ?? 'skipped' } : {}), details: '' })
    else if (line.startsWith('  ') && results.length > 0) results.at(-1)!.details += `${line}\n`
  }
  return results
}

// ---------------------------------------------------------------------------------------------
// Inside the namespace

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', maxBuffer: 256 << 20 })
}

interface IpAddrInfo {
  family: string
  local: string
  prefixlen: number
}

/** IPv4 addresses on `dev` as `ip -j addr` reports them: `a.b.c.d/len`, sorted. */
function kernelAddresses(dev: string): string[] {
  const [link] = JSON.parse(ip('-j', 'addr', 'show', 'dev', dev)) as Array<{ addr_info: IpAddrInfo[] }>
  return link!.addr_info
    .filter((a) => a.family === 'inet')
    .map((a) => `${a.local}/${a.prefixlen}`)
    .sort(byAddress)
}

function kernelLink(dev: string): { flags: string[]; kind?: string } | undefined {
  const r = spawnSync('ip', ['-j', '-d', 'link', 'show', 'dev', dev], { encoding: 'utf8' })
  if (r.status !== 0) return undefined
  const [link] = JSON.parse(r.stdout) as Array<{ flags: string[]; linkinfo?: { info_kind?: string } }>
  return { flags: link!.flags, ...(link!.linkinfo?.info_kind ? { kind: link!.linkinfo.info_kind } : {}) }
}

function byAddress(a: string, b: string): number {
  const n = (s: string) => s.split(/[./]/).slice(0, 4).reduce((acc, p) => acc * 256 + Number(p), 0)
  return n(a) - n(b)
}

const SUBNET = '10.107.0.0/16'

function open(name: string, options: { force?: boolean; subnet?: string } = {}) {
  const iface = new LinuxNetlinkInterface({ name, subnet: options.subnet ?? SUBNET, ...(options.force ? { force: true } : {}) })
  return { iface, info: iface.open({ name, subnet: options.subnet ?? SUBNET }) }
}

function childTests(): void {
  // Belt and braces: never run against the host's network.
  const here = readlinkSync('/proc/self/ns/net')
  if (here === hostNetns) throw new Error(`refusing to run: still in the host network namespace ${here}`)
  ip('link', 'set', 'lo', 'up')

  test('open creates the link (a bridge where the kernel lacks dummy), up, and reports the kind it made', async () => {
    const { iface, info } = open('ngrt0')
    const got = await info
    const link = kernelLink('ngrt0')!
    assert.ok(link, 'ip link show ngrt0')
    assert.ok(link.flags.includes('UP'), `flags ${link.flags}`)
    assert.equal(got.kind.split(' ')[0], link.kind)
    assert.equal(got.adopted, false)
    if (link.kind === 'bridge') {
      assert.equal(got.kind, 'bridge (dummy unavailable)')
      assert.match(got.notes.join(' '), /no dummy link type/)
    }
    await iface.close()
  })

  test('addresses appear as /32 host addresses with no subnet-wide route, and accept connections', async () => {
    const { iface, info } = open('ngrt0')
    await info
    await iface.applyAddresses({ add: ['10.107.0.2', '10.107.0.3', '10.107.200.17'], remove: [] })
    assert.deepEqual(kernelAddresses('ngrt0'), ['10.107.0.2/32', '10.107.0.3/32', '10.107.200.17/32'])
    assert.equal(ip('-4', 'route', 'show', 'table', 'main').includes('10.107.'), false, 'no 10.107 route in the main table')
    const server = createServer((c) => c.end('hello'))
    await new Promise<void>((resolve) => server.listen(18080, '10.107.0.3', resolve))
    const reply = await new Promise<string>((resolve, reject) => {
      let data = ''
      createConnection({ host: '10.107.0.3', port: 18080 })
        .setEncoding('utf8')
        .on('data', (d: string) => (data += d))
        .on('end', () => resolve(data))
        .on('error', reject)
    })
    server.close()
    assert.equal(reply, 'hello')
    await iface.close()
  })

  test('add and remove are idempotent; listAddresses equals what the kernel has', async () => {
    const { iface, info } = open('ngrt0')
    await info
    await iface.addAddress({ address: '10.107.0.2' })
    await iface.addAddress({ address: '10.107.0.2' }) // EEXIST is success
    await iface.removeAddress({ address: '10.107.0.9' }) // EADDRNOTAVAIL is success
    await iface.applyAddresses({ add: ['10.107.0.4', '10.107.0.2'], remove: ['10.107.0.9', '10.107.0.10'] })
    assert.deepEqual(kernelAddresses('ngrt0'), ['10.107.0.2/32', '10.107.0.4/32'])
    ip('addr', 'add', '10.107.9.9/32', 'dev', 'ngrt0') // added behind the driver's back
    const listed = (await iface.listAddresses()).sort(byAddress)
    assert.deepEqual(listed, ['10.107.0.2', '10.107.0.4', '10.107.9.9'])
    assert.deepEqual(listed.map((a) => `${a}/32`), kernelAddresses('ngrt0'))
    await iface.removeAddress({ address: '10.107.0.2' })
    await iface.removeAddress({ address: '10.107.0.2' })
    assert.deepEqual(kernelAddresses('ngrt0'), ['10.107.0.4/32', '10.107.9.9/32'])
    await iface.close()
  })

  test('10,000 addresses are applied in one batch of a few sends, then removed', async () => {
    const { iface, info } = open('ngrt0')
    await info
    const many = Array.from({ length: 10_000 }, (_, i) => `10.107.${1 + (i >> 8)}.${i & 255}`)
    const sendsBefore = iface.stats!.sends
    await iface.applyAddresses({ add: many, remove: [] })
    const sends = iface.stats!.sends - sendsBefore
    assert.ok(sends <= 10, `${sends} sends for 10,000 addresses`)
    assert.deepEqual(kernelAddresses('ngrt0'), many.map((a) => `${a}/32`).sort(byAddress))
    assert.equal((await iface.listAddresses()).length, 10_000)
    await iface.applyAddresses({ add: many, remove: [] }) // all EEXIST: still success
    await iface.applyAddresses({ add: [], remove: many })
    assert.deepEqual(kernelAddresses('ngrt0'), [])
    await iface.close()
  })

  test('after a crash (no close) a new instance adopts the link and its addresses', async () => {
    const crashed = open('ngrt1')
    await crashed.info
    await crashed.iface.applyAddresses({ add: ['10.107.3.1', '10.107.3.2'], remove: [] })
    // the first instance is abandoned without close(), as after kill -9
    const { iface, info } = open('ngrt1')
    const got = await info
    assert.equal(got.adopted, true)
    assert.match(got.notes.join(' '), /adopted/)
    assert.deepEqual((await iface.listAddresses()).sort(byAddress), ['10.107.3.1', '10.107.3.2'])
    await iface.addAddress({ address: '10.107.3.1' })
    await iface.close()
    assert.equal(kernelLink('ngrt1'), undefined)
    await crashed.iface.close({ removeInterface: false }) // release the abandoned socket
  })

  test("a user's bridge with the configured name (172.17.0.1/16) is refused as foreign and survives; ngrokd's own link carries the tag", async () => {
    ip('link', 'add', 'ngrt8', 'type', 'bridge')
    ip('addr', 'add', '172.17.0.1/16', 'dev', 'ngrt8')
    try {
      const { iface, info } = open('ngrt8')
      await assert.rejects(info, (e: unknown) => {
        assert.ok(isNgrokdError(e, 'NGROKD_ERR_INTERFACE_FOREIGN'), String(e))
        assert.match(e.message, /interface ngrt8 already exists \(a bridge link\) and is not ngrokd's/)
        assert.match(e.hint ?? '', /net\.interface_name/)
        return true
      })
      await iface.close()
      assert.equal(kernelLink('ngrt8')?.kind, 'bridge', 'the bridge is still there')
      assert.deepEqual(kernelAddresses('ngrt8'), ['172.17.0.1/16'])
    } finally {
      ip('link', 'del', 'ngrt8')
    }
    // a user's bridge just made (`ip link add ngrt8 type bridge`: down, no address, no alias, like a link a start
    // stopped before tagging) is refused too: not in ngrokd's create group
    ip('link', 'add', 'ngrt8', 'type', 'bridge')
    try {
      const { iface, info } = open('ngrt8')
      await assert.rejects(info, (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_INTERFACE_FOREIGN'))
      await iface.close({ removeInterface: true })
      assert.equal(kernelLink('ngrt8')?.kind, 'bridge', 'the fresh bridge is still there')
    } finally {
      ip('link', 'del', 'ngrt8')
    }
    const ours = open('ngrt8')
    await ours.info
    const [link] = JSON.parse(ip('-j', 'link', 'show', 'dev', 'ngrt8')) as Array<{ ifalias?: string; group?: string; flags?: string[] }>
    assert.equal(link!.ifalias, LINK_TAG, 'ip link show prints the tag as its alias')
    assert.equal(link!.group, String(LINK_CREATE_GROUP), 'and the group its create request gave it')
    assert.ok(!link!.flags?.includes('NO-CARRIER'), `up with carrier: ${link!.flags?.join(',')}`)
    await ours.iface.close()
  })

  test('a subnet overlapping a route on another interface is refused, naming both; force overrides', async () => {
    ip('link', 'add', 'other', 'type', 'bridge')
    ip('link', 'set', 'other', 'up')
    ip('route', 'add', '10.107.0.0/16', 'dev', 'other')
    try {
      const refused = open('ngrt2')
      await assert.rejects(refused.info, (e: unknown) => {
        assert.ok(isNgrokdError(e, 'NGROKD_ERR_ADDRESS_CONFLICT'), String(e))
        assert.match(e.message, /net\.subnet 10\.107\.0\.0\/16 overlaps route 10\.107\.0\.0\/16 dev other/)
        return true
      })
      assert.equal(kernelLink('ngrt2'), undefined, 'nothing was created')
      const checks = await refused.iface.diagnose()
      assert.equal(checks.find((c) => c.id === 'linux-netlink.subnet')?.status, 'fail')

      ip('addr', 'add', '10.108.5.5/24', 'dev', 'other')
      await assert.rejects(open('ngrt2', { subnet: '10.108.5.0/28' }).info, /address 10\.108\.5\.5\/24 on other/)

      const forced = open('ngrt2', { force: true })
      assert.equal((await forced.info).adopted, false)
      const warned = (await forced.iface.diagnose()).find((c) => c.id === 'linux-netlink.subnet')
      assert.equal(warned?.status, 'warn', 'force set: doctor warns as the start does, no failure')
      assert.match(warned?.summary ?? '', /net\.force is set, so the start goes on past it$/)
      await forced.iface.close()
    } finally {
      ip('link', 'del', 'other')
    }
  })

  test("diagnose before a start fails on a link of the name that is not ngrokd's (a user's bridge, lo), as the start would; ngrokd's own passes", async () => {
    const check = async (name: string) =>
      (await driver.diagnose!({ logger: silentLogger, stateDir: '/nonexistent', platform: 'linux' }, { name, subnet: '10.250.0.0/24' })).find((c) => c.id === 'linux-netlink.interface')!
    ip('link', 'add', 'ngrt9', 'type', 'bridge')
    try {
      const foreign = await check('ngrt9')
      assert.deepEqual([foreign.status, foreign.code], ['fail', 'NGROKD_ERR_INTERFACE_FOREIGN'], foreign.summary)
      assert.match(foreign.summary, /^interface ngrt9 already exists \(a bridge link\) and is not ngrokd's/)
      assert.match(foreign.hint ?? '', /set net\.interface_name to a name no other interface uses/)
      await assert.rejects(open('ngrt9').info, (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_INTERFACE_FOREIGN'), 'as the start says')
    } finally {
      ip('link', 'del', 'ngrt9')
    }
    assert.equal((await check('lo')).status, 'fail')
    assert.equal((await check('ngrt9')).status, 'ok', 'none of the name: a start makes it')
    const kept = open('ngrt9')
    await kept.info
    await kept.iface.close({ removeInterface: false })
    const ours = await check('ngrt9')
    assert.equal(ours.status, 'ok', ours.summary)
    assert.match(ours.summary, /ngrokd's (dummy|bridge) link: a start adopts it/)
    ip('link', 'del', 'ngrt9')
  })

  test('close deletes the link; close twice is fine; removeInterface: false keeps it', async () => {
    const { iface, info } = open('ngrt3')
    await info
    await iface.close()
    assert.equal(kernelLink('ngrt3'), undefined)
    await iface.close()
    const kept = open('ngrt3')
    await kept.info
    await kept.iface.close({ removeInterface: false })
    assert.ok(kernelLink('ngrt3'))
    await kept.iface.close()
    ip('link', 'del', 'ngrt3')
  })

  test('without CAP_NET_ADMIN open fails with NGROKD_ERR_PERMISSION and a hint', { skip: spawnSync('setpriv', ['--version']).status !== 0 ? 'setpriv(1) missing' : false }, () => {
    const url = new URL('./linux-netlink-interface.js', import.meta.url).href
    const script = `
      const { LinuxNetlinkInterface } = await import(${JSON.stringify(url)})
      try { await new LinuxNetlinkInterface({ name: 'ngrt4', subnet: '10.107.0.0/16' }).open({ name: 'ngrt4', subnet: '10.107.0.0/16' }); console.log('opened') }
      catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message, hint: e.hint })) }`
    const execArgv = process.execArgv.filter((a) => !a.startsWith('--test'))
    const out = execFileSync('setpriv', ['--bounding-set=-net_admin', '--inh-caps=-net_admin', process.execPath, ...execArgv, '--input-type=module', '-e', script], { encoding: 'utf8' })
    const e = JSON.parse(out) as { code: string; message: string; hint: string }
    assert.equal(e.code, 'NGROKD_ERR_PERMISSION')
    assert.match(e.message, /RTM_NEWLINK ngrt4 type dummy not permitted: EPERM/)
    assert.match(e.hint, /CAP_NET_ADMIN/)
    assert.equal(kernelLink('ngrt4'), undefined)
  })

  test('a receive-buffer overrun (ENOBUFS) on a real socket is recovered by resending smaller chunks', async () => {
    const { NetlinkSocket } = await import('./ffi/libc.js')
    const { iface, info } = open('ngrt5')
    await info
    const real = NetlinkSocket.open({ receiveBufferBytes: 32 * 1024 }) // the kernel doubles it: ~75 ACKs fit
    // Claim a big buffer so the batch sends ~1,600 requests at once and overruns.
    const liar: NetlinkTransport = {
      receiveBufferSize: 8 << 20,
      send: (b) => real.send(b),
      recv: (b) => real.recv(b),
      waitReadable: (ms) => real.waitReadable(ms),
      close: () => real.close(),
    }
    const socket = new RouteSocket(liar)
    const index = iface.ifindex!
    const { newAddrRequest } = await import('./netlink/messages.js')
    const many = Array.from({ length: 2000 }, (_, i) => `10.107.${20 + (i >> 8)}.${i & 255}`)
    const replies = await socket.batch(many.map((address) => (seq: number) => newAddrRequest({ seq, index, address })), { what: 'overrun test' })
    assert.ok(socket.stats.overruns >= 1, 'the kernel dropped ACKs at least once')
    assert.ok(replies.every((r) => r.errno === 0 || r.errno === 17))
    assert.equal(kernelAddresses('ngrt5').length, 2000)
    await socket.close()
    await iface.close()
  })

  for (const wait of ['poll', 'timer'] as const) {
    test(`waitReadable (${wait}) does not block the event loop: it times out empty, and wakes when a reply is queued`, async () => {
      const { NetlinkSocket } = await import('./ffi/libc.js')
      const socket = NetlinkSocket.open({ wait })
      let ticks = 0
      const timer = setInterval(() => ticks++, 5)
      const empty = await socket.waitReadable(100)
      clearInterval(timer)
      assert.equal(empty, false)
      assert.ok(ticks >= 5, `the event loop ran ${ticks} timer ticks while waiting`)
      await socket.send(getAddrDumpRequest({ seq: 1 }))
      assert.equal(await socket.waitReadable(1000), true)
      assert.ok(socket.recv(Buffer.alloc(65536)) > 0)
      socket.close()
      socket.close()
    })
  }

  test('diagnose: socket and privilege ok, link kind checked in a nested throwaway namespace', async () => {
    const checks: Check[] = await driver.diagnose!({ logger: silentLogger, stateDir: '/nonexistent', platform: 'linux' }, { subnet: '10.250.0.0/24' })
    const byId = new Map(checks.map((c) => [c.id, c]))
    assert.equal(byId.get('linux-netlink.socket')?.status, 'ok')
    assert.equal(byId.get('linux-netlink.privilege')?.status, 'ok')
    assert.equal(byId.get('linux-netlink.subnet')?.status, 'ok', byId.get('linux-netlink.subnet')?.summary)
    const kind = byId.get('linux-netlink.link-kind')!
    const probe = spawnSync('ip', ['link', 'add', 'ngrtprobe', 'type', 'dummy'])
    if (probe.status === 0) {
      ip('link', 'del', 'ngrtprobe')
      assert.equal(kind.status, 'ok', kind.summary)
    } else {
      assert.equal(kind.status, 'warn', kind.summary)
      assert.match(kind.summary, /no dummy link type/)
    }
    assert.equal(kernelLink('ngrkprobe0'), undefined, 'the dry run left nothing in this namespace')
  })
}

