import { readFileSync } from 'node:fs'

/** The version of @ngrokd/core, read from its package.json (one home for it). */
export const CORE_VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version

export const USER_AGENT = `ngrokd/${CORE_VERSION} (node ${process.version}; ${process.platform})`
