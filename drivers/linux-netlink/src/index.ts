/**
 * @ngrokd/driver-linux-netlink — the Linux interface driver. Loads on every OS: koffi is imported
 * only when `create()` opens a socket or `diagnose()` runs.
 *
 * ```ts
 * import driver from '@ngrokd/driver-linux-netlink'
 * const { interface: iface } = await driver.create(ctx, { name: 'ngrokd0', subnet: '10.107.0.0/16' })
 * await iface!.open({ name: 'ngrokd0', subnet: '10.107.0.0/16' })
 * ```
 */
import { defineDriver } from '@ngrokd/core/driver'
import type { LinuxNetlinkOptions } from './linux-netlink-interface.js'

export type { LinuxNetlinkOptions, LinuxNetlinkInterfaceOptions, LinuxNetlinkInterface, AddressBatchError } from './linux-netlink-interface.js'

export default defineDriver<LinuxNetlinkOptions>({
  name: 'linux-netlink',
  provides: ['interface'],
  platforms: ['linux'],
  ngrokd: '^1.0.0',
  requirements: [
    { kind: 'privilege', name: 'CAP_NET_ADMIN' },
    { kind: 'library', name: 'koffi' },
    { kind: 'kernel-module', name: 'dummy', optional: true }, // without it: a port-less bridge
  ],
  async create(ctx, options) {
    const { LinuxNetlinkInterface } = await import('./linux-netlink-interface.js')
    return { interface: new LinuxNetlinkInterface({ ...options, logger: ctx.logger }) }
  },
  async diagnose(_ctx, options) {
    const { diagnoseLinuxNetlink } = await import('./diagnose.js')
    return diagnoseLinuxNetlink({ name: options.name, subnet: options.subnet, force: options.force === true })
  },
})
