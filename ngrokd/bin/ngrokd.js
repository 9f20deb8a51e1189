#!/usr/bin/env node
// `npm install -g ngrokd` installs this package: the CLI of @ngrokd/core with the built-in drivers,
// plus `ngrokd demo` and `ngrokd simulator` from the cloud simulator (core itself never imports the simulator).
import { enableCompileCache } from '@ngrokd/core/compile-cache'

await enableCompileCache() // before the rest is loaded: Node 22.1+ reuses the compiled code of the last start
const [{ runCli }, { demoCommand }, { simulatorCommand }] = await Promise.all([
  import('@ngrokd/core/cli'),
  import('@ngrokd/plugin-simulator/demo'),
  import('@ngrokd/plugin-simulator/simulator'),
])
runCli([demoCommand, simulatorCommand])
