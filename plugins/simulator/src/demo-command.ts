import type { Command } from '@ngrokd/core/cli'
import { demoSpec } from './demo-spec.js'

export { demoSpec }

/**
 * `ngrokd demo`, as the `ngrokd` package adds it to the CLI: the spec (demo-spec.ts), the simulator and the rest
 * (demo.ts) loaded only when the command runs, so no other command pays for them.
 */
export const demoCommand: Command = {
  ...demoSpec,
  run: async (argv) => (await import('./demo.js')).runDemo(argv),
}
