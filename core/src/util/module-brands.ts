/**
 * The marks `definePlugin` and `defineDriver` put on what they return: global symbols (`Symbol.for`), so that a module
 * made with another copy of @ngrokd/core still carries them.
 */
export const PLUGIN_BRAND = Symbol.for('ngrokd.plugin')
export const DRIVER_BRAND = Symbol.for('ngrokd.driver')

/** Whether `value` carries `brand`. */
export function hasBrand(value: unknown, brand: symbol): boolean {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[brand] === 1
}
