import { checkInstanceFlag } from '../config/instance.js'
import { NgrokdError } from '../errors/ngrokd-error.js'
import { parseCommandArgs } from './args.js'
import { printHelp, type Command } from './commands.js'
import type { ServiceAction } from './service-action.js'

const spec = {
  name: 'service',
  summary: 'Install, remove or show ngrokd as a system service (systemd on Linux, launchd on macOS, the Service Control Manager on Windows).',
  usage:
    'sudo ngrokd service install|uninstall|status [--config FILE] [--instance NAME] [--dry-run]\n\n  --dry-run   print the unit (or plist) and the commands instead of running them\n\nThe service runs `ngrokd run --config FILE` with this node and this ngrokd, restarts it after a failure,\nreloads it with SIGHUP, and runs `ngrokd cleanup` after it stops.',
  options: { 'dry-run': { type: 'boolean' } },
  allowPositionals: true,
  positionals: ['install', 'uninstall', 'status'],
} as const

export const serviceCommand: Command = {
  ...spec,
  async run(argv) {
    const { values, positionals } = parseCommandArgs(spec, argv)
    if (values.help) return printHelp(spec)
    const action = positionals[0] as ServiceAction | undefined
    if (!action || !['install', 'uninstall', 'status'].includes(action) || positionals.length > 1) {
      throw new NgrokdError('NGROKD_ERR_USAGE', `expected install, uninstall or status, got ${JSON.stringify(positionals.join(' '))}`, { hint: 'see ngrokd service --help' })
    }
    if (values.instance !== undefined) checkInstanceFlag(values.instance)
    // the service code (systemd, launchd, the Service Control Manager) loads for this command only
    const { runServiceAction } = await import('./service-action.js')
    return runServiceAction(action, values)
  },
}
