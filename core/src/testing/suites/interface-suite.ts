import assert from 'node:assert/strict'
import { networkInterfaces } from 'node:os'
import type { Interface, InterfaceInfo } from '../../contracts/interface.js'
import { silentLogger, type Logger } from '../../contracts/logger.js'
import { isDriverModule, type DriverContext, type DriverModule } from '../../driver/define-driver.js'
import { assertCompatible } from '../../driver/resolve-driver.js'
import { CORE_VERSION } from '../../version.js'
import { intToIpv4, isIpv4, parseSubnet, subnetContains } from '../../util/ipv4.js'
import { assertRejectsCoded, assertSameSet } from '../assertions.js'
import { TestFramework } from '../test-framework.js'
import { checkDiagnose } from './check-diagnose.js'
import { CALL_DEADLINE_MS, check, settleWithin, SuiteTempDir, withCleanup, withDeadlines } from './suite-support.js'

/** What each test gives a driver: a fresh state folder, a logger and the platform. */
export interface InterfaceSuiteEnv {
  stateDir: string
  logger: Logger
  platform: NodeJS.Platform
}

export type InterfaceFactory = (env: InterfaceSuiteEnv) => Interface | Promise<Interface>

/** Checks a driver may opt out of (unstorage's `noKeysSupport` idea). Say why in the test file. */
export interface InterfaceSuiteSkips {
  /** A second instance adopting what the first made (`open()` reuse). */
  reopen?: boolean
  /** `close({ removeInterface: true })` deleting what `open()` made. */
  removeInterface?: boolean
  /** Many `addAddress()`/`removeAddress()` calls at once. */
  concurrency?: boolean
  /** Already-aborted `AbortSignal`s rejecting. */
  abort?: boolean
  /** A malformed address rejecting with a coded error. */
  invalidAddress?: boolean
  /** An IPv6 address rejecting when the driver lacks the `ipv6` capability. */
  ipv6?: boolean
  diagnose?: boolean
  /** The system's own view ({@link InterfaceSuiteOptions.inspect}) matching `listAddresses()`: say why none exists. */
  systemView?: boolean
}

export interface InterfaceSuiteOptions<O extends object = Record<string, unknown>> {
  /** `describe()` title; default `<driver>: interface driver conformance`. */
  title?: string
  /** A driver module (its `create()` is called with the options) or a factory of instances. */
  driver: DriverModule<O> | InterfaceFactory
  /** Passed to `driver.create()` and, as `{ name, subnet }`, to `open()`. */
  options: O & { name: string; subnet: string }
  /** Overrides for the `DriverContext` (`stateDir` is always a fresh temporary folder). */
  context?: Partial<Omit<DriverContext, 'stateDir'>>
  /** Addresses the tests add; default: 16 hosts from the (effective) subnet, skipping the first host. */
  addresses?: readonly string[]
  /**
   * The IPv4 addresses on the opened interface as the system shows them, read without the driver (so an
   * address kept only in the driver's memory, or put on another interface, is caught). Default:
   * `os.networkInterfaces()[info.name]`, which lists only interfaces that are up and running; give your own
   * for an interface that is down or has no carrier, or for a fake system.
   */
  inspect?(session: { info: InterfaceInfo; env: InterfaceSuiteEnv }): string[] | Promise<string[]>
  skip?: InterfaceSuiteSkips
  /** How long one call of the driver (create(), open(), addAddress(), …) may take before its check fails naming it. Default 30 s. */
  callTimeoutMs?: number
  /** Register more `it()`s inside the suite's `describe()`. */
  additionalTests?(ctx: InterfaceSuiteContext): void
}

/** One opened instance in a fresh state folder; everything made is closed afterwards. */
export interface InterfaceSession {
  env: InterfaceSuiteEnv
  iface: Interface
  info: InterfaceInfo
  /** The subnet addresses come from: `info.subnet` when the driver set it, else `options.subnet`. */
  subnet: string
  /** Addresses to use in this session (inside `subnet`). */
  addresses: string[]
  /** Another instance over the same state folder, not yet opened (closed with the session). */
  create(): Promise<Interface>
  /** Opens an instance with the suite's name and subnet. */
  open(iface: Interface, signal?: AbortSignal): Promise<InterfaceInfo>
}

export interface InterfaceSuiteContext {
  options: { name: string; subnet: string }
  withInterface<T>(fn: (session: InterfaceSession) => Promise<T>): Promise<T>
}

