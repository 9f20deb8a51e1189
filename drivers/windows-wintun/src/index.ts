import { defineDriver, NgrokdError } from '@ngrokd/core/driver'

/**
 * The windows-wintun interface driver (Wintun adapters via wintun.dll and iphlpapi). Only the package skeleton exists so far:
 * the driver is its own issue. Selecting it gives a coded error that names the working alternative.
 */
export default defineDriver({
  name: 'windows-wintun',
  provides: ['interface'],
  platforms: ['win32'],
  ngrokd: '^1.0.0',
  async create() {
    throw new NgrokdError('NGROKD_ERR_DRIVER_UNSUPPORTED_PLATFORM', 'windows-wintun is not implemented yet', {
      hint: 'set net.driver to a third-party driver for Windows',
    })
  },
})
