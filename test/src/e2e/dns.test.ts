// names.resolver: dns — with plugins: [dns] the daemon answers DNS for its endpoint hostnames on the
// interface's own address, port 53, registers that with systemd-resolved (a stand-in on a bus of the
// test's own, through DBUS_SYSTEM_BUS_ADDRESS) and leaves the hosts file alone; without resolved on the
// bus it says so and publishes through the hosts file.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { Resolver } from 'node:dns/promises'
import { promisify } from 'node:util'
import { NGROKD_BIN } from '@ngrokd/core'
import { CloudSimulator } from '@ngrokd/plugin-simulator'
import { FakeResolved, PrivateBus } from '@ngrokd/plugin-dns/testing'
import { netnsSkip } from '../helpers/netns.js'
import { netDriverCases } from '../helpers/net-drivers.js'
import { E2eDaemon } from '../helpers/e2e-daemon.js'
import { HOSTS_FILE } from '../helpers/hosts-file.js'
import { httpRequest } from '../helpers/clients.js'
import { deleteLink } from '../helpers/ip-link.js'
import { waitUntil } from '../helpers/wait-until.js'
import { ngrokdCli } from '../helpers/ngrokd-cli.js'

const run = promisify(execFile)
const hasDig = await run('dig', ['-v']).then(() => true, () => false)
const hasDbusDaemon = await run('dbus-daemon', ['--version']).then(() => true, () => false)
const skip = netnsSkip || (!hasDbusDaemon && 'dbus-daemon is not installed (Debian: dbus-daemon)')
/** linux-netlink: the interface is a kernel link, and its own address is the subnet's first host. */
const net = netDriverCases('dns')[1]!
const INTERFACE_ADDRESS = '10.107.0.1'
const AF_INET = 2
const INTERFACE_ADDRESS_BYTES = Buffer.from([10, 107, 0, 1])

/** The kernel's index of the link, as `ip` reports it (what resolved keys links by). */
function ifindexOf(name: string): number {
  return (JSON.parse(execFileSync('ip', ['-j', 'link', 'show', 'dev', name], { encoding: 'utf8' })) as Array<{ ifindex: number }>)[0]!.ifindex
}

/** `ngrokd doctor --json` against the daemon's config (exit 1 on a failed check still prints the report). */
async function doctorChecks(daemon: E2eDaemon): Promise<Array<{ id: string; status: string; summary: string }>> {
  const out = await run(process.execPath, [NGROKD_BIN, 'doctor', '--json', '--config', daemon.configFile], { env: E2eDaemon.childEnv() }).then(
    (x) => x.stdout,
    (e: { stdout: string }) => e.stdout,
  )
  return (JSON.parse(out) as { checks: Array<{ id: string; status: string; summary: string }> }).checks
}

