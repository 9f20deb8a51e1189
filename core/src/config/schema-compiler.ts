import { createRequire } from 'node:module'
import type { Ajv as AjvClass, Options, ValidateFunction } from 'ajv'

/**
 * How config.schema.json is compiled — one set of Ajv options for the validator the build
 * precompiles (`scripts/compile-config-validator.mjs` → `config-validator.js`) and for schemas
 * compiled at run time (tests). Ajv is required only here, so a daemon that starts with the
 * precompiled validator never loads it (Ajv's code generation took ~70 ms and a 30 MB
 * allocation peak of every start).
 */
export const CONFIG_SCHEMA_AJV_OPTIONS: Options = { allErrors: true, strict: true, allowUnionTypes: true }

/** An Ajv that knows the schema's `x-ngrokd` annotations. `source: true` keeps the code for the standalone build. */
export function newConfigSchemaAjv({ source = false }: { source?: boolean } = {}): AjvClass {
  const { Ajv } = createRequire(import.meta.url)('ajv') as typeof import('ajv')
  const ajv = new Ajv({ ...CONFIG_SCHEMA_AJV_OPTIONS, ...(source ? { code: { source: true, esm: true } } : {}) })
  ajv.addKeyword({ keyword: 'x-ngrokd', schemaType: 'object' })
  return ajv
}

/** Compiles a config schema at run time (the shipped schema comes precompiled). */
export function compileConfigSchema(schema: object): ValidateFunction {
  return newConfigSchemaAjv().compile(schema)
}
