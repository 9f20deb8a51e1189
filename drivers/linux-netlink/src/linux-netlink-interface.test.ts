// Driver logic against an in-memory rtnetlink peer: runs on any OS, no privilege. The same
// behaviour against the real kernel is in linux-netlink-interface.privileged.test.ts.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isNgrokdError, silentLogger } from '@ngrokd/core/driver'
import driver from './index.js'
import { AddressBatchError, LINK_CREATE_GROUP, LINK_TAG, LinuxNetlinkInterface, type LinuxNetlinkInterfaceOptions } from './linux-netlink-interface.js'
import { IFF_UP, RTM_NEWADDR } from './netlink/constants.js'
import { LINUX_ERRNO } from './netlink/errno.js'
import { FakeNetlinkKernel, sortIpv4 } from './testing/fake-netlink-kernel.test-helper.js'

const NAME = 'ngrt0'
const SUBNET = '10.107.0.0/16'

function setup(kernel = new FakeNetlinkKernel(), options: Partial<LinuxNetlinkInterfaceOptions> = {}) {
  const warnings: string[] = []
  const logger = {
    trace() {},
    debug() {},
    info() {},
    warn: (a: unknown, b?: string) => void warnings.push(String(b ?? a)),
    error() {},
    fatal() {},
    child() {
      return logger
    },
  }
  const iface = new LinuxNetlinkInterface({ name: NAME, subnet: SUBNET, logger, openTransport: async () => kernel.connect(), ...options })
  return { kernel, iface, warnings }
}

const hasCode = (code: string, pattern?: RegExp) => (e: unknown) => isNgrokdError(e) && e.code === code && (!pattern || pattern.test((e as Error).message))

test('the driver module: metadata, and create() returns a LinuxNetlinkInterface with batching', async () => {
  assert.equal(driver.name, 'linux-netlink')
  assert.deepEqual(driver.provides, ['interface'])
  assert.deepEqual(driver.platforms, ['linux'])
  // create() only constructs: no socket is opened and koffi is not loaded until open()
  const { interface: iface } = await driver.create({ logger: silentLogger, stateDir: '/nonexistent', platform: 'linux' }, { name: NAME, subnet: SUBNET })
  assert.ok(iface instanceof LinuxNetlinkInterface)
  assert.equal(iface.driver, 'linux-netlink')
  assert.deepEqual(iface.capabilities, { loopbackOnly: false, ipv6: false, requiresPrivileges: 'cap_net_admin', batching: true })
})

test('open creates a dummy link and brings it up', async () => {
  const { kernel, iface } = setup()
  const info = await iface.open({ name: NAME, subnet: SUBNET })
  const link = kernel.linkByName(NAME)!
  assert.deepEqual(info, { name: NAME, index: link.index, kind: 'dummy', adopted: false, notes: [] })
  assert.equal(link.kind, 'dummy')
  assert.ok(link.flags & IFF_UP)
  assert.equal(iface.ifindex, link.index)
  assert.deepEqual(await iface.open({ name: NAME, subnet: SUBNET }), info, 'open twice returns the same info')
})

test('without the dummy kind (EOPNOTSUPP) open falls back to a bridge, says why once, and reports it', async () => {
  const { kernel, iface, warnings } = setup(new FakeNetlinkKernel({ kinds: ['bridge'] }))
  const info = await iface.open({ name: NAME, subnet: SUBNET })
  assert.equal(info.kind, 'bridge (dummy unavailable)')
  assert.equal(info.notes.length, 1)
  assert.match(info.notes[0]!, /no dummy link type.*EOPNOTSUPP.*bridge/)
  assert.equal(kernel.linkByName(NAME)!.kind, 'bridge')
  await iface.close()
  await setup(kernel).iface.open({ name: NAME, subnet: SUBNET })
  assert.ok(warnings.length <= 1, 'the fallback is logged once per process')
})

test('open puts the link in its group in its create request (IFLA_GROUP) and tags it with its IFLA_IFALIAS', async () => {
  const { kernel, iface } = setup()
  await iface.open({ name: NAME, subnet: SUBNET })
  assert.equal(kernel.linkByName(NAME)!.alias, LINK_TAG)
  assert.equal(kernel.linkByName(NAME)!.group, LINK_CREATE_GROUP)
  await iface.close()
})

