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
  try {
    return await next(specifier, context)
  } catch (e) {
    if (!CORE.test(specifier) || e?.code !== 'ERR_MODULE_NOT_FOUND') throw e
    return next(specifier, { ...context, parentURL: own })
  }
}
`

let installed = false

/**
 * Lets a driver or plugin that ngrokd loads import `@ngrokd/core` where nothing installed it beside the module
 * (a single file named by path, such as the README's `./my-plugin.mjs`): its own resolution goes first, and only
 * when that finds no `@ngrokd/core` is it resolved from this ngrokd's own installation, whose files are trusted as
 * ngrokd's. Installed once per process, before the first third-party module is imported. Node 22.15+ takes
 * the rule in this thread (`module.registerHooks`); Node 20 on a hooks thread of its own (`module.register`).
 */
export function resolveCoreFromOwnInstallation(): void {
  if (installed) return
  installed = true
  const own = import.meta.url
  const registerHooks = (module as unknown as { registerHooks?: RegisterHooks }).registerHooks
  if (typeof registerHooks === 'function') {
    registerHooks({
      resolve(specifier, context, next) {
        try {
          return next(specifier, context)
        } catch (e) {
          if (!CORE_SPECIFIER.test(specifier) || (e as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw e
          return next(specifier, { ...context, parentURL: own })
        }
      },
    })
    return
  }
  module.register(`data:text/javascript,${encodeURIComponent(ASYNC_HOOKS)}`, { data: { own } })
}
