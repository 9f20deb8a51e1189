/** Short names users may write in `net.driver`, and the packages behind them. */
export const builtinDrivers = {
  'linux-netlink': '@ngrokd/driver-linux-netlink',
  'darwin-utun': '@ngrokd/driver-darwin-utun',
  'windows-wintun': '@ngrokd/driver-windows-wintun',
  'loopback-alias': '@ngrokd/driver-loopback-alias',
} as const satisfies Record<string, string>

export type BuiltinDriverName = keyof typeof builtinDrivers

/**
 * What `net.driver: auto` means on each OS (Linux and macOS without privilege fall back: see
 * resolveAutoDriver). Windows uses windows-wintun, which itself takes a Wintun adapter when
 * wintun.dll loads and the loopback pseudo-interface otherwise.
 */
export const platformDefaults: Partial<Record<NodeJS.Platform, BuiltinDriverName>> = {
  linux: 'linux-netlink',
  darwin: 'darwin-utun',
  win32: 'windows-wintun',
}
