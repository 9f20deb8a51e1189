import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { networkInterfaces } from 'node:os'
import { migrateLegacyConfig, type InterfaceTable } from './legacy-config.js'
import { resolveConfig } from './resolve-config.js'
import { ConfigInvalidError } from './config-invalid-error.js'

const FILE = '/etc/ngrokd/config.yml'
const lan: InterfaceTable = {
  lo: [{ address: '127.0.0.1', family: 'IPv4', internal: true }],
  eth0: [
    { address: 'fe80::1', family: 'IPv6', internal: false },
    { address: '192.168.1.10', family: 'IPv4', internal: false },
  ],
  wg0: [{ address: 'fd00::2', family: 'IPv6', internal: false }],
}
const migrate = (net: Record<string, unknown>) => migrateLegacyConfig({ net }, FILE, { interfaces: () => lan })

describe('migrateLegacyConfig: the seed network mode keys', () => {
  it('maps an address onto net.network.listen, with the seed default start port, in one notice', () => {
    const m = migrate({ listen_interface: '0.0.0.0' })
    assert.deepEqual(m.raw, { net: { network: { listen: '0.0.0.0', start_port: 9080 } } })
    assert.deepEqual(m.notices, [`${FILE}: deprecated key net.listen_interface → net.network.listen; ports count from the seed's default 9080; set net.network.listen: 0.0.0.0`])
    assert.deepEqual(m.issues, [])
    assert.equal(m.renamed.get('net.network.listen'), 'net.listen_interface')
  })

  it('maps net.start_port onto net.network.start_port, one notice each', () => {
    const m = migrate({ listen_interface: '192.168.1.10', start_port: 10080 })
    assert.deepEqual(m.raw, { net: { network: { listen: '192.168.1.10', start_port: 10080 } } })
    assert.deepEqual(m.notices, [
      `${FILE}: deprecated key net.start_port → net.network.start_port; rename it`,
      `${FILE}: deprecated key net.listen_interface → net.network.listen; set net.network.listen: 192.168.1.10`,
    ])
  })

  it('resolves an interface name to its first IPv4 address when the configuration is loaded', () => {
    const m = migrate({ listen_interface: 'eth0', start_port: 9100 })
    assert.equal((m.raw.net as any).network.listen, '192.168.1.10')
    assert.match(m.notices[1]!, /interface eth0 resolved to 192\.168\.1\.10 now \(a later change needs a restart\); set net\.network\.listen: 192\.168\.1\.10$/)
    // loopback counts only when the name is lo itself, as in the seed
    assert.equal((migrate({ listen_interface: 'lo' }).raw.net as any).network.listen, '127.0.0.1')
  })

  it('refuses a name without an IPv4 address, listing what there is', () => {
    for (const name of ['wg0', 'nosuch0']) {
      const m = migrate({ listen_interface: name })
      assert.equal(m.issues.length, 1)
      assert.equal(m.issues[0]!.key, 'net.listen_interface')
      assert.match(m.issues[0]!.message, /names no interface with an IPv4 address \(this machine has: lo 127\.0\.0\.1, eth0 192\.168\.1\.10\); set net\.network\.listen to an address of this machine, or 0\.0\.0\.0/)
      assert.equal((m.raw.net as any)?.network, undefined)
    }
  })

  it('"virtual" (the seed default) means network mode off, with a notice', () => {
    const m = migrate({ listen_interface: 'virtual' })
    assert.deepEqual(m.raw, { net: {} })
    assert.deepEqual(m.notices, [`${FILE}: net.listen_interface "virtual" is the default (network mode off); remove it`])
  })

  it('refuses the old key set together with the new one, and a value that is not a string', () => {
    assert.match(migrate({ listen_interface: '0.0.0.0', network: { listen: '0.0.0.0' } }).issues[0]!.message, /is set together with its new name net\.network\.listen/)
    assert.match(migrate({ start_port: 1, network: { start_port: 2 } }).issues[0]!.message, /is set together with its new name net\.network\.start_port/)
    assert.match(migrate({ listen_interface: 42 }).issues[0]!.message, /must be "virtual", an IP address or an interface name/)
  })

  it('uses the real interface table by default', () => {
    const lo = Object.entries(networkInterfaces()).find(([name]) => name === 'lo')
    if (!lo) return // no interface named lo on this machine: nothing to look up
    const m = migrateLegacyConfig({ net: { listen_interface: 'lo' } })
    assert.equal((m.raw.net as any).network.listen, '127.0.0.1')
  })
})

describe('resolveConfig: a seed file with network mode', () => {
  it('ends up in config.net.network, the bad value named by its old key', () => {
    const { config } = resolveConfig({ net: { listen_interface: '127.0.0.1', start_port: 9080 } }, { source: FILE, env: {} })
    assert.deepEqual(config.net.network, { listen: '127.0.0.1', startPort: 9080 })
    assert.throws(
      () => resolveConfig({ net: { listen_interface: '::' } }, { source: FILE, env: {} }),
      (e: unknown) => e instanceof ConfigInvalidError && /net\.listen_interface/.test(e.message),
    )
    assert.deepEqual(resolveConfig({}, { env: {} }).config.net.network, { startPort: 20_000 })
  })
})
