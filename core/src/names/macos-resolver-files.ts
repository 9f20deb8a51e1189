import { readdir, readFile, unlink } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { ipFamily } from '../util/ip-family.js'
import { NgrokdError, PermissionError } from '../errors/ngrokd-error.js'
import { fsyncDir, writeFileAtomic } from '../util/atomic-file.js'

/** Where macOS looks for per-domain resolver configuration — resolver(5). */
export const MACOS_RESOLVER_DIR = '/etc/resolver'

/**
 * First line of every file ngrokd writes: only files that start with it are ever replaced or
 * removed, so a file someone else put there for the same domain is left alone.
 */
export const RESOLVER_FILE_MARKER = '# Managed by ngrokd: removed when ngrokd stops. Do not edit.'

/**
 * Second line of a file written for one daemon, naming its state_dir (one daemon per state_dir): two instances on one
 * Mac each replace and remove only their own files. A marked file without it (an older ngrokd's) is any instance's.
 */
const OWNER_PREFIX = '# state_dir: '

export interface ResolverTarget {
  /** The DNS server for these domains (an IPv4 or IPv6 address). */
  nameserver: string
  /** Its port. */
  port: number
  /** The state_dir of the daemon the files are for; when given, files another daemon's line names are left alone. */
  owner?: string
}

export interface ResolverFilesChange {
  /** Suffixes whose file was written (new or changed). */
  written: string[]
  /** Suffixes whose file already said the same. */
  unchanged: string[]
  /** Suffixes whose (ngrokd) file was removed because the suffix is no longer wanted. */
  removed: string[]
  /** Suffixes left alone, and why (a file that is not ngrokd's, a name that cannot be a file). */
  skipped: Array<{ suffix: string; reason: string }>
}

/**
 * The text of `/etc/resolver/<suffix>` — resolver(5): a `nameserver` line and a `port` line,
 * after the marker comment (and the owner's, when there is one; `#` starts a comment in resolver(5)).
 */
export function resolverFileText({ nameserver, port, owner }: ResolverTarget): string {
  if (ipFamily(nameserver) === 0) throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `resolver files: nameserver ${JSON.stringify(nameserver)} is not an IP address`)
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `resolver files: port ${JSON.stringify(port)} is not between 1 and 65535`)
  if (owner !== undefined && /[\r\n]/.test(owner)) throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `resolver files: state_dir ${JSON.stringify(owner)} holds a line break`)
  return `${RESOLVER_FILE_MARKER}\n${owner === undefined ? '' : `${OWNER_PREFIX}${owner}\n`}nameserver ${nameserver}\nport ${port}\n`
}

/** True for the text of a file ngrokd wrote. */
export function isNgrokdResolverFile(text: string): boolean {
  return text.startsWith(`${RESOLVER_FILE_MARKER}\n`)
}

/** The state_dir a file ngrokd wrote names; undefined for one that names none (an older ngrokd's). */
export function resolverFileOwner(text: string): string | undefined {
  const second = text.split('\n', 2)[1]
  return second?.startsWith(OWNER_PREFIX) ? second.slice(OWNER_PREFIX.length) : undefined
}

/** True for a file ngrokd wrote for `owner` (or for any daemon: it names none; or `owner` is not given). */
function isOwnedBy(text: string, owner: string | undefined): boolean {
  if (!isNgrokdResolverFile(text)) return false
  const named = resolverFileOwner(text)
  return owner === undefined || named === undefined || named === owner
}

/**
 * A domain suffix usable as a file name in /etc/resolver: lowercase DNS labels (`prod`,
 * `demo-app.ngrok.app`), never `.`/`..` or a path.
 */
export function isResolverSuffix(suffix: string): boolean {
  return suffix.length <= 253 && /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(suffix)
}