test('open adopts a tagged dummy or port-less bridge left by a crash, and refuses anything else', async () => {
  const kernel = new FakeNetlinkKernel()
  const leftover = kernel.addLink(NAME, 'bridge', { flags: 0, alias: LINK_TAG })
  leftover.addresses.add('10.107.0.9')
  const { iface } = setup(kernel)
  const info = await iface.open({ name: NAME, subnet: SUBNET })
  assert.equal(info.adopted, true)
  assert.equal(info.kind, 'bridge')
  assert.ok(leftover.flags & IFF_UP)
  assert.deepEqual(await iface.listAddresses(), ['10.107.0.9'])

  const veth = new FakeNetlinkKernel()
  veth.addLink(NAME, 'veth', { alias: LINK_TAG })
  await assert.rejects(setup(veth).iface.open({ name: NAME, subnet: SUBNET }), hasCode('NGROKD_ERR_CONFIG_INVALID', /ngrt0 already exists and is a veth link/))

  const realBridge = new FakeNetlinkKernel()
  const br = realBridge.addLink(NAME, 'bridge', { alias: LINK_TAG })
  realBridge.addLink('eth1', undefined, { master: br.index })
  await assert.rejects(setup(realBridge).iface.open({ name: NAME, subnet: SUBNET }), hasCode('NGROKD_ERR_CONFIG_INVALID', /bridge with ports \(eth1\)/))
  assert.ok(realBridge.linkByName(NAME), 'a refused link is left alone')
})

test('adoptOnly (cleanup) makes nothing: no link is absent; a leftover is adopted even where the subnet conflicts', async () => {
  const kernel = new FakeNetlinkKernel()
  const other = kernel.addLink('other', 'bridge', { flags: IFF_UP })
  kernel.routes.push({ dst: '10.107.0.0', dstLen: 16, oif: other.index })
  const { iface } = setup(kernel)
  assert.deepEqual(await iface.open({ name: NAME, subnet: SUBNET, adoptOnly: true }), { name: NAME, kind: 'none', adopted: false, notes: [], absent: true })
  assert.equal(kernel.linkByName(NAME), undefined, 'no link was made')
  await assert.rejects(iface.listAddresses(), hasCode('NGROKD_ERR_DRIVER_MISUSE'))
  await iface.close({ removeInterface: true })

  const leftover = kernel.addLink(NAME, 'dummy', { alias: LINK_TAG })
  leftover.addresses.add('10.107.0.9')
  const again = setup(kernel).iface
  const info = await again.open({ name: NAME, subnet: SUBNET, adoptOnly: true })
  assert.equal(info.adopted, true)
  assert.deepEqual(await again.listAddresses(), ['10.107.0.9'])
  await again.close({ removeInterface: true })
  assert.equal(kernel.linkByName(NAME), undefined, 'the leftover is gone')
})

