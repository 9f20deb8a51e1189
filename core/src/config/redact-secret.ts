/**
 * A secret for display: a leading type prefix (`ak_`) is kept, the rest becomes `…` plus at most its last
 * 4 characters, and never more than a quarter of it: `ak_2Vb3xY…` → `ak_…9xyz`.
 */
export function redactSecret(secret: string): string {
  const prefix = /^[A-Za-z]{1,5}_/.exec(secret)?.[0] ?? ''
  const tail = Math.min(4, Math.floor((secret.length - prefix.length) / 4))
  return `${prefix}…${tail > 0 ? secret.slice(-tail) : ''}`
}

const SECRET_NAME = /key|secret|token|passw(?:or)?d|credential|authorization/i

/**
 * The one rule for what holds a secret: an option (a plugin's, a driver's) or a log field whose name says key,
 * secret, token, password (passwd), credential or authorization — `api_token`, `webhook.password`, `keyPem`.
 */
export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name)
}

/** Whether a plain object or array, the only values {@link redactSecretOptions} and {@link censorSecretFields} copy. */
function isPlainContainer(value: unknown): value is Record<string, unknown> | unknown[] {
  if (Array.isArray(value)) return true
  if (value === null || typeof value !== 'object') return false
  const proto = Object.getPrototypeOf(value) as unknown
  return proto === Object.prototype || proto === null
}

/**
 * A copy of options (a plugin's `options`, `net.driver_options`) safe to show, at any depth: a string or number
 * under a secret name ({@link isSecretName}), its own or one above it (`tokens: [...]`), becomes {@link redactSecret}'s.
 * `underSecretName`: `options` is itself the value of such a name.
 */
export function redactSecretOptions<T>(options: T, underSecretName = false): T {
  const walk = (value: unknown, secret: boolean, seen: Set<object>): unknown => {
    if (secret && (typeof value === 'string' || typeof value === 'number')) return redactSecret(String(value))
    if (!isPlainContainer(value) || seen.has(value)) return value
    seen.add(value)
    const copy = Array.isArray(value)
      ? value.map((v) => walk(v, secret, seen))
      : Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v, secret || isSecretName(k), seen)]))
    seen.delete(value)
    return copy
  }
  return walk(options, underSecretName, new Set()) as T
}

/**
 * A copy of a log line's fields in which every field with a secret name ({@link isSecretName}), at any depth, is
 * `censor` whatever its value. Only plain objects and arrays are copied: anything else (an Error) is kept as it is.
 */
export function censorSecretFields<T extends object>(fields: T, censor: string): T {
  const walk = (value: unknown, seen: Set<object>): unknown => {
    if (!isPlainContainer(value) || seen.has(value)) return value
    seen.add(value)
    const copy = Array.isArray(value)
      ? value.map((v) => walk(v, seen))
      : Object.fromEntries(Object.entries(value).map(([k, v]) => [k, isSecretName(k) && v !== undefined ? censor : walk(v, seen)]))
    seen.delete(value)
    return copy
  }
  return walk(fields, new Set()) as T
}
