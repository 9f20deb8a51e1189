import { createRequire } from 'node:module'

/**
 * `require` from core, for the CommonJS packages on the start path that stay outside core's bundle (pino, koffi).
 * Rule: such a package is loaded with `require`, its types with `import type`. Importing CommonJS from an ES
 * module makes Node also read each such file again and scan it for its export names (cjs-module-lexer),
 * following its re-exports; for the start's packages that was ~30 ms of a daemon's start and ~80 ms of its CPU
 * on a 2-core host (BENCHMARKS.md, fifth round). The packages the build bundles into dist (tsyringe,
 * reflect-metadata, semver: `bundle-dist.mjs --inline`) are imported instead: the bundle runs them as plain
 * functions and Node's loader never sees them.
 *
 * Also for two builtins, `node:http` (and `node:https` beside it) and `node:util`. An ES import of a builtin
 * reads every one of its exports, lazy ones included. On Node 24 node:http's lazy `WebSocket`, `CloseEvent` and
 * `MessageEvent` then load undici (76 internal modules): importing node:http took 44–51 ms and ~13 MiB of RSS,
 * requiring it 6 ms; node:util 7 ms against 0.1 (Node 20: 7–9 against 5 ms, 2 against 0.2). Other builtins cost
 * under a millisecond more.
 */
export const requireCommonJs = createRequire(import.meta.url)
