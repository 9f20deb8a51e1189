import module from 'node:module'

/** `@ngrokd/core` and its subpaths (`@ngrokd/core/plugin`, `@ngrokd/core/driver`, …). */
const CORE_SPECIFIER = /^@ngrokd\/core(\/|$)/

type Resolve = (specifier: string, context: { parentURL?: string }) => unknown
type RegisterHooks = (hooks: { resolve: (specifier: string, context: { parentURL?: string }, next: Resolve) => unknown }) => unknown

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
 * (`module.registerHooks`); Node 20 on a hooks thread of its own (`module.register`).
 */
export function resolveCoreFromOwnInstallation(): void {
  if (installed) return
  installed = true
  const own = import.meta.url
  const registerHooks = (module as unknown as { registerHooks?: RegisterHooks }).registerHooks
  if (typeof registerHooks === 'function') {
    registerHooks({
      resolve: (specifier, context, next) => next(specifier, CORE_SPECIFIER.test(specifier) ? { ...context, parentURL: own } : context),
    })
    return
  }
  module.register(`data:text/javascript,${encodeURIComponent(ASYNC_HOOKS)}`, { data: { own } })
}
