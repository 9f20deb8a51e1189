// names.resolver: dns — with plugins: [dns] the daemon answers DNS for its endpoint hostnames on the
// interface's own address, port 53, and leaves the hosts file alone.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { Resolver } from 'node:dns/promises'
import { promisify } from 'node:util'
import { NGROKD_BIN } from '@ngrokd/core'
import { CloudSimulator } from '@ngrokd/plugin-simulator'
import { netnsSkip } from '../helpers/netns.js'
import { netDriverCases } from '../helpers/net-drivers.js'
import { E2eDaemon } from '../helpers/e2e-daemon.js'
import { HOSTS_FILE } from '../helpers/hosts-file.js'
import { httpRequest } from '../helpers/clients.js'

const run = promisify(execFile)
const hasDig = await run('dig', ['-v']).then(() => true, () => false)
/** linux-netlink: the interface is a kernel link, and its own address is the subnet's first host. */
const net = netDriverCases('dns')[1]!
const INTERFACE_ADDRESS = '10.107.0.1'

describe('names by DNS (plugins: [dns], names.resolver: dns)', { skip: netnsSkip }, () => {
  let sim: CloudSimulator
  let daemon: E2eDaemon
  let hostsBefore = ''
  let resolver: Resolver

  before(async () => {
    hostsBefore = readFileSync(HOSTS_FILE, 'utf8')
    sim = await CloudSimulator.start()
    sim.addEndpoint({ url: 'http://api.dnse2e' })
    sim.addEndpoint({ url: 'tcp://db.dnse2e:5432' })
    daemon = E2eDaemon.start({ name: 'dns', sim, net, extraConfig: { plugins: ['dns'], names: { resolver: 'dns' } } })
    await daemon.waitReady((s) => s.services?.serving === 2)
    resolver = new Resolver({ timeout: 3000, tries: 2 })
    resolver.setServers([INTERFACE_ADDRESS])
  })

  after(async () => {
    await daemon?.dispose()
    await sim?.stop()
    assert.equal(readFileSync(HOSTS_FILE, 'utf8'), hostsBefore, 'the hosts file is untouched after the stop')
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

  test('dig @<interface address> <hostname> answers its IP', { skip: !hasDig && 'dig is not installed (Debian: bind9-dnsutils)' }, async () => {
    const services = await daemon.services()
    const { stdout } = await run('dig', [`@${INTERFACE_ADDRESS}`, '+short', '+tries=2', '+time=3', 'api.dnse2e', 'A'])
    assert.equal(stdout.trim(), services.find((s) => s.url === 'http://api.dnse2e')?.address)
  })

  test('ngrokd doctor shows where the responder answers, and that the system resolver does not ask it', async () => {
    const r = await run(process.execPath, [NGROKD_BIN, 'doctor', '--json', '--config', daemon.configFile], { env: E2eDaemon.childEnv() }).then(
      (x) => x.stdout,
      (e: { stdout: string }) => e.stdout,
    )
    const checks = (JSON.parse(r) as { checks: Array<{ id: string; status: string; summary: string }> }).checks
    const responder = checks.find((c) => c.id.endsWith('dns.responder'))
    assert.equal(responder?.status, 'ok', JSON.stringify(checks))
    assert.match(responder!.summary, new RegExp(`${INTERFACE_ADDRESS.replace(/\./g, '\\.')}:53`))
    // nothing in this namespace points the system resolver at the responder (resolved registration is not written)
    const system = checks.find((c) => c.id.endsWith('dns.system-resolver'))
    assert.equal(system?.status, 'warn', JSON.stringify(checks))
    assert.match(system!.summary, /api\.dnse2e/)
  })
})
