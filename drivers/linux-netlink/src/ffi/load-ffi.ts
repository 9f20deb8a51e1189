import { NgrokdError } from '@ngrokd/core/driver'

export type Ffi = typeof import('./libc.js')

let loaded: Promise<Ffi> | undefined

/**
 * Imports ffi/libc.ts (and so koffi) on first use. Fails with a coded error off Linux or when
 * koffi's prebuilt binary is missing (an install with `--omit=optional`).
 */
export function loadFfi(): Promise<Ffi> {
  if (process.platform !== 'linux') {
    return Promise.reject(
      new NgrokdError('NGROKD_ERR_DRIVER_UNSUPPORTED_PLATFORM', `linux-netlink: runs on linux only, not ${process.platform}`, {
        hint: 'use the driver for this platform (net.driver: auto)',
      }),
    )
  }
  loaded ??= import('./libc.js').catch((e: unknown) => {
    loaded = undefined
    throw new NgrokdError('NGROKD_ERR_DRIVER_UNSUPPORTED_PLATFORM', 'linux-netlink: the koffi FFI module did not load', {
      cause: e,
      hint: `reinstall without --omit=optional so koffi's prebuilt binary (@koromix/koffi-linux-${process.arch}) is installed`,
    })
  })
  return loaded
}
