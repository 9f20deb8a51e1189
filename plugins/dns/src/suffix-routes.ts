import {
  formatError,
  MACOS_RESOLVER_DIR,
  ngrokdResolverFiles,
  removeResolverFiles,
  syncResolverFiles,
  type Check,
  type Logger,
  type ResolverTarget,
  type WindowsNrpt,
} from '@ngrokd/core/plugin'

/**
 * How the machine's resolver is told to ask the responder for the served suffixes, one per OS:
 * systemd-resolved's per-link domains (resolved-link.ts), macOS's /etc/resolver files, Windows'
 * NRPT rules. Each follows the suffixes after every reconcile and takes everything back at stop.
 */
export interface SuffixRoute {
  /**
   * The suffixes served now; the route changes only what differs. Resolves to why the OS refused them for good (the
   * route is then taken back whole, and the names must go another way), else to nothing (a failure that may pass is
   * logged and tried again at the next call).
   */
  setSuffixes(suffixes: ReadonlySet<string>): Promise<string | void>
  /** At stop: nothing of ngrokd's stays. */
  revert(): Promise<void>
  /** Doctor: what the OS holds now. */
  check(): Promise<Check>
}

/**
 * macOS: one `/etc/resolver/<suffix>` file per suffix (resolver(5)), each naming the responder's
 * address and port, written and removed by core's resolver-files module (only files that carry its
 * marker). mDNSResponder watches the folder: no flush needed.
 */
export class ResolverFilesRoute implements SuffixRoute {
  /** Why each suffix has no file, as last said: said at warn once while it stays the same, then at debug. */
  readonly #skipped = new Map<string, string>()

  /** `target.owner`: the daemon's state_dir, named in each file, so that another instance's files are left alone. */
  constructor(
    private readonly target: ResolverTarget,
    private readonly logger: Logger,
    private readonly dir: string = MACOS_RESOLVER_DIR,
  ) {}

  async setSuffixes(suffixes: ReadonlySet<string>): Promise<void> {
    try {
      const change = await syncResolverFiles({ dir: this.dir, suffixes: [...suffixes], target: this.target })
      if (change.written.length || change.removed.length) {
        this.logger.info(`dns: ${this.dir} sends ${[...suffixes].sort().join(', ') || 'nothing'} to ${this.target.nameserver}:${this.target.port}`)
      }
      const skipped = new Map(change.skipped.map((s) => [s.suffix, s.reason]))
      for (const [suffix, reason] of skipped) this.logger[this.#skipped.get(suffix) === reason ? 'debug' : 'warn'](`dns: no resolver file for ${suffix}: ${reason}`)
      this.#skipped.clear()
      for (const [suffix, reason] of skipped) this.#skipped.set(suffix, reason)
    } catch (e) {
      this.logger.warn({ err: e }, `dns: cannot update ${this.dir} (tried again after the next reconcile): ${formatError(e)}`)
    }
  }

  async revert(): Promise<void> {
    await removeResolverFiles({ dir: this.dir, ...(this.target.owner === undefined ? {} : { owner: this.target.owner }) })
  }

  async check(): Promise<Check> {
    const files = await ngrokdResolverFiles(this.dir, this.target.owner).catch(() => [])
    return files.length
      ? { id: 'dns.resolver-files', status: 'ok', summary: `${this.dir} sends ${files.join(', ')} to ${this.target.nameserver}:${this.target.port}` }
      : { id: 'dns.resolver-files', status: 'warn', summary: `${this.dir} holds no ngrokd resolver file yet`, hint: 'it is written after the first reconcile with an endpoint; check the daemon log for a write error' }
  }
}

/**
 * Windows: one NRPT rule per suffix (the DNS client's Name Resolution Policy Table, in the
 * registry) pointing at the responder, which must answer on port 53 (NRPT has no port). Rules of
 * suffixes gone are deleted; all of them at stop. Core's WindowsNrpt writes and flushes, and keeps the record in
 * state_dir by which a start after a crash (or `ngrokd cleanup`) deletes the rules left behind.
 */
export class NrptRoute implements SuffixRoute {
  /** The suffixes whose rules exist: at first those a run killed before its stop left (the record's), to be removed. */
  #sent: Set<string>
  /** Whether #sent's rules were written by this run, with its servers: a killed run's point at the servers it had. */
  #written = false

  constructor(
    private readonly nrpt: WindowsNrpt,
    private readonly servers: readonly string[],
    private readonly logger: Logger,
  ) {
    this.#sent = new Set(nrpt.recorded().map((namespace) => namespace.slice(1)))
  }

  async setSuffixes(suffixes: ReadonlySet<string>): Promise<void> {
    const gone = [...this.#sent].filter((s) => !suffixes.has(s))
    // a suffix a killed run left is written again: its rule names that run's servers (another subnet, another listen:)
    const added = [...suffixes].filter((s) => !this.#written || !this.#sent.has(s))
    if (!gone.length && !added.length) return
    try {
      if (gone.length) this.nrpt.remove(gone)
      if (added.length) this.nrpt.apply({ suffixes: added, servers: this.servers })
      this.#sent = new Set(suffixes)
      this.#written = true
      this.logger.info(`dns: NRPT sends ${[...suffixes].sort().join(', ') || 'nothing'} to ${this.servers.join(', ')}`)
    } catch (e) {
      this.logger.warn({ err: e }, `dns: cannot update the NRPT rules (tried again after the next reconcile): ${formatError(e)}`)
    }
  }

  async revert(): Promise<void> {
    this.nrpt.remove([...this.#sent])
    this.#sent = new Set()
  }

  async check(): Promise<Check> {
    if (this.nrpt.groupPolicyOverrides()) {
      return { id: 'dns.nrpt', status: 'warn', summary: 'domain Group Policy defines NRPT rules: Windows ignores the local ones ngrokd writes', hint: 'ask the domain administrator for rules for the endpoint suffixes, or use names.resolver: hosts-file' }
    }
    return { id: 'dns.nrpt', status: 'ok', summary: `NRPT sends ${[...this.#sent].sort().join(', ') || 'nothing yet'} to ${this.servers.join(', ')}` }
  }
}
