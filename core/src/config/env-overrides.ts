import type { ConfigIssue } from './config-invalid-error.js'
import { getConfigModel, type ConfigKey } from './config-schema.js'
import { didYouMean } from '../util/did-you-mean.js'
import { expectedFor, renderValue } from './value-kinds.js'
import { isPlainObject } from './validate-layer.js'

/** The ngrok CLI's variable for the API key; `NGROKD_API_KEY` wins when both are set. */
export const NGROK_API_KEY_ENV = 'NGROK_API_KEY'

export interface EnvOverrides {
  /** The overrides as a nested snake_case object, like a file's content. */
  raw: Record<string, unknown>
  /** The variable each key came from. */
  sources: Map<string, string>
  issues: ConfigIssue[]
  notices: string[]
}

const TRUE = new Set(['true', '1', 'yes', 'on'])
const FALSE = new Set(['false', '0', 'no', 'off'])

/** Turns the variable's text into the schema's type; strings stay strings (durations parse later). */
function typed(key: ConfigKey, text: string): { value: unknown } | { problem: string } {
  if (Array.isArray(key.schema.type)) {
    // an integer or "auto" (forwarder.workers): numeric text is the number; durations parse later
    const numeric = /^\s*\d+\s*$/.test(text) && key.schema['x-ngrokd']?.kind !== 'duration'
    return { value: numeric ? Number(text) : text.trim() }
  }
  const type = key.schema.type
  switch (type) {
    case 'boolean': {
      const lower = text.trim().toLowerCase()
      if (TRUE.has(lower)) return { value: true }
      if (FALSE.has(lower)) return { value: false }
      return { problem: 'is not a boolean' }
    }
    case 'number':
    case 'integer':
      // decimal only, as a YAML file writes it: Number() would also take 0x10, 1e3 and 0b1
      return /^\s*-?\d+(\.\d+)?\s*$/.test(text) ? { value: Number(text) } : { problem: 'is not a decimal number' }
    case 'array': {
      // Comma-separated, or a JSON array when an item itself needs a comma.
      if (text.trim().startsWith('[')) {
        try {
          const value: unknown = JSON.parse(text)
          if (Array.isArray(value)) return { value }
        } catch {}
        return { problem: 'is not a JSON array' }
      }
      return { value: text.split(',').map((s) => s.trim()).filter((s) => s !== '') }
    }
    case 'object':
      try {
        const value: unknown = JSON.parse(text)
        if (isPlainObject(value)) return { value }
      } catch {}
      return { problem: 'is not a JSON object' }
  }
  return { value: text }
}

/**
 * Reads `NGROKD_<PATH>` for every key of the schema (and `NGROK_API_KEY`), typed by the schema.
 * Empty variables count as unset. An unknown `NGROKD_<SECTION>_*` name (`NGROKD_NET_SUBNETT`) is an issue, as an unknown
 * key of a file is; other unknown `NGROKD_*` names close to a real one give a notice.
 */
export function readEnvOverrides(env: NodeJS.ProcessEnv): EnvOverrides {
  const model = getConfigModel()
  const raw: Record<string, unknown> = {}
  const sources = new Map<string, string>()
  const issues: ConfigIssue[] = []
  const set = (key: ConfigKey, name: string, text: string) => {
    const result = typed(key, text)
    if ('problem' in result) {
      issues.push({ key: key.path, env: name, message: `${renderValue(text, key.schema)} ${result.problem}; expected ${expectedFor(key.schema)}` })
      return
    }
    let node = raw
    for (const s of key.segments.slice(0, -1)) node = (node[s] ??= {}) as Record<string, unknown>
    node[key.segments.at(-1)!] = result.value
    sources.set(key.path, name)
  }

  const apiKey = model.byPath.get('api.key')
  if (apiKey && env[NGROK_API_KEY_ENV] && !env[apiKey.env]) set(apiKey, NGROK_API_KEY_ENV, env[NGROK_API_KEY_ENV])
  for (const key of model.keys) {
    const text = env[key.env]
    if (text !== undefined && text !== '') set(key, key.env, text)
  }

  const notices: string[] = []
  // NGROKD_<SECTION>_… names a key of that section: one that is none is refused, as an unknown key of a file is
  const sections = new Set(model.keys.filter((k) => k.segments.length > 1).map((k) => k.segments[0]!))
  for (const name of Object.keys(env)) {
    if (!name.startsWith('NGROKD_') || model.byEnv.has(name)) continue
    // Compare without the shared prefix, which would make every name look close; else a key named without its
    // section (NGROKD_SUBNET for NGROKD_NET_SUBNET), as an unknown key of a file is matched by its last part
    const rest = name.slice('NGROKD_'.length)
    const known = [...model.byEnv.keys()].map((e) => e.slice('NGROKD_'.length))
    const close = didYouMean(rest, known) ?? known.find((k) => k.endsWith(`_${rest}`))
    const section = [...sections].find((s) => rest.startsWith(`${s.toUpperCase()}_`))
    if (section) {
      issues.push({ key: section, env: name, message: `is not a key of ${section}${close ? ` (did you mean NGROKD_${close}?)` : ''}; expected one of ${known.filter((k) => k.startsWith(`${section.toUpperCase()}_`)).map((k) => `NGROKD_${k}`).join(', ')}` })
    } else if (close) {
      notices.push(`environment variable ${name} is not a configuration key and is ignored (did you mean NGROKD_${close}?)`)
    }
  }
  return { raw, sources, issues, notices }
}
