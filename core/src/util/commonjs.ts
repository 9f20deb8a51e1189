import { createRequire } from 'node:module'

/**
 * `require` from core, for the CommonJS packages on the start path (reflect-metadata, tsyringe, pino, koffi,
 * semver). Rule: a CommonJS package is loaded with `require`, its types with `import type`. Importing CommonJS
 * from an ES module makes Node also read each such file again and scan it for its export names
 * (cjs-module-lexer), following its re-exports; for these packages that was ~30 ms of a daemon's start and
 * ~80 ms of its CPU on a 2-core host (BENCHMARKS.md, fifth round).
 */
export const requireCommonJs = createRequire(import.meta.url)
