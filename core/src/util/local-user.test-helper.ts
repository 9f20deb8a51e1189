import { execFile, execFileSync } from 'node:child_process'

/** The second local user tests plant files as; made with `useradd` on first use. */
export const PLANTER = 'ngrokd-planter'

export interface LocalUser {
  name: string
  uid: number
  gid: number
}

function lookup(name: string): LocalUser | undefined {
  try {
    const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim())
    const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim())
    return { name, uid, gid }
  } catch {
    return undefined
  }
}

/**
 * A real second local user (a system account without a home or a login shell), for tests of what
 * another user could plant; created with `useradd` when missing. Needs root: undefined otherwise.
 */
export function localUser(name: string = PLANTER): LocalUser | undefined {
  if (process.getuid?.() !== 0) return undefined
  const existing = lookup(name)
  if (existing) return existing
  try {
    execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', '--user-group', name], { stdio: 'ignore' })
  } catch {
    // another test process may have made it first: look again
  }
  return lookup(name)
}

/** Why a test of another user's files cannot run here, or false when it can. */
export function localUserSkip(): string | false {
  if (process.getuid?.() !== 0) return 'needs root (to make a second local user and own files as root)'
  return localUser() ? false : 'useradd could not make a second local user'
}

/** Why `user` cannot run this process's node (one installed under a folder only root may enter), or false when it can. */
export function cannotRunNode(user: LocalUser): Promise<string | false> {
  return new Promise((done) =>
    execFile(process.execPath, ['-e', '0'], { uid: user.uid, gid: user.gid }, (e) => done(e ? `${user.name} cannot run ${process.execPath} (${(e as NodeJS.ErrnoException).code ?? e.message})` : false)),
  )
}
