import module from 'node:module'
import { pathToFileURL } from 'node:url'

/** `@ngrokd/core` and its subpaths (`@ngrokd/core/plugin`, `@ngrokd/core/driver`, …). */
const CORE_SPECIFIER = /^@ngrokd\/core(\/|$)/

type Resolve = (specifier: string, context: { parentURL?: string; conditions?: string[] }) => unknown
type RegisterHooks = (hooks: { resolve: (specifier: string, context: { parentURL?: string; conditions?: string[] }, next: Resolve) => unknown }) => unknown

/** The same rule as a module of its own, for Node 20's off-thread hooks (`module.register`). */
const ASYNC_HOOKS = `
const CORE = ${CORE_SPECIFIER.toString()}
let own
export function initialize(data) { own = data.own }
export async function resolve(specifier, context, next) {
  return next(specifier, CORE.test(specifier) ? { ...context, parentURL: own } : context)
}
`

let installed = false

/**
 * Makes every import of `@ngrokd/core` (and its subpaths) in this process resolve to this ngrokd's own
 * installation, whose files are trusted as ngrokd's: a driver or plugin that ngrokd loads gets the daemon's own
 * copy, also a lone file named by path (the README's `./my-plugin.mjs`) that nothing installed it beside, and
 * never one that another user planted in a `node_modules` on the way up from it (a sticky /tmp). Installed once
 * per process, before the first third-party module is imported. Node 22.15+ takes the rule in this thread
 * (`module.registerHooks`), for `import` and `require()`; Node 20 on a hooks thread of its own (`module.register`), and
 * its CommonJS resolver for `require()`.
 */
export function resolveCoreFromOwnInstallation(): void {
  if (installed) return
  installed = true
  const own = import.meta.url
  const registerHooks = (module as unknown as { registerHooks?: RegisterHooks }).registerHooks
  const required = requiredFromOwnInstallation(own)
  if (typeof registerHooks === 'function') {
    registerHooks({
      resolve: (specifier, context, next) => {
        if (!CORE_SPECIFIER.test(specifier)) return next(specifier, context)
        // a require() is resolved from its parent module's folders whatever parentURL says: resolved here instead
        const path = context.conditions?.includes('require') ? required(specifier) : undefined
        return path === undefined ? next(specifier, { ...context, parentURL: own }) : { url: pathToFileURL(path).href, shortCircuit: true }
      },
    })
    return
  }
  module.register(`data:text/javascript,${encodeURIComponent(ASYNC_HOOKS)}`, { data: { own } })
  // Node 20's hooks see `import` only: a require() goes through `Module._resolveFilename`, Node's CommonJS resolver
  const cjs = module as unknown as { _resolveFilename: ResolveFilename }
  const original = cjs._resolveFilename
  cjs._resolveFilename = function (request, parent, isMain, options) {
    return (CORE_SPECIFIER.test(request) ? required(request) : undefined) ?? original.call(this, request, parent, isMain, options)
  }
}

type ResolveFilename = (request: string, parent: unknown, isMain: boolean, options?: unknown) => string

/**
 * `require.resolve` from this installation's folder; undefined while it runs, for the resolver it calls comes back
 * through the hook (which then resolves as Node would, from here).
 */
function requiredFromOwnInstallation(own: string): (request: string) => string | undefined {
  const ownRequire = module.createRequire(own)
  let resolving = false
  return (request) => {
    if (resolving) return undefined
    resolving = true
    try {
      return ownRequire.resolve(request)
    } finally {
      resolving = false
    }
  }
}
