import { didYouMean } from '../util/did-you-mean.js'
import { formatError, isNgrokdError } from '../errors/ngrokd-error.js'
import { CORE_VERSION } from '../version.js'
import { commands, type Command } from './commands.js'
import { doctorCommand } from './doctor.js'
import { serviceCommand } from './service-command.js'
import { completionCommand } from './completion.js'
import { terminalSafe } from './terminal-text.js'

const builtIn: Command[] = [...commands, doctorCommand, serviceCommand]

/** `help` is no command of the list (main answers it), but is one to the user: listed with them. */
const HELP_ENTRY = { name: 'help', summary: 'Print this help, or a command\'s: ngrokd help run is ngrokd run --help.' }

function usage(commands: readonly Command[]): string {
  const all = [...commands, HELP_ENTRY]
  const width = Math.max(...all.map((c) => c.name.length))
  return [
    `ngrokd ${CORE_VERSION} — reach ngrok's kubernetes-bound endpoints by hostname from this machine`,
    '',
    'Usage: ngrokd <command> [options]',
    '',
    'Commands:',
    ...all.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `ngrokd <command> --help` for a command\'s options.',
  ].join('\n')
}

/** Runs the CLI with the built-in commands and `extra` ones; returns the exit code. */
export async function main(argv: string[], extra: readonly Command[] = []): Promise<number> {
  const all: Command[] = [...builtIn, ...extra]
  all.push(completionCommand(() => all))
  const [name, ...rest] = argv
  // `ngrokd help run` is `ngrokd run --help`
  // `help`, `help help`, `help --help` and `help -h` are the usage
  const askedUsage = name === 'help' && (rest[0] === undefined || ['help', '--help', '-h'].includes(rest[0]))
  const helpFor = name === 'help' && !askedUsage ? all.find((c) => c.name === rest[0]) : undefined
  if (helpFor) return helpFor.run(['--help'])
  if (name === 'help' && !askedUsage) {
    const close = didYouMean(rest[0], all.map((c) => c.name))
    console.error(`ngrokd help: unknown command "${rest[0]}"${close ? ` — did you mean "${close}"?` : ''}\n\n${usage(all)}`)
    return 2
  }
  // asked for (`help`, `--help`, `help help`): stdout, 0; no command at all is a usage error: stderr, 2
  if (!name) {
    console.error(usage(all))
    return 2
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    console.log(usage(all))
    return 0
  }
  if (name === '--version' || name === '-v') {
    if (rest.length > 0) {
      console.error(`ngrokd ${name}: unexpected ${JSON.stringify(rest[0])}: ${name} takes nothing after it (ngrokd version --help)`)
      return 2
    }
    return (await import('./commands.js')).commands.find((c) => c.name === 'version')!.run([])
  }
  const command = all.find((c) => c.name === name)
  if (!command && name.startsWith('-')) {
    // a top-level option misspelt (--verison), else a command's option put before the command
    const close = didYouMean(name, ['--help', '--version'])
    if (close) {
      console.error(`ngrokd: unknown option ${name} — did you mean ${close}?\n\n${usage(all)}`)
      return 2
    }
    const after = rest.find((word) => all.some((c) => c.name === word))
    console.error(`ngrokd: ${name} is an option, and options go after the command${after ? `: ngrokd ${after} ${name} …` : ''}\n\n${usage(all)}`)
    return 2
  }
  if (!command) {
    const close = didYouMean(name, all.map((c) => c.name))
    const hint = name === 'demo' || name === 'simulator' ? ' (it comes with the `ngrokd` package: npm install -g ngrokd)' : close ? ` — did you mean "${close}"?` : ''
    console.error(`ngrokd: unknown command "${name}"${hint}\n\n${usage(all)}`)
    return 2
  }
  try {
    return await command.run(rest)
  } catch (e) {
    // a script that asked for --json gets the failure as JSON on stdout too; people read stderr and the exit code
    if (command.options && 'json' in command.options && rest.includes('--json')) console.log(JSON.stringify({ error: jsonError(e) }, null, 2))
    console.error(`ngrokd ${name}: ${formatError(e).split('\n').map(terminalSafe).join('\n')}`) // it may quote the API or a file
    const exitCode = (e as { exitCode?: unknown } | null)?.exitCode // a cancel by Ctrl-C: 130, as a shell's
    return typeof exitCode === 'number' ? exitCode : isNgrokdError(e, 'NGROKD_ERR_USAGE') ? 2 : 1
  }
}

/** A failure as `--json` prints it: its code (ngrokd's, else Node's `ECONNRESET` and the like, when it has one), message and hint. */
export function jsonError(e: unknown): { code?: string; message: string; hint?: string } {
  if (isNgrokdError(e)) return { code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}) }
  const code = (e as { code?: unknown } | null)?.code
  return { ...(typeof code === 'string' ? { code } : {}), message: e instanceof Error ? e.message : String(e) }
}
