// Precompiles config.schema.json into <outDir>/config/config-validator.js (an ES module exporting
// `validate`) and its .d.ts, after tsc has built <outDir>. Run by `build` (dist) and `build:test` (dist-test).
import { readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import standaloneCode from 'ajv/dist/standalone/index.js'

const outDir = resolve(process.argv[2] ?? 'dist')
const { newConfigSchemaAjv } = await import(pathToFileURL(join(outDir, 'config/schema-compiler.js')).href)
const schema = JSON.parse(readFileSync(new URL('../config.schema.json', import.meta.url), 'utf8'))
const ajv = newConfigSchemaAjv({ source: true })
const code = standaloneCode.default(ajv, ajv.compile(schema))
// Ajv's standalone ES output still require()s its small runtime helpers (ucs2length): give it a require.
const header = `// Generated from config.schema.json by scripts/compile-config-validator.mjs at build time. Do not edit.\nimport { createRequire } from 'node:module'\nconst require = createRequire(import.meta.url)\n`
writeFileSync(join(outDir, 'config/config-validator.js'), header + code.replace(/^"use strict";/, ''))
writeFileSync(
  join(outDir, 'config/config-validator.d.ts'),
  `import type { ValidateFunction } from 'ajv'\n/** config.schema.json, precompiled at build time. */\nexport declare const validate: ValidateFunction\nexport default validate\n`,
)
