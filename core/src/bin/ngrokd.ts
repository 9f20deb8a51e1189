#!/usr/bin/env node
// The CLI of @ngrokd/core alone: every command but `demo`, which the `ngrokd` package adds.
import { enableCompileCache } from '../util/compile-cache.js'

await enableCompileCache() // before the rest is loaded: Node 22.1+ reuses the compiled code of the last start
const { runCli } = await import('../cli/run-cli.js')
runCli()
