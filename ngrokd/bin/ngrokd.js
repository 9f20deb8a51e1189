#!/usr/bin/env node
// `npm install -g ngrokd` installs this package: the CLI of @ngrokd/core with the built-in drivers,
// plus `ngrokd demo` and `ngrokd simulator` from the cloud simulator (core itself never imports the simulator).
import { runCli } from '@ngrokd/core/cli'
import { demoCommand } from '@ngrokd/plugin-simulator/demo'
import { simulatorCommand } from '@ngrokd/plugin-simulator/simulator'

runCli([demoCommand, simulatorCommand])
