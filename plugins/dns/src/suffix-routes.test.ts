// The dns plugin on macOS (/etc/resolver files) and Windows (NRPT rules), driven through the
// DnsNameResolver as the plugin drives it: attach, publish after reconciles, detach at stop. The
// files go to a temporary folder and the registry calls to a recording fake.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NRPT_RECORD_FILE, silentLogger, type NrptRegistry } from '@ngrokd/core/plugin'
import { RecordingNameResolver, recordingLogger } from '@ngrokd/core/testing'
import { DnsNameResolver } from './dns-name-resolver.js'
import { DnsResponder, type ListenAddress } from './dns-responder.js'

/** A responder that says it listens on `addresses` (the sockets are not what is tested here). */
function responderOn(addresses: ListenAddress[]): DnsResponder {
  const responder = new DnsResponder({ logger: silentLogger })
  Object.defineProperty(responder, 'addresses', { get: () => addresses })
  return responder
}

const records = (...pairs: Array<[string, string]>) => pairs.map(([hostname, address]) => ({ hostname, address }))

let dir: string
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ngrokd-dns-routes-'))
})
after(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('macOS: one /etc/resolver file per suffix', () => {
  test("written at attach and after each reconcile, naming the responder, its port and the daemon's state_dir; removed at stop; a file not ours (a user's, another instance's) is left alone", async () => {
    const resolverDir = join(dir, 'resolver')
    const stateDir = join(dir, 'state')
    const names = new DnsNameResolver(responderOn([{ host: '10.107.0.1', port: 5353 }]), { logger: silentLogger })
    await names.open()
    await names.publish({ records: records(['api.prod', '10.107.0.2'], ['web.demo', '10.107.0.3']) })
    const hostsFile = new RecordingNameResolver()
    await names.attach({ link: { name: 'utun4' }, hostsFile: () => hostsFile, platform: 'darwin', resolverDir, stateDir })
    assert.deepEqual((await readdir(resolverDir)).sort(), ['api.prod', 'demo'], 'prod is a public top-level domain: its names go one by one')
    assert.equal(await readFile(join(resolverDir, 'api.prod'), 'utf8'), `# Managed by ngrokd: removed when ngrokd stops. Do not edit.\n# state_dir: ${stateDir}\nnameserver 10.107.0.1\nport 5353\n`)
    assert.equal(hostsFile.publishes.filter((p) => p.records.length > 0).length, 0, 'the hosts file is not used')

    await writeFile(join(resolverDir, 'acme'), 'nameserver 192.168.1.1\n') // the user's own
    const another = '# Managed by ngrokd: removed when ngrokd stops. Do not edit.\n# state_dir: /var/lib/ngrokd-two\nnameserver 10.108.0.1\nport 53\n'
    await writeFile(join(resolverDir, 'stage'), another) // another instance's
    await names.publish({ records: records(['api.prod', '10.107.0.2'], ['db.acme', '10.107.0.4']) })
    await names.routed() // the route follows in the background
    assert.deepEqual((await readdir(resolverDir)).sort(), ['acme', 'api.prod', 'stage'], 'demo went with its last endpoint; acme is not ours to write, stage not ours to remove')
    assert.equal(await readFile(join(resolverDir, 'acme'), 'utf8'), 'nameserver 192.168.1.1\n')
    assert.deepEqual((await names.diagnose()).find((c) => c.id === 'dns.resolver-files')?.summary, `${resolverDir} sends api.prod to 10.107.0.1:5353`)

    await names.detach()
    assert.deepEqual((await readdir(resolverDir)).sort(), ['acme', 'stage'])
    assert.equal(await readFile(join(resolverDir, 'stage'), 'utf8'), another)
  })
})

describe('Linux: a responder resolved cannot take (not on port 53)', () => {
  test('falls back to the hosts file, and doctor names the responder\'s address as the fix, not systemd-resolved', async () => {
    const names = new DnsNameResolver(responderOn([{ host: '10.107.0.1', port: 5353 }]), { logger: silentLogger })
    await names.open()
    await names.publish({ records: records(['api.prod', '10.107.0.2']) })
    const hostsFile = new RecordingNameResolver()
    await names.attach({ link: { name: 'ngrokd0', index: 7 }, hostsFile: () => hostsFile, platform: 'linux' })
    const check = (await names.diagnose()).find((c) => c.id === 'dns.resolved')
    assert.equal(check?.status, 'warn')
    assert.match(check!.summary, /on port 53 over IPv4, and the responder listens on 10\.107\.0\.1:5353/)
    assert.match(check!.hint ?? '', /^let the responder answer on port 53 of an IPv4 address/)
    await names.detach()
  })
})

describe("macOS: a suffix another instance's file holds", () => {
  test('is warned about once while it stays so, not at every reconcile; again when the reason changes', async () => {
    const resolverDir = join(dir, 'resolver-two')
    await mkdir(resolverDir)
    await writeFile(join(resolverDir, 'demo'), '# Managed by ngrokd: removed when ngrokd stops. Do not edit.\n# state_dir: /var/lib/ngrokd-a\nnameserver 10.108.0.1\nport 53\n')
    const logger = recordingLogger()
    const names = new DnsNameResolver(responderOn([{ host: '10.107.0.1', port: 5353 }]), { logger })
    await names.open()
    await names.publish({ records: records(['web.demo', '10.107.0.3']) })
    await names.attach({ link: { name: 'utun4' }, hostsFile: () => new RecordingNameResolver(), platform: 'darwin', resolverDir, stateDir: join(dir, 'state-b') })
    for (let i = 0; i < 4; i++) await names.publish({ records: records(['web.demo', '10.107.0.3'], [`api${i}.demo`, '10.107.0.4']) })
    await names.routed()
    const about = () => logger.at('warn').filter((r) => /no resolver file for demo/.test(r.msg))
    assert.equal(about().length, 1, about().map((r) => r.msg).join('\n'))
    assert.match(about()[0]!.msg, /is written for the ngrokd of state_dir \/var\/lib\/ngrokd-a \(another instance serves demo\)$/)
    await writeFile(join(resolverDir, 'demo'), 'nameserver 192.168.1.1\n') // now the user's own
    await names.publish({ records: records(['web.demo', '10.107.0.3']) })
    await names.routed()
    assert.equal(about().length, 2)
    assert.match(about()[1]!.msg, /exists and was not written by ngrokd$/)
    await names.detach()
  })
})

describe('Windows: one NRPT rule per suffix', () => {
  /** The registry calls, recorded; keys live in a map. */
  function fakeRegistry() {
    const keys = new Map<string, string[]>()
    /** Each key's GenericDNSServers, as the DNS client reads it (REG_SZ: UTF-16LE, NUL-terminated). */
    const servers = new Map<string, string>()
    const calls: string[] = []
    const registry: NrptRegistry = {
      writeKey(keyPath, values) {
        calls.push(`write ${keyPath}`)
        keys.set(keyPath, values.map((v) => v.name))
        const generic = values.find((v) => v.name === 'GenericDNSServers')
        if (generic) servers.set(keyPath, Buffer.from(generic.data).toString('utf16le').replace(/\0+$/, ''))
        return { status: 0, call: 'RegSetValueExW' }
      },
      deleteKey(keyPath) {
        calls.push(`delete ${keyPath}`)
        servers.delete(keyPath)
        return keys.delete(keyPath) ? 0 : 2
      },
      openKey: () => 2,
      flushDns: () => (calls.push('flush'), true),
    }
    return { registry, keys, servers, calls }
  }

  test('rules follow the suffixes and go at stop; the DNS cache is flushed after each change', async () => {
    const { registry, keys, calls } = fakeRegistry()
    const names = new DnsNameResolver(responderOn([{ host: '10.107.0.1', port: 53 }]), { logger: silentLogger })
    await names.open()
    await names.publish({ records: records(['api.prod', '10.107.0.2']) })
    await names.attach({ link: { name: 'ngrokd' }, hostsFile: () => new RecordingNameResolver(), platform: 'win32', nrpt: async () => registry })
    assert.equal(keys.size, 1)
    const [prodKey] = keys.keys()
    assert.match(prodKey!, /DnsPolicyConfig\\/)
    assert.ok(keys.get(prodKey!)!.includes('Name') && keys.get(prodKey!)!.includes('GenericDNSServers'), `rule values: ${keys.get(prodKey!)}`)
    assert.equal(calls.at(-1), 'flush')

    calls.length = 0
    await names.publish({ records: records(['api.prod', '10.107.0.2']) })
    await names.routed() // the route follows in the background
    assert.deepEqual(calls, [], 'nothing changed, nothing written')
    await names.publish({ records: records(['web.demo', '10.107.0.3']) })
    await names.routed() // the route follows in the background
    assert.equal(keys.size, 1)
    assert.ok(!keys.has(prodKey!), 'the rule of a suffix gone is deleted')
    assert.equal((await names.diagnose()).find((c) => c.id === 'dns.nrpt')?.status, 'ok')
    await names.detach()
    assert.equal(keys.size, 0)
  })

  test('a rule a killed daemon left (named in the record in state_dir) is deleted by the next start once its suffix is not served', async () => {
    const { registry, keys } = fakeRegistry()
    const stateDir = join(dir, 'nrpt-state')
    await mkdir(stateDir)
    const crashed = new DnsNameResolver(responderOn([{ host: '10.107.0.1', port: 53 }]), { logger: silentLogger })
    await crashed.open()
    await crashed.publish({ records: records(['api.staging', '10.107.0.2'], ['api.prod', '10.107.0.3']) })
    await crashed.attach({ link: { name: 'ngrokd' }, hostsFile: () => new RecordingNameResolver(), platform: 'win32', nrpt: async () => registry, stateDir })
    assert.equal(keys.size, 2)
    // killed: no detach. The next run serves prod only
    const next = new DnsNameResolver(responderOn([{ host: '10.107.0.1', port: 53 }]), { logger: silentLogger })
    await next.open()
    await next.publish({ records: records(['api.prod', '10.107.0.3']) })
    await next.attach({ link: { name: 'ngrokd' }, hostsFile: () => new RecordingNameResolver(), platform: 'win32', nrpt: async () => registry, stateDir })
    assert.equal(keys.size, 1, 'staging\'s rule is gone')
    assert.deepEqual(JSON.parse(await readFile(join(stateDir, NRPT_RECORD_FILE), 'utf8')), { namespaces: ['.api.prod'] }, 'prod is a public top-level domain: its names go one by one')
    await next.detach()
    assert.equal(keys.size, 0)
    assert.deepEqual(await readdir(stateDir), [], 'no rule left, no record')
  })

  test("a rule a killed daemon left for a suffix served again is written anew, naming this run's responder", async () => {
    const { registry, servers } = fakeRegistry()
    const stateDir = join(dir, 'nrpt-moved')
    await mkdir(stateDir)
    const crashed = new DnsNameResolver(responderOn([{ host: '10.107.0.1', port: 53 }]), { logger: silentLogger })
    await crashed.open()
    await crashed.publish({ records: records(['web.demo', '10.107.0.2']) })
    await crashed.attach({ link: { name: 'ngrokd' }, hostsFile: () => new RecordingNameResolver(), platform: 'win32', nrpt: async () => registry, stateDir })
    assert.deepEqual([...servers.values()], ['10.107.0.1'])
    // killed: no detach. The next run answers on another subnet's address (net.subnet changed) and serves demo again
    const next = new DnsNameResolver(responderOn([{ host: '10.108.0.1', port: 53 }]), { logger: silentLogger })
    await next.open()
    await next.publish({ records: records(['web.demo', '10.108.0.2']) })
    await next.attach({ link: { name: 'ngrokd' }, hostsFile: () => new RecordingNameResolver(), platform: 'win32', nrpt: async () => registry, stateDir })
    assert.deepEqual([...servers.values()], ['10.108.0.1'], 'the rule names the responder that answers now')
    assert.match((await next.diagnose()).find((c) => c.id === 'dns.nrpt')?.summary ?? '', /demo to 10\.108\.0\.1/)
    await next.detach()
    assert.equal(servers.size, 0)
  })

  test('a responder not on port 53 cannot be named by NRPT: said once, and the hosts file carries the names', async () => {
    const hostsFile = new RecordingNameResolver()
    const names = new DnsNameResolver(responderOn([{ host: '127.0.0.1', port: 5353 }]), { logger: silentLogger })
    await names.open()
    await names.publish({ records: records(['api.prod', '10.107.0.2']) })
    await names.attach({ link: { name: 'ngrokd' }, hostsFile: () => hostsFile, platform: 'win32', nrpt: async () => assert.fail('no registry call without a port-53 address') })
    assert.deepEqual(hostsFile.published.records, records(['api.prod', '10.107.0.2']))
    const check = (await names.diagnose()).find((c) => c.id === 'dns.resolved')
    assert.match(check?.summary ?? '', /^NRPT is not used: NRPT rules name DNS servers on port 53/)
  })
})