/**
 * Registers the interface-driver conformance suite: every rule in the `Interface` contract's JSDoc.
 *
 * ```ts
 * import { describe, it, before, after } from 'node:test'
 * import { TestFramework, testInterfaceDriver, requires } from '@ngrokd/core/testing'
 * import driver from '../src/index.js'
 * TestFramework.use({ describe, it, beforeAll: before, afterAll: after })
 * describe('my-driver', { skip: requires.root() }, () => {
 *   testInterfaceDriver({ driver, options: { name: 'ngrkt0', subnet: '10.250.0.0/24' } })
 * })
 * ```
 */
export function testInterfaceDriver<O extends object = Record<string, unknown>>(suite: InterfaceSuiteOptions<O>): void {
  const { driver, options, skip = {} } = suite
  const name = isDriverModule(driver) ? driver.name : 'interface driver'
  const temp = new SuiteTempDir('ngrokd-interface-suite')
  const openOptions = { name: options.name, subnet: options.subnet }

  const deadline = suite.callTimeoutMs ?? CALL_DEADLINE_MS

  async function createIn(env: InterfaceSuiteEnv): Promise<Interface> {
    if (typeof driver === 'function') return withDeadlines(await settleWithin(Promise.resolve(driver(env)), 'the interface factory', deadline), 'interface', deadline)
    const ctx: DriverContext = { logger: env.logger, stateDir: env.stateDir, platform: env.platform }
    // what the daemon passes (di/container.ts), the suite's options over it
    const instances = await settleWithin(Promise.resolve(driver.create(ctx, { force: false, removeOnClose: true, stateDir: env.stateDir, ...options })), `driver ${driver.name}: create()`, deadline)
    assert.ok(instances.interface, `driver ${driver.name}: create() returned no interface`)
    return withDeadlines(instances.interface, 'interface', deadline)
  }

  async function withInterface<T>(fn: (session: InterfaceSession) => Promise<T>): Promise<T> {
    return withCleanup(async (defer) => {
      const env: InterfaceSuiteEnv = {
        stateDir: await temp.fresh(),
        logger: suite.context?.logger ?? silentLogger,
        platform: suite.context?.platform ?? process.platform,
      }
      const create = async (): Promise<Interface> => {
        const iface = await createIn(env)
        defer(() => iface.close({ removeInterface: true }))
        return iface
      }
      const open = (iface: Interface, signal?: AbortSignal) => iface.open({ ...openOptions, signal })
      const iface = await create()
      const info = await open(iface)
      const subnet = info.subnet ?? options.subnet
      const addresses = suite.addresses ? [...suite.addresses] : hostsOf(subnet, 16)
      return fn({ env, iface, info, subnet, addresses, create, open })
    })
  }

  TestFramework.describe(suite.title ?? `${name}: interface driver conformance`, () => {
    temp.registerHooks()

    if (isDriverModule(driver)) {
      check('is a driver module this core loads: its core range (ngrokd) includes this core, and it provides an interface', false, async () => {
        assertCompatible(driver, CORE_VERSION)
        assert.ok(driver.provides.includes('interface'), `driver ${driver.name}: provides ${JSON.stringify(driver.provides)}, without "interface": net.driver refuses it`)
      })
    }

    check('declares a kebab-case driver id and every capability', false, async () => {
      await withInterface(async ({ iface }) => {
        assert.match(iface.driver, /^[a-z][a-z0-9-]*$/, 'driver id must be kebab-case')
        const c = iface.capabilities
        assert.equal(typeof c.loopbackOnly, 'boolean', 'capabilities.loopbackOnly')
        assert.equal(typeof c.ipv6, 'boolean', 'capabilities.ipv6')
        assert.equal(typeof c.batching, 'boolean', 'capabilities.batching')
        assert.ok(['root', 'cap_net_admin', 'administrator', 'none'].includes(c.requiresPrivileges), `capabilities.requiresPrivileges is ${String(c.requiresPrivileges)}`)
      })
    })

    check('open() describes a fresh interface with no endpoint addresses', false, async () => {
      await withInterface(async ({ iface, info, subnet }) => {
        assert.equal(typeof info.name, 'string')
        assert.ok(info.name.length > 0, 'info.name is empty')
        assert.equal(typeof info.kind, 'string')
        assert.ok(info.kind.length > 0, 'info.kind is empty')
        assert.equal(info.adopted, false, 'a fresh interface must not be reported as adopted')
        assert.ok(Array.isArray(info.notes) && info.notes.every((n) => typeof n === 'string'), 'info.notes must be an array of strings')
        assert.doesNotThrow(() => parseSubnet(subnet), `effective subnet ${subnet} is not a CIDR`)
        assertSameSet(await iface.listAddresses(), [], 'listAddresses() after a fresh open()')
      })
    })

    check('a loopbackOnly driver uses a subnet inside 127.0.0.0/8', false, async () => {
      await withInterface(async ({ iface, info, subnet, addresses }) => {
        const loopback = parseSubnet('127.0.0.0/8')
        const effective = parseSubnet(subnet)
        if (!iface.capabilities.loopbackOnly) {
          assert.equal(info.subnet, undefined, 'only a loopbackOnly driver may replace net.subnet (info.subnet)')
          return
        }
        assert.ok(subnetContains(loopback, effective.network) && subnetContains(loopback, effective.broadcast), `effective subnet ${subnet} is not inside 127.0.0.0/8`)
        if (!subnetContains(loopback, parseSubnet(options.subnet).network)) {
          assert.ok(info.subnet, `net.subnet ${options.subnet} is not loopback: open() must return info.subnet`)
        }
        await iface.addAddress({ address: addresses[0]! })
        for (const a of await iface.listAddresses()) assert.ok(subnetContains(loopback, a), `${a} is not a loopback address`)
      })
    })

    check('methods called before open() reject with a coded error', false, async () => {
      await withInterface(async ({ create, addresses }) => {
        const fresh = await create()
        const address = addresses[0]!
        await assertRejectsCoded(() => fresh.addAddress({ address }), 'addAddress() before open()')
        await assertRejectsCoded(() => fresh.removeAddress({ address }), 'removeAddress() before open()')
        await assertRejectsCoded(() => fresh.listAddresses(), 'listAddresses() before open()')
        await assertRejectsCoded(() => fresh.applyAddresses({ add: [address], remove: [] }), 'applyAddresses() before open()')
      })
    })

    check('listAddresses() equals what was added, after adds and after removes', false, async () => {
      await withInterface(async ({ iface, addresses }) => {
        const some = addresses.slice(0, 5)
        for (const address of some) await iface.addAddress({ address })
        const listed = await iface.listAddresses()
        for (const a of listed) assert.ok(isIpv4(a), `listAddresses() returned ${JSON.stringify(a)}, not a dotted quad`)
        assertSameSet(listed, some, 'listAddresses() after 5 adds')
        await iface.removeAddress({ address: some[1]! })
        await iface.removeAddress({ address: some[3]! })
        assertSameSet(await iface.listAddresses(), [some[0]!, some[2]!, some[4]!], 'listAddresses() after 2 removes')
      })
    })

    check('addAddress() of an address already present resolves (idempotent)', false, async () => {
      await withInterface(async ({ iface, addresses }) => {
        const [a, b] = addresses as [string, string]
        await iface.addAddress({ address: a })
        await iface.addAddress({ address: a })
        await iface.addAddress({ address: b })
        await iface.addAddress({ address: a })
        assertSameSet(await iface.listAddresses(), [a, b], 'listAddresses() after adding a twice')
      })
    })

    check('removeAddress() of an absent address resolves (idempotent)', false, async () => {
      await withInterface(async ({ iface, addresses }) => {
        const [a, b] = addresses as [string, string]
        await iface.removeAddress({ address: a })
        await iface.addAddress({ address: a })
        await iface.addAddress({ address: b })
        await iface.removeAddress({ address: a })
        await iface.removeAddress({ address: a })
        assertSameSet(await iface.listAddresses(), [b], 'listAddresses() after removing a twice')
      })
    })

    check('applyAddresses() adds and removes in one change', false, async () => {
      await withInterface(async ({ iface, addresses }) => {
        const [a, b, c, d, e] = addresses as [string, string, string, string, string]
        await iface.applyAddresses({ add: [a, b, c], remove: [] })
        assertSameSet(await iface.listAddresses(), [a, b, c], 'after applyAddresses({ add: [a, b, c] })')
        await iface.applyAddresses({ add: [d, e, a], remove: [b, c] })
        assertSameSet(await iface.listAddresses(), [a, d, e], 'after applyAddresses({ add: [d, e, a], remove: [b, c] })')
        await iface.applyAddresses({ add: [], remove: [a, b] })
        assertSameSet(await iface.listAddresses(), [d, e], 'after applyAddresses({ remove: [a, b] })')
      })
    })

    check('concurrent addAddress() and removeAddress() calls all take effect', skip.concurrency, async () => {
      await withInterface(async ({ iface, addresses }) => {
        const half = Math.floor(addresses.length / 2)
        const first = addresses.slice(0, half)
        const second = addresses.slice(half)
        await Promise.all(first.map((address) => iface.addAddress({ address })))
        assertSameSet(await iface.listAddresses(), first, `listAddresses() after ${first.length} concurrent adds`)
        const removed = first.filter((_, i) => i % 2 === 0)
        await Promise.all([...removed.map((address) => iface.removeAddress({ address })), ...second.map((address) => iface.addAddress({ address }))])
        const expected = [...first.filter((_, i) => i % 2 === 1), ...second]
        assertSameSet(await iface.listAddresses(), expected, `listAddresses() after ${removed.length} removes and ${second.length} adds at once`)
      })
    })

    check('open() of an existing interface adopts it with its addresses', skip.reopen, async () => {
      await withInterface(async ({ iface, info, addresses, create, open }) => {
        const kept = addresses.slice(0, 3)
        for (const address of kept) await iface.addAddress({ address })
        // The first instance is left open, as after a crash: the second must adopt what is there.
        const second = await create()
        const adoptedInfo = await open(second)
        assert.equal(adoptedInfo.adopted, true, 'open() of an existing interface must report adopted: true')
        assert.equal(adoptedInfo.name, info.name, 'the adopted interface has another name')
        assertSameSet(await second.listAddresses(), kept, 'listAddresses() of the adopting instance')
        await second.addAddress({ address: addresses[3]! })
        assertSameSet(await second.listAddresses(), addresses.slice(0, 4), 'listAddresses() after adding through the adopting instance')
      })
    })

    check('close() may be called more than once; close({ removeInterface: false }) leaves the interface for the next open() to adopt', false, async () => {
      await withInterface(async ({ iface, create, open, addresses }) => {
        await iface.addAddress({ address: addresses[0]! })
        await iface.close({ removeInterface: false })
        await iface.close({ removeInterface: false })
        const opened = await create()
        const reopened = await open(opened)
        if (!skip.reopen) {
          assert.equal(reopened.adopted, true, 'after close({ removeInterface: false }) (cleanup.remove_interface_on_stop: false) the interface stays: a new open() must adopt it')
          assertSameSet(await opened.listAddresses(), [addresses[0]!], 'listAddresses() after close({ removeInterface: false }) and a new open()')
        }
        await opened.close({ removeInterface: true })
        await opened.close({ removeInterface: true })
        await opened.close()
      })
    })

    check('close({ removeInterface: true }) deletes what open() made', skip.removeInterface, async () => {
      await withInterface(async ({ iface, create, open, addresses }) => {
        for (const address of addresses.slice(0, 3)) await iface.addAddress({ address })
        await iface.close({ removeInterface: true })
        const next = await create()
        const info = await open(next)
        assert.equal(info.adopted, false, 'after close({ removeInterface: true }) a new open() must not adopt anything')
        assertSameSet(await next.listAddresses(), [], 'listAddresses() after the interface was removed and made again')
      })
    })

    check('open({ adoptOnly: true }) adopts what a stopped instance left, and its close({ removeInterface: true }) deletes it (what ngrokd cleanup does)', skip.reopen || skip.removeInterface, async () => {
      await withInterface(async ({ iface, create, addresses }) => {
        await iface.addAddress({ address: addresses[0]! })
        // what a crash leaves (the interface and its addresses; a dead process holds no session of it): cleanup opens
        // another instance with adoptOnly and removes
        await iface.close({ removeInterface: false })
        const cleanup = await create()
        const adopted = await cleanup.open({ ...openOptions, adoptOnly: true })
        assert.equal(adopted.adopted, true, 'open({ adoptOnly: true }) of an existing interface must adopt it')
        assert.notEqual(adopted.absent, true, 'open({ adoptOnly: true }) of an existing interface must not report it absent')
        assertSameSet(await cleanup.listAddresses(), [addresses[0]!], 'listAddresses() of the instance that adopted it')
        await cleanup.close({ removeInterface: true })
        const after = await create()
        const found = await after.open({ ...openOptions, adoptOnly: true })
        // absent (a driver that honours adoptOnly), or made afresh (one that ignores it): never adopted again
        assert.ok(found.absent === true || found.adopted === false, `after close({ removeInterface: true }) of the adopting instance, open({ adoptOnly: true }) found the interface again (${JSON.stringify(found)}): ngrokd cleanup would say it removed what it left`)
        if (!found.absent) assertSameSet(await after.listAddresses(), [], 'listAddresses() after the adopting instance removed the interface')
      })
    })

    check('the system shows the addresses listAddresses() lists, read without the driver (inspect)', skip.systemView, async () => {
      await withInterface(async ({ iface, info, env, addresses }) => {
        const ours = new Set(addresses)
        const seen = async (): Promise<string[]> => (await (suite.inspect ?? systemAddresses)({ info, env })).filter((a) => ours.has(a))
        const [a, b, c] = addresses as [string, string, string]
        await iface.applyAddresses({ add: [a, b, c], remove: [] })
        const how = suite.inspect ? 'inspect()' : `os.networkInterfaces()[${JSON.stringify(info.name)}] (an interface that is down or has no carrier is not listed there: give the suite an inspect() that reads the system another way)`
        assertSameSet(await seen(), [a, b, c], `${how} after adding 3 addresses`)
        await iface.removeAddress({ address: b })
        assertSameSet(await seen(), [a, c], `${how} after removing one`)
        if (!skip.removeInterface) {
          await iface.close({ removeInterface: true })
          const after = await seen().catch((e: unknown) => {
            throw new Error(`inspect() threw after close({ removeInterface: true }) (${e instanceof Error ? e.message : String(e)}): for an interface that no longer exists it must answer [] (see the guide, "Writing an ngrokd driver")`, { cause: e })
          })
          assertSameSet(after, [], `${how} after close({ removeInterface: true })`)
        }
      })
    })

    check('an already-aborted AbortSignal rejects and changes nothing', skip.abort, async () => {
      await withInterface(async ({ iface, create, open, addresses }) => {
        const [a, b] = addresses as [string, string]
        const aborted = AbortSignal.abort()
        await iface.addAddress({ address: a })
        await assertRejectsCoded(() => iface.addAddress({ address: b, signal: aborted }), 'addAddress() with an aborted signal', { abort: true })
        await assertRejectsCoded(() => iface.removeAddress({ address: a, signal: aborted }), 'removeAddress() with an aborted signal', { abort: true })
        await assertRejectsCoded(() => iface.applyAddresses({ add: [b], remove: [a], signal: aborted }), 'applyAddresses() with an aborted signal', { abort: true })
        await assertRejectsCoded(() => iface.listAddresses({ signal: aborted }), 'listAddresses() with an aborted signal', { abort: true })
        assertSameSet(await iface.listAddresses(), [a], 'listAddresses() after aborted calls')
        await iface.close({ removeInterface: true })
        // what close() left would be adopted below and blamed on the aborted open(): said as close()'s fault first
        const probe = await create()
        assert.equal((await open(probe)).adopted, false, 'close({ removeInterface: true }) left the interface for the next open() to adopt')
        await probe.close({ removeInterface: true })
        const next = await create()
        await assertRejectsCoded(() => open(next, aborted), 'open() with an aborted signal', { abort: true })
        await assertRejectsCoded(() => next.listAddresses(), 'listAddresses() after an aborted open()')
        const third = await create()
        assert.equal((await open(third)).adopted, false, 'an aborted open() must not make the interface')
      })
    })

    check('a malformed address rejects with a coded error', skip.invalidAddress, async () => {
      await withInterface(async ({ iface }) => {
        for (const address of ['not-an-address', '300.1.2.3', '']) {
          await assertRejectsCoded(() => iface.addAddress({ address }), `addAddress(${JSON.stringify(address)})`)
        }
        assertSameSet(await iface.listAddresses(), [], 'listAddresses() after refused adds')
      })
    })

    check('an IPv6 address rejects with a coded error unless the ipv6 capability is set', skip.ipv6, async () => {
      await withInterface(async ({ iface }) => {
        if (iface.capabilities.ipv6) return
        await assertRejectsCoded(() => iface.addAddress({ address: 'fd00::2' }), 'addAddress(fd00::2) without the ipv6 capability')
      })
    })

    check('diagnose() returns well-formed checks and changes nothing', skip.diagnose, async () => {
      await withInterface(async ({ iface, addresses }) => {
        await iface.addAddress({ address: addresses[0]! })
        await checkDiagnose(() => iface.diagnose(), `${name} diagnose()`)
        assertSameSet(await iface.listAddresses(), [addresses[0]!], 'listAddresses() after diagnose()')
      })
    })

    suite.additionalTests?.({ options: openOptions, withInterface })
  })
}

/** The IPv4 addresses the OS lists on the interface named `info.name` (none when it lists no such interface). */
function systemAddresses({ info }: { info: InterfaceInfo }): string[] {
  return (networkInterfaces()[info.name] ?? []).filter((a) => a.family === 'IPv4').map((a) => a.address)
}

/** `count` host addresses of `cidr`, skipping the network address and the first host. */
function hostsOf(cidr: string, count: number): string[] {
  const s = parseSubnet(cidr)
  const out: string[] = []
  for (let a = s.network + 2; a < s.broadcast && out.length < count; a++) out.push(intToIpv4(a))
  if (out.length < 6) throw new Error(`subnet ${cidr} is too small for the interface suite: use a /28 or larger, or pass addresses`)
  return out
}
