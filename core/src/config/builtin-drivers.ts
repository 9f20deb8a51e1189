/** Short names users may write in `net.driver`, and the packages behind them. */
export const builtinDrivers = {
  'linux-netlink': '@ngrokd/driver-linux-netlink',
  'darwin-utun': '@ngrokd/driver-darwin-utun',
  'windows-wintun': '@ngrokd/driver-windows-wintun',
  'loopback-alias': '@ngrokd/driver-loopback-alias',
} as const satisfies Record<string, string>

export type BuiltinDriverName = keyof typeof builtinDrivers

/**
 * The systems a built-in driver is for, published as its package's `os` field (scripts/pack.mjs writes
 * it from here): npm installs each of these drivers, optional dependencies of the `ngrokd` package, only
 * there. A driver not listed installs everywhere (loopback-alias is the fallback of `auto`).
 */
export const builtinDriverOs: Partial<Record<BuiltinDriverName, readonly NodeJS.Platform[]>> = {
  'linux-netlink': ['linux'],
  'darwin-utun': ['darwin'],
  'windows-wintun': ['win32'],
}

/** Whether `name` is a built-in driver whose package does not install on `platform`. */
export function builtinDriverIsForOtherOs(name: string, platform: NodeJS.Platform): name is BuiltinDriverName {
  const os = builtinDriverOs[name as BuiltinDriverName]
  return os !== undefined && !os.includes(platform)
}

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
