/**
 * A secret for display: a leading type prefix (`ak_`) is kept, the rest becomes `…` plus at most its last
 * 4 characters, and never more than a quarter of it: `ak_2Vb3xY…` → `ak_…9xyz`.
 */
export function redactSecret(secret: string): string {
  const prefix = /^[A-Za-z]{1,5}_/.exec(secret)?.[0] ?? ''
  const tail = Math.min(4, Math.floor((secret.length - prefix.length) / 4))
  return `${prefix}…${tail > 0 ? secret.slice(-tail) : ''}`
}

/** Option names that likely hold a secret: their string values are shown through {@link redactSecret}. */
export const SECRET_NAME = /key|secret|token|password/i
