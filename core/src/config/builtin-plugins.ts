/** The plugins that ship with ngrokd: the short name config uses, and its package. */
export const BUILTIN_PLUGINS = {
  prometheus: '@ngrokd/plugin-prometheus',
  dns: '@ngrokd/plugin-dns',
} as const satisfies Record<string, string>

const BY_PACKAGE = new Map<string, string>(Object.entries(BUILTIN_PLUGINS).map(([name, pkg]) => [pkg, name]))

/**
 * The name a `plugins:` entry registers under, as far as config can tell: a built-in plugin's short name for its
 * package name too (`@ngrokd/plugin-dns` is `dns`: both load the same plugin); any other entry as written.
 */
export function pluginEntryName(spec: unknown): string | undefined {
  const name = typeof spec === 'string' ? spec : typeof spec === 'object' && spec !== null ? (spec as { name?: unknown }).name : undefined
  return typeof name === 'string' ? (BY_PACKAGE.get(name) ?? name) : undefined
}
