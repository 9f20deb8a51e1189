import { defineDriver, NgrokdError, type Check } from '@ngrokd/core/driver'
import { DarwinLoopbackAliasInterface, diagnoseDarwinLoopbackAlias } from './darwin-loopback-alias-interface.js'
import { loadLibSystem } from './darwin/load-libsystem.js'
import { diagnoseLinuxLoopbackAlias, LinuxLoopbackAliasInterface } from './linux-loopback-alias-interface.js'
import { DEFAULT_LOOPBACK_SUBNET, type LoopbackAliasInterface, type LoopbackAliasInterfaceOptions, type LoopbackAliasOptions } from './loopback-alias-interface.js'

/** The implementation for `platform` (default `process.platform`); refuses other OSes with a coded error. */
export function createLoopbackAliasInterface(options: LoopbackAliasInterfaceOptions & { platform?: NodeJS.Platform }): LoopbackAliasInterface {
  const platform = options.platform ?? process.platform
  if (platform === 'linux') return new LinuxLoopbackAliasInterface(options)
  if (platform === 'darwin') return new DarwinLoopbackAliasInterface(options)
  throw unsupported(platform)
}

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
    return { interface: createLoopbackAliasInterface({ logger: ctx.logger, platform: ctx.platform, ...options, stateDir: options.stateDir ?? ctx.stateDir }) }
  },
  async diagnose(ctx, options): Promise<Check[]> {
    const stateDir = options.stateDir ?? ctx.stateDir
    const subnet = options.loopbackSubnet ?? DEFAULT_LOOPBACK_SUBNET
    if (ctx.platform === 'linux') return diagnoseLinuxLoopbackAlias({ stateDir, subnet })
    if (ctx.platform === 'darwin') return diagnoseDarwinLoopbackAlias({ stateDir, subnet, syscalls: () => loadLibSystem('loopback-alias') })
    const e = unsupported(ctx.platform)
    return [{ id: 'loopback-alias.platform', status: 'fail', summary: e.message.replace(/^loopback-alias: /, ''), code: e.code }]
  },
})

function unsupported(platform: NodeJS.Platform): NgrokdError {
  return new NgrokdError('NGROKD_ERR_DRIVER_UNSUPPORTED_PLATFORM', `loopback-alias: runs on linux and darwin, not ${platform}`, {
    hint: 'use the platform driver (net.driver: auto)',
  })
}

export { LoopbackAliasInterface, DEFAULT_LOOPBACK_SUBNET, type LoopbackAliasOptions, type LoopbackAliasInterfaceOptions } from './loopback-alias-interface.js'
export { LinuxLoopbackAliasInterface } from './linux-loopback-alias-interface.js'
export { DarwinLoopbackAliasInterface } from './darwin-loopback-alias-interface.js'
export type { DarwinSyscalls, IfaddrsEntry } from './darwin/darwin-syscalls.js'
