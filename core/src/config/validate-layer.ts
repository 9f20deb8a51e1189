import type { ErrorObject } from 'ajv'
import type { ConfigIssue } from './config-invalid-error.js'
import { getConfigModel, type ConfigModel, type SchemaNode } from './config-schema.js'
import { didYouMean } from '../util/did-you-mean.js'
import { expectedFor, normalizeValue, renderValue } from './value-kinds.js'

export interface LayerOptions {
  /** Relative paths in this layer resolve against it. */
  baseDir: string
  /** The file this layer was read from, for issues. */
  file?: string
  /** The environment variable a key came from, for issues of the environment layer. */
  envFor?: (path: string) => string | undefined
  /** The name the user wrote for a key, when it differs (legacy keys). */
  labelFor?: (path: string) => string | undefined
  /** Where the layer sits in its file (`ngrokd`, in a package.json): the keys its suggestions name are under it. */
  within?: string
}

export interface LayerResult {
  /** Checked and converted values by dotted path (durations in ms, paths absolute). */
  values: Map<string, unknown>
  issues: ConfigIssue[]
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function getAt(raw: unknown, segments: string[]): unknown {
  let node = raw
  for (const s of segments) {
    if (!isPlainObject(node) || !Object.hasOwn(node, s)) return undefined
    node = node[s]
  }
  return node
}

const decodePointer = (pointer: string) =>
  pointer === '' ? [] : pointer.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))

function unknownKeyMessage(model: ConfigModel, parent: string, name: string, within?: string): string {
  const named = (path: string) => (within ? `${within}.${path}` : path)
  const where = parent ? `valid keys in ${named(parent)}` : within ? `valid keys in ${within}` : 'valid top-level keys'
  const message = `unknown key; ${where}: ${model.sections.get(parent)!.names.join(', ')}`
  const dotted = parent ? `${parent}.${name}` : name
  if (name.includes('.') && (model.byPath.has(dotted) || model.sections.has(dotted))) {
    return `${message} (dotted keys are not expanded: nest ${name.split('.').join(' → ')})`
  }
  const sibling = didYouMean(name, model.sections.get(parent)!.names)
  if (sibling) return `${message} (did you mean ${named(parent ? `${parent}.${sibling}` : sibling)}?)`
  // Not a sibling's typo: maybe a key that lives in another section (`net.poll_interval`).
  const leaf = didYouMean(name, model.keys.map((k) => k.segments.at(-1)!))
  const elsewhere = leaf && model.keys.find((k) => k.segments.at(-1) === leaf)
  return elsewhere ? `${message} (did you mean ${named(elsewhere.path)}?)` : message
}

/**
 * The keys of a list's mapping entries that the entry's schema does not know (`plugins: [{ name, option }]`): ajv
 * reports them only as the whole list not matching any of its forms.
 */
function unknownItemKeys(schema: SchemaNode, value: unknown): Array<{ index: number; name: string; names: string[] }> {
  const entry = schema.items?.anyOf?.find((s) => s.type === 'object' && s.additionalProperties === false && s.properties)
  if (!entry || !Array.isArray(value)) return []
  const names = Object.keys(entry.properties!)
  return value.flatMap((item, index) => (isPlainObject(item) ? Object.keys(item).filter((k) => !names.includes(k)).map((name) => ({ index, name, names })) : []))
}

function withoutKeys(item: Record<string, unknown>, names: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(item).filter(([k]) => !names.includes(k)))
}

/** `{ a: { b: value } }` for `['a', 'b']`: one key's value as a layer of its own. */
function nestAt(segments: readonly string[], value: unknown): unknown {
  return segments.reduceRight<unknown>((inner, s) => ({ [s]: inner }), value)
}

/**
 * Validates one layer (a file's content, or the environment's overrides, as nested snake_case objects)
 * against config.schema.json, then checks and converts each key by its kind. Collects every issue.
 */
export function validateLayer(raw: unknown, options: LayerOptions): LayerResult {
  const model = getConfigModel()
  const values = new Map<string, unknown>()
  const issues: ConfigIssue[] = []
  const seen = new Set<string>()
  const add = (path: string, message: string) => {
    if (seen.has(path)) return
    seen.add(path)
    const env = options.envFor?.(path)
    issues.push({
      key: options.labelFor?.(path) ?? path,
      message,
      ...(options.file && !env ? { file: options.file } : {}),
      ...(env ? { env } : {}),
    })
  }

  if (!isPlainObject(raw)) {
    add('(top level)', `${renderValue(raw)} is not valid; expected a mapping of the sections ${model.sections.get('')!.names.join(', ')}`)
    return { values, issues }
  }

  if (!model.validate(raw)) {
    // a copy: the check below of one list alone calls the validator again
    for (const error of [...(model.validate.errors as ErrorObject[])]) {
      const segments = decodePointer(error.instancePath)
      if (error.keyword === 'additionalProperties' && model.sections.has(segments.join('.'))) {
        const name = String((error.params as { additionalProperty: string }).additionalProperty)
        add([...segments, name].join('.'), unknownKeyMessage(model, segments.join('.'), name, options.within))
        continue
      }
      // Report at the deepest known key or section (an array item's error belongs to the array).
      let depth = segments.length
      while (depth > 0 && !model.byPath.has(segments.slice(0, depth).join('.')) && !model.sections.has(segments.slice(0, depth).join('.'))) depth--
      const path = segments.slice(0, depth).join('.')
      const key = model.byPath.get(path)
      const value = getAt(raw, segments.slice(0, depth))
      if (!key) {
        add(path || '(top level)', `${renderValue(value)} is not valid; expected a mapping with the keys ${model.sections.get(path)!.names.join(', ')}`)
      } else if (error.keyword === 'enum') {
        add(path, `${renderValue(value, key.schema)} is not one of ${key.schema.enum!.join(', ')}`)
      } else {
        const unknown = unknownItemKeys(key.schema, value)
        for (const { index, name, names } of unknown) {
          const sibling = didYouMean(name, names)
          add(`${path}[${index}].${name}`, `unknown key; valid keys of an entry: ${names.join(', ')}${sibling ? ` (did you mean ${sibling}?)` : ''}`)
        }
        // anything else wrong with the list: checked again alone, without the unknown keys just said
        const rest = unknown.length ? (value as unknown[]).map((item, i) => (unknown.some((u) => u.index === i) ? withoutKeys(item as Record<string, unknown>, unknown.filter((u) => u.index === i).map((u) => u.name)) : item)) : value
        if (unknown.length === 0 || !model.validate(nestAt(segments.slice(0, depth), rest))) {
          // The kind's own check usually says more precisely what is wrong ("is shorter than 1s").
          const checked = key.schema['x-ngrokd']?.kind ? normalizeValue(key.schema, value, options.baseDir) : undefined
          const problem = checked && 'problem' in checked ? checked.problem : 'is not valid'
          add(path, `${renderValue(value, key.schema)} ${problem}; expected ${expectedFor(key.schema)}`)
        }
      }
    }
  }

  for (const key of model.keys) {
    const value = getAt(raw, key.segments)
    if (value === undefined || seen.has(key.path)) continue
    const result = normalizeValue(key.schema, value, options.baseDir)
    if ('problem' in result) add(key.path, `${renderValue(value, key.schema)} ${result.problem}; expected ${expectedFor(key.schema)}`)
    else if (result.value !== undefined) values.set(key.path, result.value)
  }
  return { values, issues }
}
