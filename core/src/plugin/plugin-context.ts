import { AsyncLocalStorage } from 'node:async_hooks'

/** A plugin as its code runs: its name, and what becomes of it when a callback of its own throws and nothing catches it. */
export interface RunningPlugin {
  name: string
  uncaught(e: unknown): void
}

/**
 * Which plugin's code runs now. Plugin code runs inside {@link asPlugin}; so does every callback it schedules (a timer,
 * a socket's events, a promise's continuation), as Node carries an AsyncLocalStorage's value along (on Node 20 not into
 * a `queueMicrotask` callback). An exception nothing caught is then known to be that plugin's: the plugin is degraded
 * and the daemon runs on. Node starts this tracking only once a plugin's code runs, so a daemon without plugins pays
 * nothing for it.
 */
const running = new AsyncLocalStorage<RunningPlugin | undefined>()

/** Runs `fn` as `plugin`'s code. */
export function asPlugin<T>(plugin: RunningPlugin, fn: () => T): T {
  return running.run(plugin, fn)
}

/** `obj` (a name resolver a plugin made) whose methods run as `plugin`'s code; what is not a method is read as it is. */
export function boundToPlugin<T extends object>(plugin: RunningPlugin, obj: T): T {
  return new Proxy(obj, {
    get: (target, property) => {
      const value: unknown = Reflect.get(target, property, target)
      return typeof value === 'function' ? (...args: unknown[]) => running.run(plugin, () => (value as (...a: unknown[]) => unknown).apply(target, args)) : value
    },
  })
}

/**
 * For the process's `uncaughtException` handler: the plugin whose code (or a callback it scheduled) threw `e`, told of
 * it; undefined when the daemon's own code did. The plugin's context is left either way: Node 24 keeps it after an
 * exception thrown out of a `process.nextTick` callback, which would make the daemon's later work look like the plugin's.
 */
export function pluginThatThrew(e: unknown): string | undefined {
  const plugin = running.getStore()
  if (!plugin) return undefined
  running.enterWith(undefined)
  plugin.uncaught(e)
  return plugin.name
}
