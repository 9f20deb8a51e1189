import { readFileSync, statSync, type Stats } from 'node:fs'
import { lstat, mkdir, readlink, realpath, stat } from 'node:fs/promises'
import { dirname, isAbsolute, join, parse, relative, resolve, sep } from 'node:path'
import { NgrokdError } from '../errors/ngrokd-error.js'
import { untrustedWindowsBecause } from './windows-security.js'
import { systemFileSecurity } from './windows-security-ffi.js'
import { nearestExisting } from './nearest-existing.js'

/** Group- and other-write bits — <sys/stat.h> S_IWGRP | S_IWOTH. */
const GROUP_OR_OTHER_WRITE = 0o022
/** The sticky bit — <sys/stat.h> S_ISVTX: only an entry's owner (or root) may rename or remove it. */
const STICKY = 0o1000

/**
 * True when ngrokd must refuse what another user could have planted: it runs as root — the machine's
 * root, not the uid 0 of a user namespace that a user made (`unshare --user --map-root-user`, the demo
 * run as a user), which holds only that user's rights over the machine's files and is judged as that
 * user is. Linux only tells the two apart; the answer is kept (a process's uid map is written once).
 * On Windows, where there is no uid, it is {@link runsElevated}: an elevated administrator or LocalSystem.
 */
export function runsAsRoot(): boolean {
  if (process.platform === 'win32') return runsElevated()
  if (process.getuid?.() !== 0) return false
  if (asMachineRoot === undefined) {
    let uidMap: string | undefined
    try {
      uidMap = readFileSync('/proc/self/uid_map', 'utf8')
    } catch {
      uidMap = undefined // no /proc (or not Linux): root is root
    }
    asMachineRoot = uidMap === undefined || rootMapsToMachineRoot(uidMap)
  }
  return asMachineRoot
}
let asMachineRoot: boolean | undefined

/**
 * Windows: whether this process's token holds Administrators enabled (CheckTokenMembership, windows-security-ffi.ts),
 * kept once known. When that cannot be asked the answer is true: the trusted-path rule then holds, the stricter one.
 */
export function runsElevated(isElevated: () => boolean = () => systemFileSecurity().isElevated()): boolean {
  if (elevated === undefined) {
    try {
      elevated = isElevated()
    } catch {
      elevated = true
    }
  }
  return elevated
}
let elevated: boolean | undefined

/**
 * Whether uid 0 of this user namespace is the machine's root, by its `/proc/<pid>/uid_map`
 * (user_namespaces(7): lines of `inside outside count`; the first namespace maps 0 to 0). A map
 * without uid 0, or one that does not parse, counts as root: the stricter rule then holds.
 */
export function rootMapsToMachineRoot(uidMap: string): boolean {
  for (const line of uidMap.split('\n')) {
    const [inside, outside, count] = line.trim().split(/\s+/).map(Number)
    if (inside === undefined || outside === undefined || count === undefined || [inside, outside, count].some(Number.isNaN)) continue
    if (inside <= 0 && 0 < inside + count) return outside - inside === 0
  }
  return true
}

/** `uid 1001 (eve)`, with the name from /etc/passwd when it has one. */
function describeOwner(uid: number): string {
  try {
    const line = readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .find((l) => l.split(':')[2] === String(uid))
    const name = line?.split(':')[0]
    return name ? `${name} (uid ${uid})` : `uid ${uid}`
  } catch {
    return `uid ${uid}`
  }
}

const octal = (mode: number) => `0${(mode & 0o7777).toString(8).padStart(3, '0')}`

export interface TrustedPathOptions {
  /** What the file is, for the error: `config file`, `driver module`, `control socket`. */
  what: string
  /** The user besides root whose files are trusted. Default: this process's uid. Not used on Windows. */
  uid?: number
  /** Whose rule applies: Windows judges owners and DACLs (windows-security.ts). Default `process.platform`. */
  platform?: NodeJS.Platform
  /** On Windows, a path's owner and DACL as SDDL. Default the system's (windows-security-ffi.ts). */
  readSddl?: (path: string) => string
  /**
   * The file is code (a program, a module, a library): on Windows no folder on its way up but the volume's root may let
   * others add files or folders either (untrustedWindowsBecause's `holdsCode`). POSIX refuses those folders anyway.
   */
  code?: boolean
  /**
   * Judge `path` as a directory above what will be made in it (a sticky, root-owned one such as /tmp passes), not as
   * the file itself: {@link makeTrustedDirs}.
   */
  above?: boolean
}

