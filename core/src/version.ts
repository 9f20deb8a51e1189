import { requireCommonJs } from './util/commonjs.js'

/** The version of @ngrokd/core, read from its package.json (one home for it; by its name: dist/ is bundled). */
export const CORE_VERSION: string = (requireCommonJs('@ngrokd/core/package.json') as { version: string }).version

export const USER_AGENT = `ngrokd/${CORE_VERSION} (node ${process.version}; ${process.platform})`
