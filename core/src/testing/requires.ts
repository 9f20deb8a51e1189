import { accessSync, constants, existsSync, readFileSync } from 'node:fs'
import { release } from 'node:os'
import { delimiter, join } from 'node:path'

/** `false` when the requirement is met, else the reason a test is skipped. */
export type SkipReason = string | false

/**
 * Gating helpers in the spirit of typescript-eslint's `dependencyConstraints`. Each returns
 * `false` or the reason, which fits both runners' skip options:
 *
 * ```ts
 * describe('linux-netlink', { skip: requires.all(requires.linux(), requires.root()) }, () => …) // node:test
 * describe.skipIf(requires.root())('linux-netlink', () => …)                                    // vitest
 * ```
 */
export const requires = {
  /** Effective uid 0. */
  root(): SkipReason {
    return process.getuid?.() === 0 ? false : 'needs root (run the tests as root or with sudo)'
  },

  /** One of the given `process.platform` values. */
  platform(...platforms: NodeJS.Platform[]): SkipReason {
    return platforms.includes(process.platform) ? false : `needs ${platforms.join(' or ')} (this is ${process.platform})`
  },

  linux(): SkipReason {
    return requires.platform('linux')
  },

  /** An executable named `name` on PATH. */
  command(name: string): SkipReason {
    const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean)
    const exts = process.platform === 'win32' ? (process.env.PATHEXT ?? '.EXE;.CMD').split(';') : ['']
    for (const dir of dirs) {
      for (const ext of exts) {
        try {
          accessSync(join(dir, name + ext), constants.X_OK)
          return false
        } catch {
          // not here
        }
      }
    }
    return `needs the \`${name}\` command on PATH`
  },

  /** A Linux kernel module that is loaded, built in, or installed for the running kernel. */
  kernelModule(name: string): SkipReason {
    const linux = requires.linux()
    if (linux) return linux
    if (existsSync(`/sys/module/${name.replaceAll('-', '_')}`)) return false
    const dir = `/lib/modules/${release()}`
    const pattern = new RegExp(`(^|/)${name.replace(/[-_]/g, '[-_]')}\\.ko(\\.(xz|zst|gz))?(:|$)`, 'm')
    for (const file of ['modules.builtin', 'modules.dep']) {
      try {
        if (pattern.test(readFileSync(join(dir, file), 'utf8'))) return false
      } catch {
        // no such list on this system
      }
    }
    return `needs the ${name} kernel module (not loaded, built in or installed for ${release()})`
  },

  /** Can make a throwaway network namespace: Linux, root and `unshare`. */
  networkNamespace(): SkipReason {
    return requires.all(requires.linux(), requires.root(), requires.command('unshare'))
  },

  /** The first unmet requirement, or `false` when all are met. */
  all(...reasons: SkipReason[]): SkipReason {
    return reasons.find((r): r is string => r !== false) ?? false
  },
}