/**
 * Makes `dir` hold exactly one ngrokd file per suffix, each pointing at `target`: writes missing
 * or different ones (atomically, 0644; the temp file is made in the parent folder, since macOS
 * reads every file in `dir` as a resolver), and removes ngrokd files of suffixes no longer wanted.
 * Files without the marker are never touched, nor, with `target.owner`, the files of another daemon.
 *
 * ```ts
 * await syncResolverFiles({ suffixes: ['prod', 'demo'], target: { nameserver: '127.0.0.1', port: 5354 } })
 * ```
 */
export async function syncResolverFiles({ dir = MACOS_RESOLVER_DIR, suffixes, target }: { dir?: string; suffixes: readonly string[]; target: ResolverTarget }): Promise<ResolverFilesChange> {
  const text = resolverFileText(target)
  const change: ResolverFilesChange = { written: [], unchanged: [], removed: [], skipped: [] }
  const wanted = new Set<string>()
  for (const suffix of suffixes) {
    if (isResolverSuffix(suffix)) wanted.add(suffix)
    else change.skipped.push({ suffix, reason: 'not a lowercase DNS name' })
  }
  for (const suffix of [...wanted].sort()) {
    const path = join(dir, suffix)
    const current = await readIfExists(path)
    if (current === text) {
      change.unchanged.push(suffix)
      continue
    }
    if (current !== undefined && !isNgrokdResolverFile(current)) {
      change.skipped.push({ suffix, reason: `${path} exists and was not written by ngrokd` })
      continue
    }
    if (current !== undefined && !isOwnedBy(current, target.owner)) {
      change.skipped.push({ suffix, reason: `${path} is written for the ngrokd of state_dir ${resolverFileOwner(current)} (another instance serves ${suffix})` })
      continue
    }
    try {
      await writeFileAtomic(path, text, { mode: 0o644, tempDir: dirname(dir), dirMode: 0o755 })
    } catch (e) {
      throw fileError('write', path, e)
    }
    change.written.push(suffix)
  }
  for (const suffix of await ngrokdFiles(dir, target.owner)) {
    if (wanted.has(suffix)) continue
    await removeFile(join(dir, suffix))
    change.removed.push(suffix)
  }
  if (change.removed.length > 0) await fsyncDir(dir)
  return change
}

/** Removes every ngrokd file (of `owner`, when given) from `dir` (on stop) and returns their suffixes. Others are left alone. */
export async function removeResolverFiles({ dir = MACOS_RESOLVER_DIR, owner }: { dir?: string; owner?: string } = {}): Promise<string[]> {
  const ours = await ngrokdFiles(dir, owner)
  for (const suffix of ours) await removeFile(join(dir, suffix))
  if (ours.length > 0) await fsyncDir(dir)
  return ours
}

/** Suffixes of the files in `dir` that ngrokd wrote (for `owner`, when given; none when `dir` does not exist). */
export async function ngrokdFiles(dir: string, owner?: string): Promise<string[]> {
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw fileError('read', dir, e)
  }
  const ours: string[] = []
  for (const name of names.sort()) {
    const text = await readIfExists(join(dir, name)).catch(() => undefined) // a folder or an unreadable file is not ours
    if (text !== undefined && isOwnedBy(text, owner)) ours.push(name)
  }
  return ours
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw fileError('read', path, e)
  }
}

async function removeFile(path: string): Promise<void> {
  try {
    await unlink(path)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fileError('remove', path, e)
  }
}

function fileError(action: string, path: string, cause: unknown): NgrokdError {
  const code = (cause as NodeJS.ErrnoException).code
  const message = `resolver files: cannot ${action} ${path}: ${code ?? (cause as Error).message}`
  if (code === 'EACCES' || code === 'EPERM') return new PermissionError(message, { cause, hint: `${MACOS_RESOLVER_DIR} belongs to root: run ngrokd with sudo` })
  return new NgrokdError('NGROKD_ERR_RESOLVER_FILE', message, { cause, hint: `check ${dirname(path)}` })
}
