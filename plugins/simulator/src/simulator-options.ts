// `ngrokd simulator`'s and `ngrokd-simulator`'s options, help and command spec: read by
// simulator-command.ts (the CLI), run-simulator.ts (the run) and cli.ts (the bin).
import type { CommandSpec } from '@ngrokd/core/cli'
import { BACKEND_KINDS } from './types.js'

/** The simulator's options, in `node:util` parseArgs form. */
export const SIMULATOR_OPTIONS = {
  host: { type: 'string' },
  'api-port': { type: 'string' },
  'ingress-port': { type: 'string' },
  'api-key': { type: 'string' },
  'cert-validity-ms': { type: 'string' },
  'rate-limit': { type: 'string' },
  'advertise-ingress': { type: 'string' },
  'ca-out': { type: 'string' },
  endpoint: { type: 'string', multiple: true },
  verbose: { type: 'boolean' },
} as const

export type SimulatorValues = { [K in keyof typeof SIMULATOR_OPTIONS]?: (typeof SIMULATOR_OPTIONS)[K] extends { multiple: true } ? string[] : (typeof SIMULATOR_OPTIONS)[K] extends { type: 'boolean' } ? boolean : string }

/** What each option does, for both programs' help. */
export const SIMULATOR_OPTIONS_HELP = `  --host ADDR              listen address (default: API 127.0.0.1, ingress 127.0.0.1 and ::1)
  --api-port N             API port (default: any free port)
  --ingress-port N         binding ingress port (default: any free port)
  --api-key KEY            API key clients must send (default: random)
  --cert-validity-ms N     validity of issued client certificates (default: 1 year)
  --rate-limit N           API requests the account may make in any rolling minute, then 429 (default: 120, ngrok's; 0: no limit)
  --advertise-ingress H[:P] what binding.ingress_endpoint reports (default: localhost:<ingress port>)
  --ca-out FILE            write the CA certificate (PEM) to FILE
  --endpoint URL[=BACKEND] serve an endpoint from the start; repeatable. BACKEND: ${BACKEND_KINDS.join(', ')}
  --verbose                log to stderr
  -h, --help               this help

Prints {"apiUrl","apiKey","ingressEndpoint","caFile","adminUrl"} as one JSON line when ready, then runs
until SIGTERM or Ctrl-C. The admin API under adminUrl (loopback clients only) adds and removes endpoints,
injects faults and reads counters: see the README of @ngrokd/plugin-simulator.`

export const simulatorSpec = {
  name: 'simulator',
  summary: 'Run the ngrok cloud simulator (API, CA, binding ingress, backends) on this machine until Ctrl-C.',
  usage: `ngrokd simulator [options]\n\n${SIMULATOR_OPTIONS_HELP}`,
  options: SIMULATOR_OPTIONS,
  readsNoConfig: true,
} as const satisfies CommandSpec
