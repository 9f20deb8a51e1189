import { readFileSync } from 'node:fs'
import type { ValidateFunction } from 'ajv'
import { validate as precompiledValidate } from './config-validator.js'
import { compileConfigSchema } from './schema-compiler.js'

/** How a value is checked and converted beyond JSON Schema (the schema's `x-ngrokd.kind`). */
export type ValueKind = 'duration' | 'url' | 'secret' | 'host-port' | 'path' | 'ifname' | 'ipv4-subnet' | 'ipv4'

/** The part of JSON Schema draft-07 that config.schema.json uses. */
export interface SchemaNode {
  title?: string
  description?: string
  type?: string | string[]
  properties?: Record<string, SchemaNode>
  items?: SchemaNode
  anyOf?: SchemaNode[]
  additionalProperties?: boolean | SchemaNode
  required?: string[]
  enum?: unknown[]
  default?: unknown
  minLength?: number
  maxLength?: number
  minItems?: number
  minimum?: number
  maximum?: number
  exclusiveMinimum?: number
  pattern?: string
  'x-ngrokd'?: {
    kind?: ValueKind
    /** For `duration`: the shortest allowed, itself a duration. */
    minimum?: string
    /** For `ipv4-subnet`: the longest allowed prefix. */
    maxPrefix?: number
    /** Replaces the generated "expected …" phrase in error messages. */
    expected?: string
  }
}

/** One settable key: a schema node without `properties` (an object such as `net.driver_options` is one value). */
export interface ConfigKey {
  /** Dotted snake_case path as written in files: `bound_endpoints.poll_interval`. */
  path: string
  segments: string[]
  /** Path in {@link DaemonConfig}: camelCase, durations get `Ms` (`['boundEndpoints', 'pollIntervalMs']`). */
  outputSegments: string[]
  /** The environment variable that overrides it: `NGROKD_BOUND_ENDPOINTS_POLL_INTERVAL`. */
  env: string
  schema: SchemaNode
}

/** A schema node with `properties`; `path` is `''` for the top level. */
export interface ConfigSection {
  path: string
  /** Its keys and sub-sections, as written in files. */
  names: string[]
}

export interface ConfigModel {
  schema: SchemaNode
  keys: ConfigKey[]
  byPath: Map<string, ConfigKey>
  byEnv: Map<string, ConfigKey>
  sections: Map<string, ConfigSection>
  validate: ValidateFunction
}

/** core/config.schema.json, by the name the package exports it under. */
export const CONFIG_SCHEMA_URL = new URL(import.meta.resolve('@ngrokd/core/config-schema.json'))

const camel = (s: string) => s.replace(/[_-]+([a-z0-9])/g, (_, c: string) => c.toUpperCase())

/** Builds the key list, sections and validator of a schema (compiled now unless `validate` is given). @internal */
export function buildConfigModel(schema: SchemaNode, validate?: ValidateFunction): ConfigModel {
  const keys: ConfigKey[] = []
  const sections = new Map<string, ConfigSection>()
  const walk = (node: SchemaNode, segments: string[], outputSegments: string[]) => {
    // `$schema` and friends are for editors, not settings.
    const names = Object.keys(node.properties!).filter((n) => !n.startsWith('$'))
    sections.set(segments.join('.'), { path: segments.join('.'), names })
    for (const name of names) {
      const child = node.properties![name]!
      const path = [...segments, name]
      const out = [...outputSegments, camel(name)]
      if (child.properties) {
        walk(child, path, out)
        continue
      }
      if (child['x-ngrokd']?.kind === 'duration') out[out.length - 1] += 'Ms'
      keys.push({
        path: path.join('.'),
        segments: path,
        outputSegments: out,
        env: `NGROKD_${path.join('_').replace(/-/g, '_').toUpperCase()}`,
        schema: child,
      })
    }
  }
  walk(schema, [], [])
  const byEnv = new Map<string, ConfigKey>()
  for (const key of keys) {
    const other = byEnv.get(key.env)
    // A schema edit error, caught by the tests the moment it is made.
    if (other) throw new Error(`config.schema.json: ${other.path} and ${key.path} both map to ${key.env}`)
    byEnv.set(key.env, key)
  }
  return {
    schema,
    keys,
    byPath: new Map(keys.map((k) => [k.path, k])),
    byEnv,
    sections,
    validate: validate ?? compileConfigSchema(schema),
  }
}

let model: ConfigModel | undefined

/** The parsed schema, its keys and the validator precompiled from it at build time; built once. @internal */
export function getConfigModel(): ConfigModel {
  model ??= buildConfigModel(JSON.parse(readFileSync(CONFIG_SCHEMA_URL, 'utf8')) as SchemaNode, precompiledValidate)
  return model
}

export interface ConfigKeyInfo {
  path: string
  env: string
  title: string
  description: string
  default?: unknown
}

/**
 * Every settable key with its environment variable, default (as written in files) and documentation,
 * for help texts and `ngrokd doctor`.
 */
export function listConfigKeys(): ConfigKeyInfo[] {
  return getConfigModel().keys.map((k) => ({
    path: k.path,
    env: k.env,
    title: k.schema.title ?? k.path,
    description: k.schema.description ?? '',
    ...(k.schema.default === undefined ? {} : { default: structuredClone(k.schema.default) }),
  }))
}
