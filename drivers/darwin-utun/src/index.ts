import { defineDriver, NgrokdError } from '@ngrokd/core/driver'

/**
 * The darwin-utun interface driver (utun interfaces via the PF_SYSTEM control socket). Only the package skeleton exists so far:
 * the driver is its own issue. Selecting it gives a coded error that names the working alternative.
 */
export default defineDriver({
  name: 'darwin-utun',
  provides: ['interface'],
  platforms: ['darwin'],
  ngrokd: '^1.0.0',
  async create() {
    throw new NgrokdError('NGROKD_ERR_DRIVER_UNSUPPORTED_PLATFORM', 'darwin-utun is not implemented yet', {
      hint: 'use net.driver: loopback-alias (lo0 aliases) on macOS until darwin-utun lands',
    })
  },
})
