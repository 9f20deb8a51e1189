import { stat as fsStat } from 'node:fs/promises'
import { setTimeout as delay } from 'node:timers/promises'
import { win32 } from 'node:path'
import type { Check } from '../contracts/check.js'
import { silentLogger, type Logger } from '../contracts/logger.js'
import type { NameRecord, NameResolver } from '../contracts/name-resolver.js'
import { HostsFileNameResolver } from './hosts-file-name-resolver.js'

/**
 * The hosts file Windows reads: `%SystemRoot%\System32\drivers\etc\hosts` (the Tcpip `DataBasePath` default).
 * The managed block keeps the file's CRLF line endings (hosts-block.ts takes the file's own line ending).
 */
export function windowsHostsPath(env: NodeJS.ProcessEnv = process.env): string {
  return win32.join(env.SystemRoot ?? env.windir ?? 'C:\\Windows', 'System32', 'drivers', 'etc', 'hosts')
}

/**
 * Error codes Node gives on Windows when another process holds the file (antivirus scanning it, the DNS Client
 * service reading it): libuv maps ERROR_SHARING_VIOLATION and ERROR_LOCK_VIOLATION to EBUSY and
 * ERROR_ACCESS_DENIED (also what a pending delete or a replace over an open file gives) to EPERM; EACCES is
 * what some calls report for the same. graceful-fs retries renames on exactly these three on Windows.
 */
export const SHARING_VIOLATION_CODES: ReadonlySet<string> = new Set(['EBUSY', 'EPERM', 'EACCES'])

export interface SharingRetryPolicy {
  /** Tries in all, the first included. */
  attempts: number
  /** Wait before the second try; doubled each time up to `maxDelayMs`. */
  firstDelayMs: number
  maxDelayMs: number
}

/** 6 tries over about 1.5 s: an antivirus scan of a small file is done well before. */
export const DEFAULT_SHARING_RETRY: SharingRetryPolicy = { attempts: 6, firstDelayMs: 50, maxDelayMs: 800 }

export interface SharingRetryOptions {
  policy?: SharingRetryPolicy
  /** Injected by tests; default node:timers/promises setTimeout. */
  sleep?: (ms: number) => Promise<unknown>
  /** Called before each wait, for a log line. */
  onRetry?: (info: { attempt: number; delayMs: number; code: string }) => void
}

/** The Node error code of `e` or of any error in its cause chain that is a sharing violation, if any. */
export function sharingViolationCode(e: unknown): string | undefined {
  for (let cur: unknown = e, depth = 0; cur && depth < 5; depth++, cur = (cur as { cause?: unknown }).cause) {
    const code = (cur as { code?: unknown }).code
    if (typeof code === 'string' && SHARING_VIOLATION_CODES.has(code)) return code
  }
  return undefined
}

/** Runs `fn`, trying again with exponential backoff while it fails with a sharing violation; bounded by the policy. */
export async function withSharingRetries<T>(fn: () => Promise<T>, options: SharingRetryOptions = {}): Promise<T> {
  const policy = options.policy ?? DEFAULT_SHARING_RETRY
  const sleep = options.sleep ?? delay
  let wait = policy.firstDelayMs
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn()
    } catch (e) {
      const code = sharingViolationCode(e)
      if (code === undefined || attempt >= policy.attempts) throw e
      options.onRetry?.({ attempt, delayMs: wait, code })
      await sleep(wait)
      wait = Math.min(wait * 2, policy.maxDelayMs)
    }
  }
}

export interface WindowsHostsFileNameResolverOptions {
  stateDir: string
  /** A named instance edits its own block. */
  instance?: string
  logger?: Logger
  /** Default windowsHostsPath(env). */
  path?: string
  env?: NodeJS.ProcessEnv
  /** Retries of a whole publish (and open, list) while the file is held by another process. */
  retry?: SharingRetryOptions
  /** The rename over the hosts file (default renameSync); tests inject one that fails like a held file. */
  rename?: (from: string, to: string) => void
  /** Flushes the DNS client's cache; default DnsFlushResolverCache through koffi (windows-dns-flush.ts). */
  flushDns?: () => Promise<boolean> | boolean
  /** stat of the hosts file, for the read-only check in diagnose(). */
  stat?: (path: string) => Promise<{ mode: number }>
}

