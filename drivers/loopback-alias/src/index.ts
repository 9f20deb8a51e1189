import { defineDriver } from '@ngrokd/core/driver'
import { DEFAULT_LOOPBACK_SUBNET, LoopbackAliasInterface, type LoopbackAliasOptions } from './loopback-alias-interface.js'
import { diagnoseLoopbackAlias } from './diagnose.js'

/**
 * The `loopback-alias` interface driver: endpoint addresses from 127.0.0.0/8. No privilege and no
 * OS change on Linux; lo0 aliases (root) on macOS. koffi is loaded only on macOS, on first use.
 *
 * ```yaml
 * net:
 *   driver: loopback-alias
 *   subnet: 127.107.0.0/16
 * ```
 */
export default defineDriver<LoopbackAliasOptions>({
  name: 'loopback-alias',
  provides: ['interface'],
  platforms: ['linux', 'darwin'],
  ngrokd: '^1.0.0',
  requirements: [{ kind: 'privilege', name: 'root (macOS only, to add lo0 aliases)', optional: true }],
  async create(ctx, options = {}) {
    return {
      interface: new LoopbackAliasInterface({ logger: ctx.logger, platform: ctx.platform, ...options, stateDir: options.stateDir ?? ctx.stateDir }),
    }
  },
  async diagnose(ctx, options) {
    return diagnoseLoopbackAlias({
      platform: ctx.platform,
      stateDir: options.stateDir ?? ctx.stateDir,
      subnet: options.loopbackSubnet ?? DEFAULT_LOOPBACK_SUBNET,
      syscalls: async () => (await import('./darwin/libsystem.js')).loadLibSystem(),
    })
  },
})

export { LoopbackAliasInterface, DEFAULT_LOOPBACK_SUBNET, type LoopbackAliasOptions, type LoopbackAliasInterfaceOptions } from './loopback-alias-interface.js'
export type { DarwinSyscalls, IfaddrsEntry } from './darwin/darwin-syscalls.js'
