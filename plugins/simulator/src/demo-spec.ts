import type { CommandSpec } from '@ngrokd/core/cli'

/** `ngrokd demo`'s name, options and help: read by demo-command.ts (the CLI) and demo.ts (the run). */
export const demoSpec = {
  name: 'demo',
  summary: 'Start a simulated ngrok cloud and the daemon in a private namespace, and reach the demo endpoints by hostname.',
  usage: 'ngrokd demo [--once] [--shell] [--keep-logs]\n\n  --once    exit after the requests (exit code 0 when every one was answered)\n  --shell   open a shell inside the demo namespace: curl http://api.demo/ there\n  --keep-logs  keep the logs of the daemon and the simulator (kept anyway when a request failed)\n\nYour real /etc/hosts and network interfaces are left alone: everything happens in a private\nnetwork + mount namespace that disappears when the demo ends.',
  options: { once: { type: 'boolean' }, shell: { type: 'boolean' }, 'keep-logs': { type: 'boolean' } },
  readsNoConfig: true,
} as const satisfies CommandSpec
