import { NgrokdError } from '../errors/ngrokd-error.js'

/** What a plugin's control route may answer: GET reads, POST changes (the control API has no other method). */
export const PLUGIN_ROUTE_METHODS = ['GET', 'POST'] as const

/**
 * A route's path below its plugin's prefix: `/` and segments of letters, digits, `.`, `_`, `~` and `-`, each beginning
 * with a letter or digit, joined by `/` (`/last`, `/zone/records`). The leading `/` is what parts it from the plugin's
 * name: `pro` with `be/served` would be `/v1/plugins/probe/served`.
 */
const PLUGIN_ROUTE_PATH = /^(\/[A-Za-z0-9][A-Za-z0-9._~-]*)+$/

/** Where plugin `plugin`'s routes live: every one of them starts with this (the daemon's own never do). */
export function pluginRoutePrefix(plugin: string): `/v1/plugins/${string}/` {
  return `/v1/plugins/${plugin}/`
}

/** Why `method path` is no route a plugin may add, or undefined when it is one. */
function routeProblem(method: unknown, path: unknown): string | undefined {
  if (!(PLUGIN_ROUTE_METHODS as readonly unknown[]).includes(method)) return `method ${JSON.stringify(method)} is not ${PLUGIN_ROUTE_METHODS.join(' or ')}`
  if (typeof path !== 'string' || !PLUGIN_ROUTE_PATH.test(path)) return `path ${JSON.stringify(path)} must be "/" then segments of letters, digits, ".", "_", "~" and "-" (each beginning with a letter or digit) joined by "/", such as "/last"`
  return undefined
}

/**
 * The control route `ctx.addRoute(method, path)` of plugin `plugin` adds: `METHOD /v1/plugins/<plugin><path>`.
 * Throws NGROKD_ERR_PLUGIN_INVALID for a method or path the rule above does not allow (in `register()`: the plugin fails).
 */
export function pluginRouteKey(plugin: string, method: unknown, path: unknown): `${(typeof PLUGIN_ROUTE_METHODS)[number]} /${string}` {
  const problem = routeProblem(method, path)
  if (problem !== undefined) {
    throw new NgrokdError('NGROKD_ERR_PLUGIN_INVALID', `plugin "${plugin}": addRoute(${JSON.stringify(method)}, ${JSON.stringify(path)}): ${problem}`, {
      hint: `a plugin's routes are GET or POST at ${pluginRoutePrefix(plugin)}<path>, with ctx.addRoute('GET', '/name', handler); a bug in the plugin: tell its author`,
    })
  }
  return `${method as (typeof PLUGIN_ROUTE_METHODS)[number]} ${pluginRoutePrefix(plugin)}${(path as string).slice(1)}`
}

/** True when `route` (`METHOD /path`, as PluginHost.routes() keys it) is one plugin `plugin` may have. */
export function isPluginRouteOf(plugin: string, route: string): boolean {
  const space = route.indexOf(' ')
  const [method, url] = [route.slice(0, space), route.slice(space + 1)]
  const prefix = pluginRoutePrefix(plugin)
  return url.startsWith(prefix) && routeProblem(method, url.slice(prefix.length - 1)) === undefined
}
