// The module scripts/compile-config-validator.mjs writes next to config-schema.js at build time:
// config.schema.json precompiled by Ajv (standalone code), so starting ngrokd does not load Ajv.
import type { ValidateFunction } from 'ajv'
export declare const validate: ValidateFunction
export default validate
