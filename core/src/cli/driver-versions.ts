import { createRequire } from 'node:module'
import { builtinDriverIsForOtherOs, builtinDriverOs, builtinDrivers } from '../config/builtin-drivers.js'

/** The version of an installed package, or undefined when it is not installed beside ngrokd. */
export type InstalledVersion = (pkg: string) => string | undefined

const installedBesideNgrokd: InstalledVersion = (pkg) => {
  try {
    return (createRequire(import.meta.url)(`${pkg}/package.json`) as { version: string }).version
  } catch {
    return undefined
  }
}

/**
 * `ngrokd version`'s lines about the built-in drivers: one per driver this system can run, with its
 * version or what to do when it is missing, then one naming the drivers made for other systems
 * (npm does not install those here, and none would run).
 */
export function driverVersionLines(platform: NodeJS.Platform, installed: InstalledVersion = installedBesideNgrokd): string[] {
  const lines: string[] = []
  const others: string[] = []
  for (const [name, pkg] of Object.entries(builtinDrivers)) {
    if (builtinDriverIsForOtherOs(name, platform)) {
      others.push(`${name} (${builtinDriverOs[name]!.join(', ')})`)
      continue
    }
    const version = installed(pkg)
    lines.push(`driver ${name} ${version ?? 'not installed: reinstall ngrokd with its optional dependencies (npm install -g ngrokd)'}`)
  }
  if (others.length) lines.push(`drivers for other systems, not usable on ${platform}: ${others.join(', ')}`)
  return lines
}