/**
 * Refuses a file that someone other than root (or `uid`) could have written or replaced, in the way
 * sshd's StrictModes and sudo judge their files: the file and every directory above it must be owned
 * by root or `uid`, and none may be writable by group or others — except a directory that is sticky
 * and owned by root (such as /tmp), where nobody else may rename or remove what is in it. Symbolic
 * links are followed and the real path is judged; so is the directory of every link on the way from
 * `path` to it, as a link another user could re-point would swap the file after the check. Resolves
 * with the real path.
 *
 * ```ts
 * if (runsAsRoot()) file = await assertTrustedPath(file, { what: 'config file' })
 * ```
 * @throws NgrokdError `NGROKD_ERR_PATH_UNTRUSTED` naming the file or directory, its owner, its mode and the fix.
 */
export async function assertTrustedPath(path: string, options: TrustedPathOptions): Promise<string> {
  if ((options.platform ?? process.platform) === 'win32') return assertTrustedWindowsPath(path, options)
  const uid = options.uid ?? process.getuid?.() ?? 0
  const real = await realpath(path)
  const refuse = (at: string, why: string, fix: string, isTarget: boolean): NgrokdError =>
    new NgrokdError('NGROKD_ERR_PATH_UNTRUSTED', `refusing ${options.what} ${real}${real !== path ? ` (${path})` : ''}: ${at} ${why}; as root ngrokd uses only files that root alone can change`, {
      hint: `${fix}${isTarget ? '' : ' (and so for every directory above the file)'}, or move the file under a directory only root can write, such as /etc/ngrokd`,
    })
  await judgeUpward(real, !options.above, uid, (p, why, fix, isTarget) => refuse(isTarget ? p : `its directory ${p}`, why, fix, isTarget))
  for (const { link, dir, owner } of await linksOnTheWay(path)) {
    // in a sticky directory (/tmp) the link's owner may replace it
    if (owner !== 0 && owner !== uid) throw refuse(`the link ${link}`, `is owned by ${describeOwner(owner)}`, `chown -h root ${link}`, true)
    await judgeUpward(dir, false, uid, (p, why, fix) => refuse(`the link ${link} is in ${p}, which`, why, fix, false))
  }
  return real
}

/**
 * `mkdir -p path` as root, never through anything another user made: what exists of `path` must pass
 * {@link assertTrustedPath} first — itself, or the nearest folder above it that exists, judged as a directory above
 * (a sticky /tmp passes) —, then each missing folder is made one at a time (mkdir never follows a link as its last
 * part), and one that appeared meanwhile (a link another user raced into a sticky /tmp) must be a directory, not a
 * link, that only root (or this user) can change. Windows: the caller's (an elevated ngrokd makes its folders with a
 * protected DACL).
 * @throws NgrokdError `NGROKD_ERR_PATH_UNTRUSTED`; an mkdir's own error as it is.
 */
export async function makeTrustedDirs(path: string, options: TrustedPathOptions & { mode?: number }): Promise<void> {
  const target = resolve(path)
  const at = nearestExisting(target)
  await assertTrustedPath(at, at === target ? options : { ...options, above: true })
  const uid = options.uid ?? process.getuid?.() ?? 0
  // there already (judged above): a directory, or the same EEXIST a recursive mkdir gives for a file
  if (at === target) return void (await mkdir(target, { recursive: true }))
  let dir = at
  for (const part of relative(at, target).split(sep)) {
    dir = join(dir, part)
    try {
      await mkdir(dir, { mode: options.mode ?? 0o755 })
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
      const st = await lstat(dir)
      const why = st.isSymbolicLink() ? { why: 'is a link', fix: `rm ${dir}` } : !st.isDirectory() ? { why: 'is not a directory', fix: `rm ${dir}` } : untrustedBecause(dir, st, true, uid)
      if (why) {
        throw new NgrokdError('NGROKD_ERR_PATH_UNTRUSTED', `refusing ${options.what} ${target}: ${dir} appeared while it was being made, and ${why.why}; as root ngrokd makes nothing through what another user made`, {
          hint: `${why.fix}, or choose a path under a directory only root can write, such as /var/lib`,
        })
      }
    }
  }
}

