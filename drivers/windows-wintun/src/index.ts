import { defineDriver, NgrokdError, type DriverContext } from '@ngrokd/core/driver'
import { diagnoseWindowsWintun } from './diagnose.js'
import type { WindowsNetApi, WintunApi } from './windows-net-api.js'
import { WindowsWintunInterface, type WindowsWintunOptions } from './windows-wintun-interface.js'
import { resolveWintunDllPath, systemRoot, trustedWintunLoader } from './wintun-dll-path.js'

/**
 * The `windows-wintun` interface driver: endpoint addresses on a Wintun adapter (wintun.dll + iphlpapi through
 * koffi), or on the loopback pseudo-interface when wintun.dll is not installed. koffi is loaded on first use.
 *
 * ```yaml
 * net:
 *   driver: windows-wintun          # what `auto` picks on Windows
 *   driver_options:
 *     wintun_dll: C:\Program Files\ngrokd\wintun.dll   # the default
 *     mode: auto                    # or wintun (fail without the DLL), or loopback
 * ```
 */
export default defineDriver<WindowsWintunOptions>({
  name: 'windows-wintun',
  provides: ['interface'],
  platforms: ['win32'],
  ngrokd: '^1.0.0',
  requirements: [
    { kind: 'privilege', name: 'Administrator' },
    { kind: 'library', name: 'wintun.dll (https://www.wintun.net)', optional: true },
  ],
  async create(ctx, options = {}) {
    const { net, loadWintun, wintunDllPath } = await platformCalls(options)
    return { interface: new WindowsWintunInterface({ mode: options.mode, logger: ctx.logger, net, loadWintun, wintunDllPath }) }
  },
  async diagnose(_ctx: DriverContext, options) {
    const { net, loadWintun, wintunDllPath } = await platformCalls(options)
    return diagnoseWindowsWintun({ mode: options.mode ?? 'auto', net, loadWintun, wintunDllPath })
  },
})

async function platformCalls(options: Partial<WindowsWintunOptions>): Promise<{ net: WindowsNetApi; loadWintun: () => WintunApi; wintunDllPath: string }> {
  const wintunDllPath = resolveWintunDllPath(options.wintun_dll)
  const root = systemRoot()
  const { loadWindowsNetApi, loadWintun } = await import('./ffi/win32.js')
  let net: WindowsNetApi
  try {
    net = loadWindowsNetApi(root)
  } catch (cause) {
    throw new NgrokdError('NGROKD_ERR_DRIVER_LIBRARY', `windows-wintun: cannot load iphlpapi.dll from ${root}\\System32: ${(cause as Error).message}`, {
      cause,
      hint: 'windows-wintun runs on Windows only (check %SystemRoot%); on other systems use net.driver: auto',
    })
  }
  return { net, loadWintun: await trustedWintunLoader(wintunDllPath, () => loadWintun(wintunDllPath, root)), wintunDllPath }
}

export { WindowsWintunInterface, TUNNEL_TYPE, type WindowsWintunOptions, type WindowsWintunInterfaceOptions } from './windows-wintun-interface.js'
export type { WindowsWintunMode } from './diagnose.js'
export type { WindowsNetApi, WintunApi, Handle } from './windows-net-api.js'
export { resolveWintunDllPath, defaultWintunDllPath } from './wintun-dll-path.js'
