import { AsyncLocalStorage } from 'node:async_hooks'

/**
 * Which plugin's code runs now. Plugin code runs inside {@link asPlugin}; so does every callback it schedules (a timer,
 * a socket's events, a promise's continuation), as Node carries an AsyncLocalStorage's value along. An exception
 * nothing caught is then known to be that plugin's: the plugin is degraded and the daemon runs on. Node starts this
 * tracking only once a plugin's code runs, so a daemon without plugins pays nothing for it.
 */
const running = new AsyncLocalStorage<string>()

/** Runs `fn` as plugin `name`'s code. */
export function asPlugin<T>(name: string, fn: () => T): T {
  return running.run(name, fn)
}

/** `obj` (a name resolver a plugin made) whose methods run as plugin `name`'s code; what is not a method is read as it is. */
export function boundToPlugin<T extends object>(name: string, obj: T): T {
  return new Proxy(obj, {
    get: (target, property) => {
      const value: unknown = Reflect.get(target, property, target)
      return typeof value === 'function' ? (...args: unknown[]) => running.run(name, () => (value as (...a: unknown[]) => unknown).apply(target, args)) : value
    },
  })
}

/** The plugin whose code, or a callback it scheduled, runs now; undefined for the daemon's own. */
export function pluginOfThisCall(): string | undefined {
  return running.getStore()
}