describe('names by DNS (plugins: [dns], names.resolver: dns)', { skip }, () => {
  let sim: CloudSimulator
  let daemon: E2eDaemon
  let bus: PrivateBus
  let resolved: FakeResolved
  let ifindex = 0
  let hostsBefore = ''
  let resolver: Resolver

  before(async () => {
    hostsBefore = readFileSync(HOSTS_FILE, 'utf8')
    bus = await PrivateBus.start()
    resolved = await FakeResolved.start(bus.address)
    process.env.DBUS_SYSTEM_BUS_ADDRESS = bus.address // the daemon's environment (E2eDaemon.childEnv)
    sim = await CloudSimulator.start()
    sim.addEndpoint({ url: 'http://api.dnse2e' })
    sim.addEndpoint({ url: 'tcp://db.dnse2e:5432' })
    daemon = E2eDaemon.start({ name: 'dns', sim, net, extraConfig: { plugins: ['dns'], names: { resolver: 'dns' } } })
    await daemon.waitReady((s) => s.services?.serving === 2)
    ifindex = ifindexOf(net.interfaceName!)
    resolver = new Resolver({ timeout: 3000, tries: 2 })
    resolver.setServers([INTERFACE_ADDRESS])
  })

  after(async () => {
    await daemon?.dispose()
    await sim?.stop()
    delete process.env.DBUS_SYSTEM_BUS_ADDRESS
    try {
      assert.equal(readFileSync(HOSTS_FILE, 'utf8'), hostsBefore, 'the hosts file is untouched after the stop')
      assert.deepEqual(resolved?.calls.at(-1), { member: 'RevertLink', signature: 'i', body: [ifindex] }, 'the stop reverts the link in resolved')
      assert.equal(resolved.links.size, 0)
      assert.deepEqual(resolved.problems, [])
    } finally {
      resolved?.stop()
      await bus?.stop()
    }
  })

  test('the responder is registered with systemd-resolved as the DNS server of the interface, with ~suffix routing domains', async () => {
    assert.ok(ifindex > 0)
    assert.deepEqual(resolved.bodies('SetLinkDNS'), [[ifindex, [[AF_INET, INTERFACE_ADDRESS_BYTES]]]])
    assert.deepEqual(resolved.bodies('SetLinkDefaultRoute'), [[ifindex, false]])
    // the domains go to resolved in the background, and the line says resolved took them: neither waits for `serving`
    await waitUntil(() => resolved.bodies('SetLinkDomains').length > 0, { what: 'the routing domains sent to resolved' })
    assert.deepEqual(resolved.bodies('SetLinkDomains').at(-1), [ifindex, [['dnse2e', true]]])
    assert.deepEqual(resolved.problems, [])
    const said = () => daemon.logRecords().map((r) => String(r.msg)).some((m) => /systemd-resolved sends names under ~dnse2e to 10\.107\.0\.1 on ngkdns0/.test(m))
    await waitUntil(said, { what: 'the line saying resolved took the domains' })
    const log = daemon.logRecords().map((r) => String(r.msg))
    assert.ok(!log.some((m) => /systemd-resolved is not used/.test(m)))
  })

  test('the responder on the interface address answers each endpoint hostname with its IP; the hosts file is untouched', async () => {
    const services = await daemon.services()
    const addressOf = (url: string) => services.find((s) => s.url === url)?.address as string
    assert.match(addressOf('http://api.dnse2e'), /^10\.107\./)
    assert.deepEqual(await resolver.resolve4('api.dnse2e'), [addressOf('http://api.dnse2e')])
    assert.deepEqual(await resolver.resolve4('db.dnse2e'), [addressOf('tcp://db.dnse2e:5432')])
    await assert.rejects(resolver.resolve6('api.dnse2e'), { code: 'ENODATA' })
    await assert.rejects(resolver.resolve4('nope.dnse2e'), { code: 'ENOTFOUND' })
    await assert.rejects(resolver.resolve4('example.com'), { code: 'EREFUSED' })
    assert.equal(readFileSync(HOSTS_FILE, 'utf8'), hostsBefore, 'no hosts block while the daemon serves by DNS')
    // the answered address is the one the daemon forwards on
    const [ip] = await resolver.resolve4('api.dnse2e')
    assert.equal((await httpRequest(`http://${ip}/`, { headers: { host: 'api.dnse2e' } })).status, 200)
  })

  test('a new endpoint is answered after the next reconcile, a removed one NXDOMAIN', async () => {
    const web = sim.addEndpoint({ url: 'http://web.dnse2e' })
    await daemon.waitReady((s) => s.services?.serving === 3)
    const services = await daemon.services()
    assert.deepEqual(await resolver.resolve4('web.dnse2e'), [services.find((s) => s.url === 'http://web.dnse2e')?.address])
    assert.ok(sim.removeEndpoint(web.id))
    await daemon.waitReady((s) => s.services?.serving === 2)
    await assert.rejects(resolver.resolve4('web.dnse2e'), { code: 'ENOTFOUND' })
  })

  test('an endpoint under a new suffix adds its routing domain in resolved; its removal takes it away', async () => {
    const before = resolved.bodies('SetLinkDomains').length
    const other = sim.addEndpoint({ url: 'http://web.dnsalt' })
    await daemon.waitReady((s) => s.services?.serving === 3)
    // resolved is told in the background (a reconcile never waits for it): serving says nothing of it
    const sent = (n: number) => waitUntil(() => resolved.bodies('SetLinkDomains').length >= before + n && resolved.bodies('SetLinkDomains').slice(before), { what: `routing domains update ${n} in resolved` })
    assert.deepEqual(await sent(1), [[ifindex, [['dnsalt', true], ['dnse2e', true]]]])
    assert.deepEqual(await resolver.resolve4('web.dnsalt'), [(await daemon.services()).find((s) => s.url === 'http://web.dnsalt')?.address])
    assert.ok(sim.removeEndpoint(other.id))
    await daemon.waitReady((s) => s.services?.serving === 2)
    assert.deepEqual(await sent(2), [
      [ifindex, [['dnsalt', true], ['dnse2e', true]]],
      [ifindex, [['dnse2e', true]]],
    ])
    assert.deepEqual(resolved.links.get(ifindex)?.domains, [['dnse2e', true]])
  })

  test('dig @<interface address> <hostname> answers its IP', { skip: !hasDig && 'dig is not installed (Debian: bind9-dnsutils)' }, async () => {
    const services = await daemon.services()
    const { stdout } = await run('dig', [`@${INTERFACE_ADDRESS}`, '+short', '+tries=2', '+time=3', 'api.dnse2e', 'A'])
    assert.equal(stdout.trim(), services.find((s) => s.url === 'http://api.dnse2e')?.address)
  })

  test('ngrokd doctor shows where the responder answers, that resolved has the link, and that the system resolver here does not ask it', async () => {
    const checks = await doctorChecks(daemon)
    const responder = checks.find((c) => c.id.endsWith('dns.responder'))
    assert.equal(responder?.status, 'ok', JSON.stringify(checks))
    assert.match(responder!.summary, new RegExp(`${INTERFACE_ADDRESS.replace(/\./g, '\\.')}:53`))
    const link = checks.find((c) => c.id.endsWith('dns.resolved'))
    assert.equal(link?.status, 'ok', JSON.stringify(checks))
    assert.match(link!.summary, new RegExp(`ngkdns0 \\(ifindex ${ifindex}\\).*~dnse2e`))
    // the stand-in only records the registration: getaddrinfo in this namespace still does not ask the responder
    const system = checks.find((c) => c.id.endsWith('dns.system-resolver'))
    assert.equal(system?.status, 'warn', JSON.stringify(checks))
    assert.match(system!.summary, /api\.dnse2e/)
  })

  test('the interface deleted under the daemon (ip link del): made again with a new ifindex, which resolved is told at that reconcile', async () => {
    const old = ifindex
    const before = resolved.calls.length
    deleteLink(net.interfaceName!)
    resolved.links.delete(old) // resolved forgets a link that is gone
    await daemon.pollAfterNow()
    ifindex = ifindexOf(net.interfaceName!)
    assert.notEqual(ifindex, old, 'a new link')
    const calls = await waitUntil(() => resolved.calls.length - before >= 4 && resolved.calls.slice(before), { what: 'the new link registered with resolved' })
    assert.deepEqual(calls.map((c) => [c.member, c.body[0]]), [['SetLinkDNS', ifindex], ['SetLinkDefaultRoute', ifindex], ['SetLinkDNSSEC', ifindex], ['SetLinkDomains', ifindex]])
    assert.deepEqual(resolved.links.get(ifindex)?.domains, [['dnse2e', true]])
    const link = (await doctorChecks(daemon)).find((c) => c.id.endsWith('dns.resolved'))
    assert.equal(link?.status, 'ok', JSON.stringify(link))
    assert.match(link!.summary, new RegExp(`ngkdns0 \\(ifindex ${ifindex}\\)`))
    // the responder answers on the interface's address again (the reconcile put it back)
    const api = (await daemon.services()).find((x) => x.url === 'http://api.dnse2e')?.address as string
    assert.deepEqual(await resolver.resolve4('api.dnse2e'), [api])
  })
})

