import type { Command, CommandSpec } from '@ngrokd/core/cli'

/**
 * `ngrokd demo`, as the `ngrokd` package adds it to the CLI: the spec here, the simulator and the rest
 * (demo.ts) loaded only when the command runs, so no other command pays for them.
 */
export const demoSpec = {
  name: 'demo',
  summary: 'Start a simulated ngrok cloud and the daemon in a private namespace, and reach the demo endpoints by hostname.',
  usage: 'ngrokd demo [--once] [--shell]\n\n  --once    exit after the requests (exit code 0 when every one was answered)\n  --shell   open a shell inside the demo namespace: curl http://api.demo/ there\n\nYour real /etc/hosts and network interfaces are left alone: everything happens in a private\nnetwork + mount namespace that disappears when the demo ends.',
  options: { once: { type: 'boolean' }, shell: { type: 'boolean' }, 'keep-logs': { type: 'boolean' } },
} as const satisfies CommandSpec

export const demoCommand: Command = {
  ...demoSpec,
  run: async (argv) => (await import('./demo.js')).runDemo(argv),
}