/**
 * The hosts-file name resolver as Windows needs it: the `%SystemRoot%` path, retries while antivirus or the DNS
 * client holds the file (each atomic replace, then the whole publish, which is idempotent), and a DNS cache flush
 * after every change so programs see it at once. Everything else (the block, CRLF, crash recovery) is
 * HostsFileNameResolver's.
 *
 * ```ts
 * const names = new WindowsHostsFileNameResolver({ stateDir: 'C:\\ProgramData\\ngrokd', logger })
 * await names.open()
 * await names.publish({ records: [{ hostname: 'api.prod', address: '10.107.0.2' }] })
 * ```
 */
export class WindowsHostsFileNameResolver implements NameResolver {
  readonly resolver = 'hosts-file'
  readonly path: string
  readonly #inner: HostsFileNameResolver
  readonly #logger: Logger
  readonly #retry: SharingRetryOptions
  readonly #flushDns: () => Promise<boolean> | boolean
  readonly #stat: (path: string) => Promise<{ mode: number }>

  constructor(options: WindowsHostsFileNameResolverOptions) {
    const env = options.env ?? process.env
    this.path = options.path ?? windowsHostsPath(env)
    this.#logger = options.logger ?? silentLogger
    this.#retry = {
      ...options.retry,
      onRetry: (info) => {
        this.#logger.info({ path: this.path, ...info }, `hosts-file: ${this.path} is held by another process (${info.code}); trying again in ${info.delayMs} ms`)
        options.retry?.onRetry?.(info)
      },
    }
    // A held file fails the rename with EPERM/EACCES (the whole publish is tried again, with backoff) or
    // EBUSY (the shared resolver then rewrites the file in place, with a backup first, as for a bind mount).
    this.#inner = new HostsFileNameResolver({
      path: this.path,
      stateDir: options.stateDir,
      logger: this.#logger,
      ...(options.instance ? { instance: options.instance } : {}),
      ...(options.rename ? { rename: options.rename } : {}),
      renameOverOpenFile: false, // MoveFileExW refuses a target held open, by this process too
    })
    this.#flushDns = options.flushDns ?? defaultFlushDns(env)
    this.#stat = options.stat ?? fsStat
  }

  open(options: { signal?: AbortSignal } = {}): Promise<void> {
    return withSharingRetries(() => this.#inner.open(options), this.#retry)
  }

  async publish(options: { records: readonly NameRecord[]; signal?: AbortSignal }): Promise<{ changed: boolean }> {
    const result = await withSharingRetries(() => this.#inner.publish(options), this.#retry)
    if (result.changed) await this.#flush()
    return result
  }

  list(): Promise<NameRecord[]> {
    return withSharingRetries(() => this.#inner.list(), this.#retry)
  }

  close(): Promise<void> {
    return this.#inner.close()
  }

  async diagnose(): Promise<Check[]> {
    const checks = await this.#inner.diagnose()
    try {
      const { mode } = await this.#stat(this.path)
      // Node on Windows shows the read-only attribute as a mode without write bits
      if ((mode & 0o222) === 0) {
        checks.push({
          id: 'hosts-file.windows-read-only',
          status: 'fail',
          summary: `${this.path} has the read-only attribute`,
          hint: `clear it (attrib -r "${this.path}") if you set it on purpose against changes; ngrokd only edits its own block`,
          code: 'NGROKD_ERR_HOSTS_FILE',
        })
      }
    } catch {
      // a missing file is reported by the access check above
    }
    return checks
  }

  async #flush(): Promise<void> {
    try {
      if (!(await this.#flushDns())) this.#logger.warn('hosts-file: DnsFlushResolverCache said no; cached names expire on their own')
    } catch (e) {
      this.#logger.warn({ err: e }, 'hosts-file: cannot flush the DNS cache; cached names expire on their own')
    }
  }
}

/** DnsFlushResolverCache through koffi on Windows; elsewhere nothing to flush. */
function defaultFlushDns(env: NodeJS.ProcessEnv): () => Promise<boolean> {
  let flush: (() => boolean) | undefined
  return async () => {
    if (process.platform !== 'win32') return true
    flush ??= (await import('./windows-dns-flush.js')).loadDnsFlush(env.SystemRoot ?? env.windir ?? 'C:\\Windows')
    return flush()
  }
}
