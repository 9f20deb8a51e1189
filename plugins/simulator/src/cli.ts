#!/usr/bin/env node
/**
 * ngrokd-simulator: the cloud simulator until SIGTERM/SIGINT (also `ngrokd simulator`, see
 * simulator-command.ts). Prints one JSON line `{apiUrl, apiKey, ingressEndpoint, caFile, adminUrl}` once
 * it is ready; exits 2 with a message on a bad option or a failed start.
 */
import { parseArgs } from 'node:util'
import { formatError } from '@ngrokd/core'
import { runSimulator } from './run-simulator.js'
import { SIMULATOR_OPTIONS, SIMULATOR_OPTIONS_HELP } from './simulator-options.js'

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { ...SIMULATOR_OPTIONS, help: { type: 'boolean', short: 'h' } }, strict: true })
  if (values.help) {
    process.stdout.write(`usage: ngrokd-simulator [options]\n\n${SIMULATOR_OPTIONS_HELP}\n`)
    return 0
  }
  return runSimulator(values)
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`ngrokd-simulator: ${formatError(e)}\n`)
    process.exit(2)
  },
)