test('a dummy, bridge or device with the name but without the tag is foreign: refused, named, left alone', async () => {
  for (const [kind, alias, what] of [
    ['bridge', undefined, /ngrt0 already exists \(a bridge link\) and is not ngrokd's/],
    ['dummy', undefined, /\(a dummy link\)/],
    ['bridge', 'docker bridge', /\(a bridge link, alias "docker bridge"\)/],
    [undefined, undefined, /\(a device\)/],
  ] as const) {
    const kernel = new FakeNetlinkKernel()
    const link = kernel.addLink(NAME, kind, alias ? { alias } : {})
    link.addresses.add('172.17.0.1')
    const { iface } = setup(kernel)
    await assert.rejects(iface.open({ name: NAME, subnet: SUBNET }), (e: unknown) => {
      assert.ok(hasCode('NGROKD_ERR_INTERFACE_FOREIGN', what)(e), String(e))
      assert.match((e as { hint: string }).hint, /set net\.interface_name to a name no other interface uses/)
      return true
    })
    await iface.close()
    assert.equal(kernel.linkByName(NAME), link, 'the foreign link is still there')
    assert.deepEqual([...link.addresses], ['172.17.0.1'])
    assert.equal(link.alias, alias, 'and its alias untouched')
  }
})

test('a link a start left untagged (stopped between creating and tagging it: in its group, down, no address, no alias) is tagged and adopted', async () => {
  const kernel = new FakeNetlinkKernel()
  const link = kernel.addLink(NAME, 'bridge', { group: LINK_CREATE_GROUP })
  const { iface } = setup(kernel)
  const info = await iface.open({ name: NAME, subnet: SUBNET })
  assert.equal(info.adopted, true)
  assert.match(info.notes.join(' '), /down, without addresses or tag: left by a start stopped before it could tag it/)
  assert.equal(link.alias, LINK_TAG)
  await iface.close({ removeInterface: true })
  assert.equal(kernel.linkByName(NAME), undefined)
  // the same link up, or holding an address, may be someone's: refused as before; and so is one outside the group
  // (`ip link add ngrt0 type bridge`: as fresh and down, but a user's)
  for (const shape of [{ flags: IFF_UP, group: LINK_CREATE_GROUP }, { addresses: new Set(['172.17.0.1']), group: LINK_CREATE_GROUP }, { group: 7 }, {}]) {
    const k = new FakeNetlinkKernel()
    k.addLink(NAME, 'dummy', shape)
    const { iface: other } = setup(k)
    await assert.rejects(other.open({ name: NAME, subnet: SUBNET }), hasCode('NGROKD_ERR_INTERFACE_FOREIGN', /\(a dummy link\)/))
    await other.close()
  }
})

test('open refuses a subnet that overlaps another interface’s route, naming it, unless force', async () => {
  const kernel = new FakeNetlinkKernel()
  const other = kernel.addLink('other', 'bridge', { flags: IFF_UP })
  kernel.routes.push({ dst: '10.107.0.0', dstLen: 16, oif: other.index })
  await assert.rejects(
    setup(kernel).iface.open({ name: NAME, subnet: SUBNET }),
    (e: unknown) => hasCode('NGROKD_ERR_ADDRESS_CONFLICT', /10\.107\.0\.0\/16 overlaps route 10\.107\.0\.0\/16 dev other/)(e) && /force/.test((e as { hint?: string }).hint ?? ''),
  )
  assert.equal(kernel.linkByName(NAME), undefined, 'nothing was created')
  const forced = await setup(kernel, { force: true }).iface.open({ name: NAME, subnet: SUBNET })
  assert.equal(forced.kind, 'dummy')
})

test('addresses: idempotent add and remove, listAddresses reads the kernel, one send per batch', async () => {
  const { kernel, iface } = setup()
  await iface.open({ name: NAME, subnet: SUBNET })
  const link = kernel.linkByName(NAME)!
  await iface.addAddress({ address: '10.107.0.2' })
  await iface.addAddress({ address: '10.107.0.2' })
  await iface.removeAddress({ address: '10.107.0.3' })
  assert.deepEqual(await iface.listAddresses(), ['10.107.0.2'])
  link.addresses.add('10.107.7.7') // changed behind the driver's back
  assert.deepEqual(sortIpv4(await iface.listAddresses()), ['10.107.0.2', '10.107.7.7'])
  // another prefix is no address ngrokd adds: never listed, so the daemon never removes it; a /32 of an earlier
  // net.subnet (a killed daemon's) is listed, for the daemon to remove
  link.addresses.add('10.107.0.9/24')
  link.addresses.add('10.108.0.2')
  assert.deepEqual(sortIpv4(await iface.listAddresses()), ['10.107.0.2', '10.107.7.7', '10.108.0.2'])
  link.addresses.delete('10.107.0.9/24')
  link.addresses.delete('10.108.0.2')

  const before = kernel.sent.length
  const add = Array.from({ length: 1000 }, (_, i) => `10.107.${4 + (i >> 8)}.${i & 255}`)
  await iface.applyAddresses({ add, remove: ['10.107.0.2', '10.107.7.7'] })
  assert.equal(kernel.sent.length - before, 1)
  assert.deepEqual(sortIpv4(await iface.listAddresses()), sortIpv4(add))
})

test('address failures name the address and errno; EPERM is a PermissionError; several become one AddressBatchError', async () => {
  const { kernel, iface } = setup()
  await iface.open({ name: NAME, subnet: SUBNET })
  kernel.inject = (m) => (m.type === RTM_NEWADDR ? LINUX_ERRNO.EPERM : undefined)
  await assert.rejects(iface.addAddress({ address: '10.107.0.2' }), (e: unknown) => {
    assert.ok(isNgrokdError(e, 'NGROKD_ERR_PERMISSION'))
    assert.equal(e.message, 'linux-netlink: RTM_NEWADDR 10.107.0.2 on ngrt0 not permitted: EPERM (1)')
    assert.match(e.hint!, /CAP_NET_ADMIN/)
    return true
  })
  kernel.inject = (m) => (m.type === RTM_NEWADDR ? LINUX_ERRNO.ENOSPC : undefined)
  await assert.rejects(iface.applyAddresses({ add: ['10.107.0.2', '10.107.0.3'], remove: ['10.107.0.4'] }), (e: unknown) => {
    assert.ok(e instanceof AddressBatchError)
    assert.equal(e.code, 'NGROKD_ERR_SYSCALL')
    assert.equal(e.failures.length, 2)
    assert.equal(e.failures[1]!.message, 'linux-netlink: RTM_NEWADDR 10.107.0.3 on ngrt0 failed: ENOSPC (28)')
    assert.match(e.message, /2 of 3 address changes on ngrt0 failed/)
    return true
  })
})

test('bad input, calls before open and an aborted signal are coded errors', async () => {
  const { iface } = setup()
  await assert.rejects(iface.listAddresses(), hasCode('NGROKD_ERR_DRIVER_MISUSE', /before open\(\)/))
  await assert.rejects(iface.addAddress({ address: '10.107.0.2' }), hasCode('NGROKD_ERR_DRIVER_MISUSE', /before open\(\)/))
  await assert.rejects(setup().iface.open({ name: 'a-name-that-is-too-long', subnet: SUBNET }), hasCode('NGROKD_ERR_CONFIG_INVALID', /interface name/))
  await assert.rejects(setup().iface.open({ name: 'a/b', subnet: SUBNET }), hasCode('NGROKD_ERR_CONFIG_INVALID'))
  // '%' makes RTM_NEWLINK name the link from a template (ngk%d: ngk0, ngk1, …), which no lookup by the name finds
  for (const name of ['ngk%d', 'x%']) {
    const kernel = new FakeNetlinkKernel()
    await assert.rejects(setup(kernel).iface.open({ name, subnet: SUBNET }), hasCode('NGROKD_ERR_CONFIG_INVALID', /invalid interface name/))
    assert.deepEqual([...kernel.links.values()].map((l) => l.name), ['lo'], 'nothing was made')
  }
  await assert.rejects(setup().iface.open({ name: NAME, subnet: '10.107.0.1/16' }), hasCode('NGROKD_ERR_CONFIG_INVALID', /net\.subnet/))
  await iface.open({ name: NAME, subnet: SUBNET })
  await assert.rejects(iface.addAddress({ address: '10.107.0.256' }), hasCode('NGROKD_ERR_CONFIG_INVALID', /not an IPv4 address/))
  await assert.rejects(iface.open({ name: 'ngrt1', subnet: SUBNET }), hasCode('NGROKD_ERR_CONFIG_INVALID', /already open as ngrt0/))
  const controller = new AbortController()
  controller.abort()
  await assert.rejects(iface.applyAddresses({ add: ['10.107.0.2'], remove: [], signal: controller.signal }), hasCode('NGROKD_ERR_ABORTED'))
  await assert.rejects(setup().iface.open({ name: NAME, subnet: SUBNET, signal: controller.signal }), hasCode('NGROKD_ERR_ABORTED'))
})

test('close deletes the link by default, keeps it with removeInterface: false, and is idempotent', async () => {
  const { kernel, iface } = setup()
  await iface.open({ name: NAME, subnet: SUBNET })
  await iface.close({ removeInterface: false })
  assert.ok(kernel.linkByName(NAME))
  assert.ok(kernel.connections.at(-1)!.closed, 'the socket is closed')
  await iface.close()
  assert.ok(kernel.linkByName(NAME), 'a second close does nothing')

  const again = setup(kernel)
  assert.equal((await again.iface.open({ name: NAME, subnet: SUBNET })).adopted, true)
  await again.iface.close()
  assert.equal(kernel.linkByName(NAME), undefined)
  await again.iface.close()

  const keep = setup(new FakeNetlinkKernel(), { removeOnClose: false })
  await keep.iface.open({ name: NAME, subnet: SUBNET })
  await keep.iface.close()
  assert.ok(keep.kernel.linkByName(NAME))
})