/**
 * {@link assertTrustedPath} of a file that may not be there yet (a socket, a file ngrokd creates): a missing one
 * is judged by the directory it would be made in, which then decides who could plant it. Resolves with the
 * file's real path, or `path` when it is missing.
 */
export async function assertTrustedPathOrDir(path: string, options: TrustedPathOptions): Promise<string> {
  try {
    return await assertTrustedPath(path, options)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e
  }
  await assertTrustedPath(dirname(path), { ...options, what: `${options.what}'s directory` })
  return path
}

/** Why another user could change the file or directory `p` of status `st` (the rule of {@link assertTrustedPath}), or undefined. */
function untrustedBecause(p: string, st: Stats, isTarget: boolean, uid: number): { why: string; fix: string } | undefined {
  const owned = st.uid === 0 || st.uid === uid
  // a socket's write bits let others connect to it (control.group), not change it
  const writable = (st.mode & GROUP_OR_OTHER_WRITE) !== 0 && !(isTarget && st.isSocket())
  const stickyRoot = !isTarget && st.isDirectory() && (st.mode & STICKY) !== 0 && st.uid === 0
  if (owned && (!writable || stickyRoot)) return undefined
  const writers = [(st.mode & 0o020) !== 0 ? 'its group' : '', (st.mode & 0o002) !== 0 ? 'everyone' : ''].filter(Boolean).join(' and ')
  const why = `${!owned ? `is owned by ${describeOwner(st.uid)}` : `is writable by ${writers}`} (owner ${describeOwner(st.uid)}, mode ${octal(st.mode)})`
  return { why, fix: !owned ? `chown root ${p}` : `chmod go-w ${p}` }
}

/**
 * Whether a user other than root (or `uid`) may add a file or folder in the directory `dir`: on POSIX it is another
 * user's or group/others may write it (sticky or not); on Windows, elevated, its owner or an allow ACE lets someone
 * other than SYSTEM, Administrators and TrustedInstaller add to it or change it.
 */
export function othersMayAddTo(dir: string, { platform = process.platform, uid = process.getuid?.() ?? 0, readSddl = (p: string) => systemFileSecurity().readSddl(p) }: Pick<TrustedPathOptions, 'platform' | 'uid' | 'readSddl'> = {}): boolean {
  if (platform === 'win32') return untrustedWindowsBecause(dir, readSddl(dir), false, true) !== undefined
  const st = statSync(dir)
  return (st.uid !== 0 && st.uid !== uid) || (st.mode & GROUP_OR_OTHER_WRITE) !== 0
}

/**
 * One file or directory (not a link) inside a tree already judged from above, by the rule of {@link assertTrustedPath}.
 * @throws NgrokdError `NGROKD_ERR_PATH_UNTRUSTED`
 */
export function judgeEntry(path: string, st: Stats, what: string, { uid = process.getuid?.() ?? 0, platform = process.platform, readSddl = (p: string) => systemFileSecurity().readSddl(p) }: Pick<TrustedPathOptions, 'uid' | 'platform' | 'readSddl'> = {}): void {
  if (platform === 'win32') return judgeWindowsEntry(path, what, readSddl)
  const problem = untrustedBecause(path, st, true, uid)
  if (!problem) return
  throw new NgrokdError('NGROKD_ERR_PATH_UNTRUSTED', `refusing ${what} ${path}: it ${problem.why}; as root ngrokd uses only files that root alone can change`, {
    hint: `${problem.fix}, or move the module under a directory only root can write, such as /etc/ngrokd`,
  })
}

/** Judges `start` and every directory above it by the rule of {@link assertTrustedPath}; `refuse` makes the error. */
async function judgeUpward(start: string, startIsTarget: boolean, uid: number, refuse: (p: string, why: string, fix: string, isTarget: boolean) => NgrokdError): Promise<void> {
  for (let p = start, isTarget = startIsTarget; ; isTarget = false) {
    const problem = untrustedBecause(p, await stat(p), isTarget, uid)
    if (problem) throw refuse(p, problem.why, problem.fix, isTarget)
    const parent = dirname(p)
    if (parent === p) return
    p = parent
  }
}

