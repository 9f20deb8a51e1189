/**
 * `ngrokd simulator`, as the `ngrokd` package adds it to core's CLI (as it adds `demo`): the spec
 * (simulator-options.ts) here, the simulator itself (run-simulator.ts) loaded only when the command runs,
 * so no other command pays for it. The `ngrokd-simulator` bin (cli.ts) runs the same runSimulator.
 */
import type { Command } from '@ngrokd/core/cli'
import { simulatorSpec } from './simulator-options.js'

export const simulatorCommand: Command = {
  ...simulatorSpec,
  run: async (argv) => (await import('./run-simulator.js')).runSimulatorCommand(argv),
}
