import { fileURLToPath } from 'node:url'
import { checkInstanceFlag } from '../config/instance.js'
import type { Check } from '../contracts/check.js'
import { parseCommandArgs } from './args.js'
import { printHelp, type Command } from './commands.js'
import { terminalSafe, waitingLine } from './terminal-text.js'

const MARK = { ok: '✔', warn: '⚠', fail: '✘', skip: '–' } as const

/** The error codes' page (the repository's docs/errors.md, copied into core's dist by its build, so that it is installed). */
const ERRORS_DOC = fileURLToPath(import.meta.resolve('#errors-doc'))

const spec = {
  name: 'doctor',
  summary: 'Check the configuration, driver, privileges, hosts file, state, API key and daemon; say what to fix.',
  usage: 'ngrokd doctor [--json] [--offline] [--config FILE]\n\n  --offline  do not call the ngrok API nor dial the binding ingress\n\nExit code 1 when a check failed.',
  options: { json: { type: 'boolean' }, offline: { type: 'boolean' } },
} as const

export const doctorCommand: Command = {
  ...spec,
  async run(argv) {
    const { values } = parseCommandArgs(spec, argv)
    if (values.help) return printHelp(spec)
    const { runDoctor } = await import('../doctor/run-doctor.js') // loaded when doctor runs, not for every command
    if (values.instance !== undefined) checkInstanceFlag(values.instance)
    // as text, each check is printed as it is made: the slow ones (the API, the ingress, the daemon) come last
    let waiting = (): void => {}
    const print = (c: Check): void => {
      waiting()
      // a summary or hint may quote the API, a plugin or a file: escaped, so that nothing redraws the line
      console.log(`${MARK[c.status]} ${terminalSafe(c.id.padEnd(24))} ${terminalSafe(c.summary)}${c.code && c.status !== 'ok' ? ` (${terminalSafe(c.code)})` : ''}`)
      if (c.hint && c.status !== 'ok') console.log(`  ${' '.repeat(24)}→ ${terminalSafe(c.hint)}`)
    }
    const report = await runDoctor({ configPath: values.config, ...(values.instance ? { instance: values.instance } : {}), offline: values.offline ?? false, ...(values.json ? {} : { onCheck: print, onWait: (what: string) => (waiting = waitingLine(what)) }) })
    waiting()
    if (values.json) {
      console.log(JSON.stringify(report, null, 2))
    } else {
      const count = (s: string) => report.checks.filter((c) => c.status === s).length
      console.log(`\n${count('ok')} ok, ${plural(count('warn'), 'warning')}, ${plural(count('fail'), 'failure')}${count('fail') ? ` — each code is explained in ${ERRORS_DOC}` : ''}`)
    }
    return report.ok ? 0 : 1
  },
}

/** `1 failure`, `2 failures`, `0 failures`. */
function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`
}