/** Most links followed on one path, as the kernel allows (MAXSYMLINKS, <linux/namei.h>). */
const MAX_LINKS = 40

/**
 * Every symbolic link met on the way from `path` to the file it names, each with the real directory it is in and
 * its owner, by walking the path a component at a time as the kernel does.
 */
async function linksOnTheWay(path: string): Promise<Array<{ link: string; dir: string; owner: number }>> {
  const found: Array<{ link: string; dir: string; owner: number }> = []
  const components = (p: string) => p.split(sep).filter(Boolean)
  let pending = components(resolve(path))
  let at = parse(resolve(path)).root
  while (pending.length > 0) {
    const next = join(at, pending.shift()!)
    const st = await lstat(next)
    if (!st.isSymbolicLink()) {
      at = next
      continue
    }
    found.push({ link: next, dir: at, owner: st.uid })
    if (found.length > MAX_LINKS) throw Object.assign(new Error(`too many symbolic links on the way from ${path}`), { code: 'ELOOP' })
    const target = await readlink(next)
    pending = [...components(target), ...pending]
    if (isAbsolute(target)) at = parse(target).root
  }
  return found
}

/** How an elevated ngrokd says why it refuses, on Windows. */
const WINDOWS_RULE = 'elevated, ngrokd uses only files that SYSTEM and Administrators alone can change'
const WINDOWS_PLACE = 'or move the file under a folder only Administrators can write, such as %ProgramData%\\ngrokd'

/**
 * {@link assertTrustedPath} on Windows: the real path and every folder above it are judged by their owner and DACL
 * ({@link untrustedWindowsBecause}); so is every folder above a link (or junction) met on the way, whose re-pointing
 * would swap the file after the check.
 */
async function assertTrustedWindowsPath(path: string, options: TrustedPathOptions): Promise<string> {
  const readSddl = options.readSddl ?? ((p: string) => systemFileSecurity().readSddl(p))
  const real = await realpath(path)
  const refuse = (at: string, why: string, fix: string, isTarget: boolean): NgrokdError =>
    new NgrokdError('NGROKD_ERR_PATH_UNTRUSTED', `refusing ${options.what} ${real}${real !== path ? ` (${path})` : ''}: ${at} ${why}; ${WINDOWS_RULE}`, {
      hint: `${fix}${isTarget ? '' : ' (and so for every folder above the file)'}, ${WINDOWS_PLACE}`,
    })
  const code = options.code ?? false
  judgeUpwardWindows(real, true, code, readSddl, (p, why, fix, isTarget) => refuse(isTarget ? p : `its folder ${p}`, why, fix, isTarget))
  for (const { link, dir } of await linksOnTheWay(path)) {
    judgeUpwardWindows(dir, false, code, readSddl, (p, why, fix) => refuse(`the link ${link} is in ${p}, which`, why, fix, false))
  }
  return real
}

function judgeUpwardWindows(start: string, startIsTarget: boolean, code: boolean, readSddl: (path: string) => string, refuse: (p: string, why: string, fix: string, isTarget: boolean) => NgrokdError): void {
  for (let p = start, isTarget = startIsTarget; ; isTarget = false) {
    const parent = dirname(p)
    // C:\ lets users make folders: one of theirs is searched only for a package the installation lacks (load-module.ts
    // refuses a missing one where others may add it)
    const problem = untrustedWindowsBecause(p, readSddl(p), isTarget, code && parent !== p)
    if (problem) throw refuse(p, problem.why, problem.fix, isTarget)
    if (parent === p) return
    p = parent
  }
}

/** {@link judgeEntry} on Windows: one file or folder inside a tree already judged from above, by its owner and DACL. */
export function judgeWindowsEntry(path: string, what: string, readSddl: (path: string) => string): void {
  const problem = untrustedWindowsBecause(path, readSddl(path), true)
  if (!problem) return
  throw new NgrokdError('NGROKD_ERR_PATH_UNTRUSTED', `refusing ${what} ${path}: it ${problem.why}; ${WINDOWS_RULE}`, { hint: `${problem.fix}, ${WINDOWS_PLACE}` })
}
