import { definePlugin } from '@ngrokd/core/plugin'
import { revertResolvedLink } from './resolved-link.js'
import { systemBusAddress } from './systemd-resolved.js'
import { DnsNameResolver, NOT_IN_USE } from './dns-name-resolver.js'
import { DEFAULT_TTL, DNS_PORT, DnsResponder, LISTEN_EXPECTED, parseListenAddress } from './dns-responder.js'

export interface DnsOptions {
  /** Addresses to answer on (`host`, `host:port`, `[v6]:port`); default the interface's own address, port 53. */
  listen?: string[]
  /** Seconds the answers may be cached. */
  ttl: number
  /** Suffixes served even with no endpoint under them (answered NXDOMAIN rather than REFUSED). */
  suffixes: string[]
}

/**
 * An authoritative DNS responder for the endpoint hostnames, and the name resolver `dns` that
 * publishes through it instead of editing the hosts file.
 *
 * ```yaml
 * plugins: [dns]
 * names: { resolver: dns }
 * ```
 */
export default definePlugin<DnsOptions>({
  name: 'dns',
  version: '1.0.0',
  ngrokd: '^1.0.0',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      listen: {
        type: 'array',
        minItems: 1,
        items: { type: 'string', minLength: 1, 'x-ngrokd': { expected: LISTEN_EXPECTED } },
        description: 'addresses to answer on, e.g. 10.107.0.1 or 127.0.0.1:5353; default the interface address, port 53',
        // what an error says is expected (checkOptions judges each address)
        'x-ngrokd': { expected: `a list of addresses, each ${LISTEN_EXPECTED}` },
      },
      ttl: { type: 'integer', minimum: 0, maximum: 3600, default: DEFAULT_TTL, description: 'seconds the answers may be cached' },
      suffixes: { type: 'array', items: { type: 'string', format: 'hostname' }, default: [], description: 'suffixes served even with no endpoint under them, each a DNS name (corp.internal)' },
    },
  },
  // a bad address stops the start (and a reload) with the entry named, instead of failing the plugin
  checkOptions(options) {
    options.listen?.forEach((text, i) => parseListenAddress(text, `options.listen.${i}`))
  },
  register(ctx) {
    const configured = ctx.options.listen?.map((text) => parseListenAddress(text)) // checked at load: does not throw here
    const responder = new DnsResponder({ ttl: ctx.options.ttl, suffixes: ctx.options.suffixes, logger: ctx.logger })
    const resolver = new DnsNameResolver(responder, { logger: ctx.logger })
    ctx.provideNameResolver('dns', () => resolver)
    ctx.hooks.onStart(async () => {
      const link = await ctx.interface()
      const route = { link, hostsFile: () => ctx.hostsFileResolver(), platform: ctx.platform, stateDir: ctx.stateDir }
      try {
        await responder.start(configured ?? [{ host: link.address, port: DNS_PORT }])
      } catch (e) {
        // the names must still resolve: through the hosts file, and the plugin is reported degraded with why (unless
        // the daemon publishes through a resolver of its own: then the names are its, and so is the hosts block)
        if (resolver.inUse) await resolver.useHostsFile(`the responder could not listen (${(e as Error).message})`, route)
        throw e
      }
      const where = responder.addresses.map((a) => `${a.host}:${a.port}`).join(', ')
      if (!resolver.inUse) {
        // nothing is published here, so nothing is routed here either: the machine's resolver and the hosts block are
        // left to the resolver the daemon uses
        ctx.logger.warn(`dns: ${NOT_IN_USE}: the responder on ${where} answers no name (REFUSED) and the machine's resolver is not pointed at it; set names.resolver: dns to publish the endpoint names by DNS`)
        return
      }
      ctx.logger.info(`answering DNS on ${where}`)
      // the machine's resolver asks it through systemd-resolved, else the names go to the hosts file
      await resolver.attach(route)
    })
    // the daemon made its interface again (`ip link del`): resolved keys links by index, so register the new one
    ctx.hooks.afterReconcile(async () => resolver.relink(await ctx.interface())) // in the background: resolved never holds a reconcile
    ctx.hooks.onStop(async () => {
      await resolver.detach()
      await responder.close()
    })
    ctx.addDoctorChecks(() => resolver.diagnose())
  },
  // macOS resolver files and Windows NRPT rules, which outlive the interface, are ngrokd cleanup's own; on Linux
  // systemd-resolved forgets a link's DNS servers and routing domains with the link, so only a kept one is reverted
  async cleanup(ctx) {
    if (ctx.platform !== 'linux' || ctx.interface?.index === undefined) return []
    return (await revertResolvedLink(ctx.interface.index, systemBusAddress())) ? [`systemd-resolved's DNS settings of ${ctx.interface.name}`] : []
  },
})

export { DnsResponder, parseListenAddress, DEFAULT_TTL, DNS_PORT, type DnsResponderOptions, type ListenAddress } from './dns-responder.js'
export { DnsNameResolver, type AttachOptions } from './dns-name-resolver.js'
export { ResolvedLink, type ResolvedLinkOptions } from './resolved-link.js'
export { SystemdResolved, systemBusAddress, linkDnsAddress, routingDomains, type LinkDnsAddress, type LinkDomain, type LinkState } from './systemd-resolved.js'
export { answerQuery, type Zone } from './dns-answer.js'
