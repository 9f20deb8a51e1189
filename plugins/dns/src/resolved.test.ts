// systemd-resolved registration against a stand-in on a bus of the test's own (dbus-daemon):
// every call and argument checked; the hosts-file fallback when resolved is not on the bus.
import { after, before, beforeEach, afterEach, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import net from 'node:net'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Resolver } from 'node:dns/promises'
import { HostsFileNameResolver } from '@ngrokd/core'
import { TestFramework, testPlugin } from '@ngrokd/core/testing'
import { silentLogger, type Logger } from '@ngrokd/core/plugin'
import plugin, { DnsNameResolver, DnsResponder, SystemdResolved } from './index.js'
import { FakeResolved, PrivateBus } from './testing/fake-resolved.js'

TestFramework.describe = describe
TestFramework.it = it
TestFramework.beforeAll = before
TestFramework.afterAll = after

const hasDbusDaemon = (() => {
  try {
    execFileSync('dbus-daemon', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
})()
const isRoot = process.getuid?.() === 0
const skip = !hasDbusDaemon ? 'dbus-daemon is not installed (Debian: dbus-daemon)' : !isRoot ? 'the responder needs port 53 (root) for resolved to use it' : false
/** A loopback address of its own, port 53: what resolved would be told to ask. */
const HOST = '127.53.107.1'
const IFINDEX = 7
const AF_INET = 2

/** A logger keeping the warnings and errors (what the plugin says about the fallback). */
function capture(): { logger: Logger; warnings: string[] } {
  const warnings: string[] = []
  const text = (a: unknown, b?: unknown) => String(typeof a === 'string' ? a : b)
  const logger: Logger = {
    trace: () => undefined,
    debug: () => undefined,
    info: () => undefined,
    warn: (a: unknown, b?: unknown) => void warnings.push(text(a, b)),
    error: (a: unknown, b?: unknown) => void warnings.push(text(a, b)),
    fatal: (a: unknown, b?: unknown) => void warnings.push(text(a, b)),
    child: () => logger,
  } as unknown as Logger
  return { logger, warnings }
}

/** Resolves once `done()` is true; throws after 10 s (far above what it waits for). */
async function until(done: () => boolean, what: string): Promise<void> {
  for (const start = Date.now(); !done(); await new Promise((resolve) => setTimeout(resolve, 10))) {
    if (Date.now() - start > 10_000) throw new Error(`${what}: not within 10 s`)
  }
}

describe('systemd-resolved registration (names.resolver: dns)', { skip }, () => {
  let bus: PrivateBus
  let fake: FakeResolved | undefined
  let dir: string
  let responder: DnsResponder
  let hostsPath: string
  const hostsFile = () => new HostsFileNameResolver({ path: hostsPath, stateDir: join(dir, 'state'), logger: silentLogger })

  /** A resolver with api.prod published, attached to ngrokd0 (ifindex 7) on `busAddress`. */
  async function attached(busAddress = bus.address): Promise<{ names: DnsNameResolver; warnings: string[] }> {
    const { logger, warnings } = capture()
    const names = new DnsNameResolver(responder, { logger })
    await names.open()
    await names.publish({ records: [{ hostname: 'api.prod', address: '10.107.0.2' }] })
    await names.routed()
    await names.attach({ link: { name: 'ngrokd0', index: IFINDEX }, hostsFile, platform: 'linux', busAddress })
    return { names, warnings }
  }

  before(async () => {
    bus = await PrivateBus.start()
  })
  after(async () => {
    await bus?.stop()
  })
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ngrokd-resolved-'))
    hostsPath = join(dir, 'hosts')
    responder = new DnsResponder()
    await responder.start([{ host: HOST, port: 53 }])
  })
  afterEach(async () => {
    fake?.stop()
    fake = undefined
    await responder.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('registers the responder as the link DNS server with ~suffix routing domains, updates them as suffixes change, and RevertLink at detach', async () => {
    fake = await FakeResolved.start(bus.address)
    const { names, warnings } = await attached()

    assert.deepEqual(
      fake.calls.map((c) => [c.member, c.signature]),
      [
        ['SetLinkDNS', 'ia(iay)'],
        ['SetLinkDefaultRoute', 'ib'],
        ['SetLinkDNSSEC', 'is'],
        ['SetLinkDomains', 'ia(sb)'],
      ],
    )
    assert.deepEqual(fake.bodies('SetLinkDNS'), [[IFINDEX, [[AF_INET, Buffer.from([127, 53, 107, 1])]]]])
    assert.deepEqual(fake.bodies('SetLinkDefaultRoute'), [[IFINDEX, false]])
    assert.deepEqual(fake.bodies('SetLinkDNSSEC'), [[IFINDEX, 'no']])
    assert.deepEqual(fake.bodies('SetLinkDomains'), [[IFINDEX, [['api.prod', true]]]])
    assert.deepEqual(fake.problems, [])
    assert.deepEqual(warnings, [])
    await assert.rejects(readFile(hostsPath, 'utf8'), { code: 'ENOENT' }, 'the hosts file is not written while resolved is used')

    // a new suffix: the domains follow (prod is a public top-level domain: its names go one by one); the same again: no call
    await names.publish({ records: [{ hostname: 'api.prod', address: '10.107.0.2' }, { hostname: 'web.demo', address: '10.107.0.3' }] })
    await names.routed()
    await names.publish({ records: [{ hostname: 'db.prod', address: '10.107.0.4' }, { hostname: 'web.demo', address: '10.107.0.3' }] })
    await names.routed()
    assert.deepEqual(fake.bodies('SetLinkDomains'), [
      [IFINDEX, [['api.prod', true]]],
      [IFINDEX, [['api.prod', true], ['demo', true]]],
      [IFINDEX, [['db.prod', true], ['demo', true]]],
    ])
    await names.publish({ records: [{ hostname: 'db.prod', address: '10.107.0.5' }, { hostname: 'web.demo', address: '10.107.0.3' }] })
    await names.routed()
    assert.equal(fake.bodies('SetLinkDomains').length, 3, 'the same domains again (an address moved): no call')
    await names.publish({ records: [{ hostname: 'web.demo', address: '10.107.0.3' }] })
    await names.routed()
    assert.deepEqual(fake.bodies('SetLinkDomains').at(-1), [IFINDEX, [['demo', true]]])
    assert.deepEqual(fake.links.get(IFINDEX)?.domains, [['demo', true]])

    const checks = await names.diagnose()
    const registered = checks.find((c) => c.id === 'dns.resolved')
    assert.equal(registered?.status, 'ok', JSON.stringify(checks))
    assert.match(registered!.summary, /ngrokd0 \(ifindex 7\).*~demo.*127\.53\.107\.1/)

    // what resolved is told is what the responder answers
    const r = new Resolver({ timeout: 2000, tries: 1 })
    r.setServers([HOST])
    assert.deepEqual(await r.resolve4('web.demo'), ['10.107.0.3'])

    await names.detach()
    assert.deepEqual(fake.calls.at(-1), { member: 'RevertLink', signature: 'i', body: [IFINDEX] })
    assert.equal(fake.links.has(IFINDEX), false, 'resolved holds nothing for the link after RevertLink')
    assert.deepEqual(fake.problems, [])
    await names.close()
  })

  it("ngrokd cleanup with the interface kept (a daemon killed): the plugin's cleanup() reverts the link in resolved; with none to ask it removes nothing", async () => {
    fake = await FakeResolved.start(bus.address)
    const { names } = await attached()
    assert.ok(fake.links.has(IFINDEX))
    // the daemon is killed: nothing detaches; cleanup keeps the interface (cleanup.remove_interface_on_stop: false)
    const env = process.env.DBUS_SYSTEM_BUS_ADDRESS
    process.env.DBUS_SYSTEM_BUS_ADDRESS = bus.address
    try {
      const cleanup = (index?: number, platform: NodeJS.Platform = 'linux') =>
        plugin.cleanup!({ name: 'dns', options: { ttl: 5, suffixes: [] }, logger: silentLogger, platform, stateDir: dir, ...(index === undefined ? {} : { interface: { name: 'ngrokd0', index } }) })
      assert.deepEqual(await cleanup(IFINDEX), ["systemd-resolved's DNS settings of ngrokd0"])
      assert.deepEqual(fake.calls.at(-1), { member: 'RevertLink', signature: 'i', body: [IFINDEX] })
      assert.equal(fake.links.has(IFINDEX), false, 'resolved holds nothing for the link')
      assert.deepEqual(await cleanup(IFINDEX), [], 'nothing held (reverted already, as a clean stop does): nothing said removed')
      assert.notEqual(fake.calls.at(-1)?.member, 'RevertLink')
      const asked = fake.calls.length
      assert.deepEqual(await cleanup(undefined), [], 'the interface removed: resolved forgot the link with it; nothing asked')
      assert.deepEqual(await cleanup(IFINDEX, 'darwin'), [], 'not Linux: nothing asked')
      assert.equal(fake.calls.length, asked)
      fake.stop()
      fake = undefined
      assert.deepEqual(await cleanup(IFINDEX), [], 'no resolved on the bus: nothing to undo')
    } finally {
      if (env === undefined) delete process.env.DBUS_SYSTEM_BUS_ADDRESS
      else process.env.DBUS_SYSTEM_BUS_ADDRESS = env
      await names.close()
    }
  })

  it('after the system bus restarts, the next update connects again and registers the link anew on the new bus', async () => {
    fake = await FakeResolved.start(bus.address)
    const { names, warnings } = await attached()
    fake.stop()
    await bus.restart()
    fake = await FakeResolved.start(bus.address)
    await names.publish({ records: [{ hostname: 'api.prod', address: '10.107.0.2' }, { hostname: 'web.demo', address: '10.107.0.3' }] })
    await names.routed()
    assert.deepEqual(
      fake.calls.map((c) => [c.member, c.body]),
      [
        ['SetLinkDNS', [IFINDEX, [[AF_INET, Buffer.from([127, 53, 107, 1])]]]],
        ['SetLinkDefaultRoute', [IFINDEX, false]],
        ['SetLinkDNSSEC', [IFINDEX, 'no']],
        ['SetLinkDomains', [IFINDEX, [['api.prod', true], ['demo', true]]]],
      ],
    )
    await names.detach()
    assert.equal(fake.calls.at(-1)?.member, 'RevertLink')
    assert.deepEqual(fake.problems, [])
    assert.deepEqual(warnings, [])
    await names.close()
  })

  it('relink() to the interface made again (a new ifindex) registers the new link with its domains; detach reverts that one', async () => {
    fake = await FakeResolved.start(bus.address)
    const { names, warnings } = await attached()
    await names.relink({ name: 'ngrokd0', index: IFINDEX })
    await names.routed()
    assert.equal(fake.calls.length, 4, 'the same index: no call')
    fake.links.delete(IFINDEX) // `ip link del ngrokd0`: resolved forgets the link
    await names.relink({ name: 'ngrokd0', index: 23 })
    await names.routed()
    assert.deepEqual(
      fake.calls.slice(4).map((c) => [c.member, c.body]),
      [
        ['SetLinkDNS', [23, [[AF_INET, Buffer.from([127, 53, 107, 1])]]]],
        ['SetLinkDefaultRoute', [23, false]],
        ['SetLinkDNSSEC', [23, 'no']],
        ['SetLinkDomains', [23, [['api.prod', true]]]],
      ],
    )
    const check = (await names.diagnose()).find((c) => c.id === 'dns.resolved')
    assert.equal(check?.status, 'ok', JSON.stringify(check))
    assert.match(check!.summary, /ngrokd0 \(ifindex 23\)/)
    await names.detach()
    assert.deepEqual(fake.calls.at(-1), { member: 'RevertLink', signature: 'i', body: [23] })
    assert.deepEqual(fake.problems, [])
    assert.deepEqual(warnings, [])
    await names.close()
  })

  it('a link resolved no longer knows (deleted, being made again) is no refusal: the domains go to the new link at relink, never to the hosts file', async () => {
    fake = await FakeResolved.start(bus.address)
    const { names, warnings } = await attached()
    fake.gone.add(IFINDEX) // `ip link del ngrokd0`: the next reconcile publishes before the interface is made again
    await names.publish({ records: [{ hostname: 'api.prod', address: '10.107.0.2' }, { hostname: 'web.demo', address: '10.107.0.3' }] })
    await names.routed()
    assert.equal(warnings.filter((w) => /not used/.test(w)).length, 0, warnings.join('\n'))
    assert.doesNotMatch(await readFile(hostsPath, 'utf8').catch(() => ''), /web\.demo/, 'no fallback to the hosts file')
    await names.relink({ name: 'ngrokd0', index: 23 })
    await names.routed()
    await names.publish({ records: [{ hostname: 'api.prod', address: '10.107.0.2' }, { hostname: 'web.demo', address: '10.107.0.3' }] })
    await names.routed()
    assert.deepEqual(fake.bodies('SetLinkDomains').at(-1), [23, [['api.prod', true], ['demo', true]]])
    await names.detach()
    await names.close()
  })

  it('a link resolved forgot (resolvectl revert) is registered anew with the next domain update; a poll that changes nothing asks nothing', async () => {
    fake = await FakeResolved.start(bus.address)
    const { names, warnings } = await attached()
    await names.publish({ records: [{ hostname: 'api.prod', address: '10.107.0.2' }, { hostname: 'web.demo', address: '10.107.0.3' }] })
    await names.routed()
    assert.deepEqual(fake.calls.slice(4).map((c) => c.member), ['GetLink', 'SetLinkDomains'], 'a domain update reads the link first')
    fake.calls.length = 0
    await names.publish({ records: [{ hostname: 'api.prod', address: '10.107.0.2' }, { hostname: 'web.demo', address: '10.107.0.3' }] })
    await names.routed()
    assert.equal(fake.calls.length, 0, 'nothing changed: no call, not even a read')

    fake.links.delete(IFINDEX) // resolvectl revert ngrokd0
    await names.publish({ records: [{ hostname: 'api.prod', address: '10.107.0.2' }, { hostname: 'x.acme', address: '10.107.0.4' }] })
    await names.routed()
    assert.deepEqual(
      fake.calls.map((c) => [c.member, c.body]),
      [
        ['GetLink', [IFINDEX]],
        ['SetLinkDNS', [IFINDEX, [[AF_INET, Buffer.from([127, 53, 107, 1])]]]],
        ['SetLinkDefaultRoute', [IFINDEX, false]],
        ['SetLinkDNSSEC', [IFINDEX, 'no']],
        ['SetLinkDomains', [IFINDEX, [['acme', true], ['api.prod', true]]]],
      ],
    )
    assert.deepEqual(fake.links.get(IFINDEX), { dns: [[AF_INET, Buffer.from([127, 53, 107, 1])]], domains: [['acme', true], ['api.prod', true]], defaultRoute: false, dnssec: 'no' })
    assert.equal((await names.diagnose()).find((c) => c.id === 'dns.resolved')?.status, 'ok')
    assert.deepEqual(fake.problems, [])
    assert.deepEqual(warnings, [])
    await names.detach()
    await names.close()
  })

  it('doctor warns when resolved no longer holds what was registered', async () => {
    fake = await FakeResolved.start(bus.address)
    const { names } = await attached()
    fake.links.delete(IFINDEX) // as if someone ran resolvectl revert ngrokd0
    const check = (await names.diagnose()).find((c) => c.id === 'dns.resolved')
    assert.equal(check?.status, 'warn')
    assert.match(check!.summary, /lacks DNS server 127\.53\.107\.1 and routing domains ~api\.prod/)
    await names.detach()
    await names.close()
  })

  it('a resolved that does not answer holds neither publish() nor the stop: the responder answers at once, doctor says the update waits, RevertLink is given up', async () => {
    fake = await FakeResolved.start(bus.address)
    const { names, warnings } = await attached()
    const release = fake.stall() // resolved stopped (SIGSTOP): it takes calls and answers none
    try {
      await names.publish({ records: [{ hostname: 'api.prod', address: '10.107.0.2' }, { hostname: 'web.demo', address: '10.107.0.3' }] })
      assert.deepEqual(warnings, [], 'publish() returned before the call could time out')
      const r = new Resolver({ timeout: 2000, tries: 1 })
      r.setServers([HOST])
      assert.deepEqual(await r.resolve4('web.demo'), ['10.107.0.3'], 'the new name is answered while resolved is still asked')
      await until(() => fake!.calls.length === 5, 'the update begun: resolved asked whether it holds the link')
      assert.deepEqual(fake.calls.at(-1), { member: 'GetLink', signature: 'i', body: [IFINDEX] })
      // another publish while it waits: queued behind it, not sent beside it
      await names.publish({ records: [{ hostname: 'web.demo', address: '10.107.0.3' }] })
      assert.equal(fake.calls.length, 5)

      const check = (await names.diagnose()).find((c) => c.id === 'dns.resolved')
      assert.equal(check?.status, 'warn', JSON.stringify(check))
      assert.match(check!.summary, /cannot read ngrokd0 \(ifindex 7\) from systemd-resolved: .*GetLink: no reply within 3 s.*; a call to it has waited \d+ s for its answer/)

      const asked = fake.calls.length // the update's GetLink, and doctor's
      await names.detach() // within its bound, though resolved still holds the calls
      assert.equal(fake.bodies('RevertLink').length, 0, 'RevertLink waits behind the call under way, and was given up')
      assert.equal(warnings.length, 1, warnings.join('\n'))
      assert.match(warnings[0]!, /dns: systemd-resolved did not answer within 2 s at stop; a call to it has waited \d+ s for its answer: ngrokd0 is not reverted there; resolved drops it with the interface/)
      release()
      await names.routed()
      assert.equal(fake.calls.length, asked, 'nothing is sent once the stop gave up: the update queued is dropped')
    } finally {
      release()
    }
    await names.close()
  })

  it('an update resolved cannot take (not on the bus) is said once while it repeats, shows in doctor, and goes through once resolved is back', async () => {
    fake = await FakeResolved.start(bus.address)
    const { names, warnings } = await attached()
    fake.stop() // resolved gone from the bus: each call fails, the same way
    fake = undefined
    const client = await SystemdResolved.connect(bus.address)
    while (await client.isOnBus()) await new Promise((resolve) => setTimeout(resolve, 20)) // the bus has seen it go
    client.close()
    await names.publish({ records: [{ hostname: 'api.prod', address: '10.107.0.2' }, { hostname: 'web.demo', address: '10.107.0.3' }] })
    await names.routed()
    await names.publish({ records: [{ hostname: 'api.prod', address: '10.107.0.2' }, { hostname: 'x.acme', address: '10.107.0.4' }] })
    await names.routed()
    assert.equal(warnings.length, 1, warnings.join('\n'))
    assert.match(warnings[0]!, /dns: cannot set the routing domains of ngrokd0 in systemd-resolved \(tried again at the next reconcile\): .*: org\.freedesktop\.DBus\.Error\.ServiceUnknown/)
    const check = (await names.diagnose()).find((c) => c.id === 'dns.resolved')
    assert.equal(check?.status, 'warn', JSON.stringify(check))
    assert.match(check!.summary, /the last update failed: .*: org\.freedesktop\.DBus\.Error\.ServiceUnknown/)

    fake = await FakeResolved.start(bus.address) // a resolved that holds nothing of the link: it is registered anew
    await names.publish({ records: [{ hostname: 'api.prod', address: '10.107.0.2' }, { hostname: 'x.acme', address: '10.107.0.4' }] })
    await names.routed()
    assert.deepEqual(fake.calls.map((c) => c.member), ['GetLink', 'SetLinkDNS', 'SetLinkDefaultRoute', 'SetLinkDNSSEC', 'SetLinkDomains'])
    assert.deepEqual(fake.bodies('SetLinkDomains'), [[IFINDEX, [['acme', true], ['api.prod', true]]]])
    assert.equal((await names.diagnose()).find((c) => c.id === 'dns.resolved')?.status, 'ok')
    assert.equal(warnings.length, 1)
    await names.detach()
    await names.close()
  })

  it('without org.freedesktop.resolve1 on the bus it says so once and publishes through the hosts file', async () => {
    const { names, warnings } = await attached()
    assert.equal(warnings.length, 1, warnings.join('\n'))
    assert.match(warnings[0]!, /systemd-resolved is not used: org\.freedesktop\.resolve1 is not on the system bus unix:path=.*; the names are published in the hosts file instead/)
    assert.match(await readFile(hostsPath, 'utf8'), /^10\.107\.0\.2\s+api\.prod$/m)
    // later publishes go there too, and nothing more is logged
    await names.publish({ records: [{ hostname: 'web.demo', address: '10.107.0.3' }] })
    await names.routed()
    const hosts = await readFile(hostsPath, 'utf8')
    assert.match(hosts, /^10\.107\.0\.3\s+web\.demo$/m)
    assert.doesNotMatch(hosts, /api\.prod/)
    assert.equal(warnings.length, 1)
    const check = (await names.diagnose()).find((c) => c.id === 'dns.resolved')
    assert.equal(check?.status, 'warn')
    assert.match(check!.summary, /not on the system bus/)
    await names.publish({ records: [] })
    await names.routed()
    assert.doesNotMatch(await readFile(hostsPath, 'utf8'), /web\.demo/, 'unpublishing goes through the hosts file too')
    await names.detach()
    await names.close()
  })

  it('with no system bus at all it falls back the same way', async () => {
    const { names, warnings } = await attached(`unix:path=${join(dir, 'no-bus')}`)
    assert.equal(warnings.length, 1)
    assert.match(warnings[0]!, /no system bus at unix:path=.*no-bus/)
    assert.match(await readFile(hostsPath, 'utf8'), /api\.prod/)
    await names.close()
  })

  it('a resolved that refuses one of the calls (older, without SetLinkDNSSEC) gets the link reverted, and the hosts file is used', async () => {
    fake = await FakeResolved.start(bus.address, { without: ['SetLinkDNSSEC'] })
    const { names, warnings } = await attached()
    assert.deepEqual(fake.calls.map((c) => c.member), ['SetLinkDNS', 'SetLinkDefaultRoute', 'RevertLink'])
    assert.equal(fake.links.has(IFINDEX), false)
    assert.equal(warnings.length, 1)
    assert.match(warnings[0]!, /SetLinkDNSSEC: org\.freedesktop\.DBus\.Error\.UnknownMethod/)
    assert.match(await readFile(hostsPath, 'utf8'), /api\.prod/)
    await names.close()
  })

  it('a refused SetLinkDomains (a suffix resolved takes for no DNS name) reverts the link, says why once, and the names go to the hosts file from then on', async () => {
    // the plugin's options refuse such a suffix at load; the responder itself takes what it is given
    await responder.close()
    responder = new DnsResponder({ suffixes: ['corp..staging'] })
    await responder.start([{ host: HOST, port: 53 }])
    fake = await FakeResolved.start(bus.address)
    const { names, warnings } = await attached()
    assert.deepEqual(fake.calls.map((c) => c.member), ['SetLinkDNS', 'SetLinkDefaultRoute', 'SetLinkDNSSEC', 'SetLinkDomains', 'RevertLink'])
    assert.equal(fake.links.has(IFINDEX), false, 'the calls made were taken back')
    assert.equal(warnings.length, 1, warnings.join('\n'))
    assert.match(warnings[0]!, /dns: systemd-resolved is not used: systemd-resolved refused the routing domains ~api\.prod ~corp\.\.staging of ngrokd0 \(.*SetLinkDomains: org\.freedesktop\.DBus\.Error\.InvalidArgs.*\); the link was reverted; the names are published in the hosts file instead/)
    assert.match(await readFile(hostsPath, 'utf8'), /10\.107\.0\.2\s+api\.prod/)
    // later publishes go to the hosts file, and resolved is not asked again
    await names.publish({ records: [{ hostname: 'web.demo', address: '10.107.0.3' }] })
    await names.routed()
    assert.match(await readFile(hostsPath, 'utf8'), /10\.107\.0\.3\s+web\.demo/)
    assert.equal(fake.calls.length, 5)
    const route = (await names.diagnose()).find((c) => c.id === 'dns.resolved')
    assert.equal(route?.status, 'warn')
    assert.match(route!.summary, /refused the routing domains/)
    assert.match(route!.hint ?? '', /suffixes option or an endpoint hostname/)
    await names.detach()
    assert.equal(fake.calls.length, 5, 'nothing more to revert at stop')
    assert.equal(warnings.length, 1)
    await names.close()
  })

  it('with names.resolver other than dns (its resolver not opened) the plugin registers nothing, leaves the hosts block to the daemon, and says it serves no names', async () => {
    fake = await FakeResolved.start(bus.address)
    // the daemon's own hosts-file resolver, on the same block
    const daemonNames = hostsFile()
    await daemonNames.open()
    await daemonNames.publish({ records: [{ hostname: 'api.prod', address: '10.107.0.2' }] })
    const { logger, warnings } = capture()
    const hooks: { onStart: Array<() => unknown>; onStop: Array<() => unknown> } = { onStart: [], onStop: [] }
    const checks: Array<() => Promise<Array<{ id: string; status: string; summary: string; hint?: string }>>> = []
    const ctx = {
      name: 'dns',
      options: { listen: ['127.53.107.2:53'], ttl: 5, suffixes: [] },
      logger,
      platform: 'linux',
      stateDir: dir,
      interface: async () => ({ name: 'ngrokd0', index: IFINDEX, address: '127.53.107.2' }),
      hostsFileResolver: hostsFile,
      provideNameResolver: () => {},
      addDoctorChecks: (c: (typeof checks)[number]) => void checks.push(c),
      addRoute: () => {},
      hooks: { onStart: (fn: () => unknown) => void hooks.onStart.push(fn), afterReconcile: () => {}, onStop: (fn: () => unknown) => void hooks.onStop.push(fn) },
    }
    const busBefore = process.env.DBUS_SYSTEM_BUS_ADDRESS
    process.env.DBUS_SYSTEM_BUS_ADDRESS = bus.address
    try {
      await plugin.register(ctx as never)
      for (const start of hooks.onStart) await start()
      assert.deepEqual(fake.calls, [], 'no link registered with resolved: nothing is published through the plugin')
      assert.match(await readFile(hostsPath, 'utf8'), /10\.107\.0\.2\s+api\.prod/, "the daemon's names stay in the hosts file")
      assert.equal(warnings.length, 1, warnings.join('\n'))
      assert.match(warnings[0]!, /dns: the daemon does not publish through the dns plugin \(names\.resolver is not dns\): the responder on 127\.53\.107\.2:53 answers no name \(REFUSED\).*set names\.resolver: dns/)
      assert.doesNotMatch(warnings[0]!, /still answers/)
      const doctor = (await Promise.all(checks.map((c) => c()))).flat()
      assert.deepEqual(doctor.map((c) => [c.id, c.status]), [['dns.names', 'warn']], JSON.stringify(doctor))
      assert.match(doctor[0]!.hint ?? '', /set names\.resolver: dns/)
      for (const stop of hooks.onStop) await stop()
      assert.deepEqual(fake.calls, [])
    } finally {
      if (busBefore === undefined) delete process.env.DBUS_SYSTEM_BUS_ADDRESS
      else process.env.DBUS_SYSTEM_BUS_ADDRESS = busBefore
      await daemonNames.close()
    }
  })

  it('a socket that accepts but never speaks D-Bus fails the connection instead of holding the start', async () => {
    const accepted: net.Socket[] = []
    const silent = net.createServer((socket) => void accepted.push(socket))
    const path = join(dir, 'silent.sock')
    await new Promise<void>((resolve) => silent.listen(path, resolve))
    try {
      await assert.rejects(SystemdResolved.connect(`unix:path=${path}`, { timeoutMs: 200 }), /no system bus at unix:path=.*silent\.sock: no D-Bus handshake within 200 ms/)
    } finally {
      for (const socket of accepted) socket.destroy()
      silent.close()
    }
  })

  it('a resolved run removes the names an earlier fallback run left in the hosts file', async () => {
    const earlier = hostsFile()
    await earlier.open()
    await earlier.publish({ records: [{ hostname: 'api.prod', address: '10.107.0.2' }] })
    await earlier.close()
    fake = await FakeResolved.start(bus.address)
    const names = new DnsNameResolver(responder)
    await names.open()
    await names.attach({ link: { name: 'ngrokd0', index: IFINDEX }, hostsFile, platform: 'linux', busAddress: bus.address })
    assert.doesNotMatch(await readFile(hostsPath, 'utf8'), /api\.prod/)
    await names.detach()
    await names.close()
  })

  it('the stand-in refuses what resolved refuses: a wrong signature, 16 bytes for AF_INET, a domain written with ~', async () => {
    fake = await FakeResolved.start(bus.address)
    const client = await SystemdResolved.connect(bus.address)
    try {
      await assert.rejects(client.setLinkDns(IFINDEX, [[AF_INET, Buffer.alloc(16)]]), /InvalidArgs/)
      await assert.rejects(client.setLinkDomains(IFINDEX, [['~prod', true]]), /InvalidArgs/)
      await assert.rejects(client.setLinkDns(0, []), /InvalidArgs/)
      assert.equal(fake.problems.length, 3, fake.problems.join('\n'))
    } finally {
      client.close()
    }
  })
})

// Through the plugin host: the kit's interface has an index, the bus comes from DBUS_SYSTEM_BUS_ADDRESS.
if (!skip) {
  const bus = await PrivateBus.start()
  process.env.DBUS_SYSTEM_BUS_ADDRESS = bus.address
  after(() => bus.stop())
  const info = { name: 'ngrokd0', index: IFINDEX, address: HOST }
  testPlugin({
    title: 'dns plugin conformance, registered with (a stand-in for) systemd-resolved',
    plugin,
    options: { listen: [`${HOST}:53`] },
    interfaceInfo: info,
    additionalTests({ withHost }) {
      it('after the daemon made its interface again (ctx.interface() has a new index), the next afterReconcile registers that link', async () => {
        const fake = await FakeResolved.start(bus.address)
        try {
          await withHost(async (host) => {
            const names = (await host.createNameResolver('dns')) as DnsNameResolver
            await names.open()
            await names.publish({ records: [{ hostname: 'api.prod', address: '10.107.0.2' }] })
            await host.start()
            await host.afterReconcile([])
            await names.routed()
            assert.equal(fake.bodies('SetLinkDNS').length, 1, 'the same interface: registered once')
            info.index = 23 // `ip link del ngrokd0`, and the daemon's repair made it again
            await host.afterReconcile([])
            await names.routed()
            assert.deepEqual(fake.bodies('SetLinkDNS').at(-1), [23, [[AF_INET, Buffer.from([127, 53, 107, 1])]]])
            assert.deepEqual(fake.bodies('SetLinkDomains').at(-1), [23, [['api.prod', true]]])
            assert.equal(host.status()[0]?.state, 'running', host.status()[0]?.error?.message)
            await host.stop()
            assert.deepEqual(fake.calls.at(-1), { member: 'RevertLink', signature: 'i', body: [23] })
            assert.deepEqual(fake.problems, [])
            await names.close()
          })
        } finally {
          info.index = IFINDEX
          fake.stop()
        }
      })
      it('start registers the link from ctx.interface() with resolved, stop reverts it', async () => {
        const fake = await FakeResolved.start(bus.address)
        try {
          await withHost(async (host) => {
            const names = (await host.createNameResolver('dns'))!
            await names.open()
            await names.publish({ records: [{ hostname: 'api.prod', address: '10.107.0.2' }] })
            await host.start()
            assert.deepEqual(fake.bodies('SetLinkDNS'), [[IFINDEX, [[AF_INET, Buffer.from([127, 53, 107, 1])]]]])
            assert.deepEqual(fake.bodies('SetLinkDomains'), [[IFINDEX, [['api.prod', true]]]])
            assert.equal((await host.doctorChecks()).find((c) => c.id.endsWith('dns.resolved'))?.status, 'ok')
            await host.stop()
            assert.deepEqual(fake.calls.at(-1)?.member, 'RevertLink')
            assert.deepEqual(fake.problems, [])
            await names.close()
          })
        } finally {
          fake.stop()
        }
      })
    },
  })
}
