import type { Logger } from '../contracts/logger.js'
import type { NameRecord } from '../contracts/name-resolver.js'
import { HostsFileNameResolver, type HostsFileNameResolverOptions } from './hosts-file-name-resolver.js'
import { flushMacosResolverCache, type CommandOutcome } from './macos-resolver-cache.js'

export interface MacosHostsFileNameResolverOptions extends HostsFileNameResolverOptions {
  /** Makes macOS forget cached names; default `dscacheutil -flushcache` and a HUP to mDNSResponder. */
  flushCache?: (options: { signal?: AbortSignal }) => Promise<CommandOutcome[]>
}

/**
 * The hosts-file name resolver as macOS needs it: after every change of the file, the resolver cache is
 * flushed (without it mDNSResponder keeps answering the old address until the entry expires). A failed
 * flush is logged once per command and never fails the publish: the name is in the file either way.
 */
export class MacosHostsFileNameResolver extends HostsFileNameResolver {
  readonly #flushCache: (options: { signal?: AbortSignal }) => Promise<CommandOutcome[]>
  readonly #log: Logger | undefined
  readonly #warned = new Set<string>()

  constructor(options: MacosHostsFileNameResolverOptions) {
    super(options)
    this.#flushCache = options.flushCache ?? ((o) => flushMacosResolverCache(o))
    this.#log = options.logger
  }

  override async publish(options: { records: readonly NameRecord[]; signal?: AbortSignal }): Promise<{ changed: boolean }> {
    const result = await super.publish(options)
    if (result.changed) await this.#flush()
    return result
  }

  async #flush(): Promise<void> {
    for (const outcome of await this.#flushCache({})) {
      if (outcome.ok) {
        this.#warned.delete(outcome.command)
      } else if (!this.#warned.has(outcome.command)) {
        this.#warned.add(outcome.command)
        this.#log?.warn({ command: outcome.command, error: outcome.error }, `hosts-file: ${outcome.command} failed (${outcome.error}); macOS may answer old addresses until its cache expires`)
      }
    }
  }
}
