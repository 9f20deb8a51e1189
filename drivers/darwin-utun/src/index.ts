/**
 * @ngrokd/driver-darwin-utun — the macOS interface driver: a utun interface made through the
 * PF_SYSTEM kernel control socket, addresses through SIOCAIFADDR, all through libSystem (koffi).
 * Loads on every OS: koffi is imported only when `create()`'s interface first calls the kernel or
 * `diagnose()` runs.
 *
 * ```ts
 * import driver from '@ngrokd/driver-darwin-utun'
 * const { interface: iface } = await driver.create(ctx, { name: 'ngrokd0', subnet: '10.107.0.0/16' })
 * const info = await iface!.open({ name: 'ngrokd0', subnet: '10.107.0.0/16' }) // info.name: 'utun4'
 * ```
 */
import { defineDriver, type Check } from '@ngrokd/core/driver'
import type { DarwinUtunOptions } from './darwin-utun-interface.js'

export type { DarwinUtunOptions, DarwinUtunInterfaceOptions, DarwinUtunInterface } from './darwin-utun-interface.js'

export default defineDriver<DarwinUtunOptions>({
  name: 'darwin-utun',
  provides: ['interface'],
  platforms: ['darwin'],
  ngrokd: '^1.0.0',
  requirements: [
    { kind: 'privilege', name: 'root' },
    { kind: 'library', name: 'koffi' },
  ],
  async create(ctx, options) {
    const { DarwinUtunInterface } = await import('./darwin-utun-interface.js')
    return { interface: new DarwinUtunInterface({ ...options, logger: ctx.logger }) }
  },
  async diagnose(ctx, options): Promise<Check[]> {
    if (ctx.platform !== 'darwin') {
      return [{ id: 'darwin-utun.platform', status: 'fail', summary: `darwin-utun runs on darwin only, not ${ctx.platform}`, hint: 'use net.driver: auto', code: 'NGROKD_ERR_DRIVER_UNSUPPORTED_PLATFORM' }]
    }
    const [{ diagnoseDarwinUtun }, { loadLibSystem }] = await Promise.all([import('./diagnose.js'), import('@ngrokd/driver-loopback-alias/darwin')])
    return diagnoseDarwinUtun({
      syscalls: () => loadLibSystem('darwin-utun'),
      ...(options.name === undefined ? {} : { name: options.name }),
      ...(options.subnet === undefined ? {} : { subnet: options.subnet }),
    })
  },
})