describe('names by DNS without systemd-resolved on the system bus: the hosts file', { skip }, () => {
  const fallbackNet = netDriverCases('dnsfb')[1]!
  let sim: CloudSimulator
  let daemon: E2eDaemon
  let bus: PrivateBus
  let hostsBefore = ''

  before(async () => {
    hostsBefore = readFileSync(HOSTS_FILE, 'utf8')
    bus = await PrivateBus.start() // a system bus where org.freedesktop.resolve1 is not
    process.env.DBUS_SYSTEM_BUS_ADDRESS = bus.address
    sim = await CloudSimulator.start()
    sim.addEndpoint({ url: 'http://api.dnsfb' })
    daemon = E2eDaemon.start({ name: 'dnsfb', sim, net: fallbackNet, extraConfig: { plugins: ['dns'], names: { resolver: 'dns' } } })
    await daemon.waitReady((s) => s.services?.serving === 1)
  })

  after(async () => {
    await daemon?.dispose()
    await sim?.stop()
    delete process.env.DBUS_SYSTEM_BUS_ADDRESS
    await bus?.stop()
    assert.equal(readFileSync(HOSTS_FILE, 'utf8'), hostsBefore, 'the stop removes the names from the hosts file')
  })

  test('it says so once, the names resolve through the hosts file, and the responder still answers', async () => {
    const [service] = await daemon.services()
    const said = daemon.logRecords().filter((r) => /systemd-resolved is not used/.test(String(r.msg)))
    assert.equal(said.length, 1, daemon.logTail(30))
    assert.match(String(said[0]!.msg), /org\.freedesktop\.resolve1 is not on the system bus unix:path=.*; the names are published in the hosts file instead/)
    assert.match(readFileSync(HOSTS_FILE, 'utf8'), new RegExp(`^${String(service?.address).replace(/\./g, '\\.')}\\s+api\\.dnsfb$`, 'm'))
    const { lookup } = await import('node:dns/promises')
    assert.equal((await lookup('api.dnsfb', { family: 4 })).address, service?.address, 'getaddrinfo finds it through the hosts file')
    const resolver = new Resolver({ timeout: 3000, tries: 2 })
    resolver.setServers([INTERFACE_ADDRESS])
    assert.deepEqual(await resolver.resolve4('api.dnsfb'), [service?.address])
  })

  test('ngrokd doctor says resolved is not used and why, and the names resolve', async () => {
    const checks = await doctorChecks(daemon)
    const link = checks.find((c) => c.id.endsWith('dns.resolved'))
    assert.equal(link?.status, 'warn', JSON.stringify(checks))
    assert.match(link!.summary, /not on the system bus.*hosts file/)
    assert.equal(checks.find((c) => c.id.endsWith('dns.system-resolver'))?.status, 'ok', JSON.stringify(checks))
  })

  test('after kill -9, doctor names the hosts block it left and ngrokd cleanup removes it', async () => {
    await daemon.stop('SIGKILL')
    assert.match(readFileSync(HOSTS_FILE, 'utf8'), /api\.dnsfb/, 'a killed daemon leaves its fallback names')
    const leftovers = (await doctorChecks(daemon)).filter((c) => c.id === 'daemon.leftovers')
    assert.ok(leftovers.some((c) => /1 name in the ngrokd block of \/etc\/hosts/.test(c.summary)), JSON.stringify(leftovers))
    const r = await ngrokdCli(['cleanup', '--config', daemon.configFile])
    assert.equal(r.code, 0, r.stdout + r.stderr)
    assert.match(r.stdout, /the ngrokd block of \/etc\/hosts/)
    assert.equal(readFileSync(HOSTS_FILE, 'utf8'), hostsBefore)
  })
})
