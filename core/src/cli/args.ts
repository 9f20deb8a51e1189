import type { ParseArgsConfig } from 'node:util'
import { didYouMean } from '../util/did-you-mean.js'
import { NgrokdError } from '../errors/ngrokd-error.js'
import { requireCommonJs } from '../util/commonjs.js'

const { parseArgs } = requireCommonJs('node:util') as typeof import('node:util') // see requireCommonJs

type Options = NonNullable<ParseArgsConfig['options']>

export interface CommandSpec<O extends Options = Options> {
  name: string
  summary: string
  usage: string
  options: O
  allowPositionals?: boolean
  /** For shell completion: the words a command takes (`service`: install, uninstall, status). */
  positionals?: readonly string[]
  /** For shell completion: the values an option takes (`--log-format`: json, pretty, auto). */
  optionValues?: Readonly<Record<string, readonly string[]>>
  /** Options only these platforms accept (`run --service`: win32): completion offers them there alone, as their help says. */
  optionPlatforms?: Readonly<Record<string, readonly NodeJS.Platform[]>>
  /** The command reads no configuration: `--config` and `--instance` are usage errors, and its help and completion leave them out. */
  readsNoConfig?: boolean
}

/** Options every command takes (`--config` and `--instance` refused by one that reads no configuration). */
export const commonOptions = {
  config: { type: 'string', short: 'c' },
  instance: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const

export type ParsedValues<O> = {
  [K in keyof (typeof commonOptions & O)]?: (typeof commonOptions & O)[K] extends { type: 'boolean' } ? boolean : string
}

/**
 * Parses argv against the command's options plus the common ones. A bad flag, or an argument the
 * command does not take, is a usage error (NGROKD_ERR_USAGE: exit code 2), naming a likely flag.
 */
export function parseCommandArgs<O extends Options>(spec: CommandSpec<O>, argv: string[]): { values: ParsedValues<O>; positionals: string[] } {
  const options = { ...commonOptions, ...spec.options }
  let parsed: { values: unknown; positionals: string[] }
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true })
  } catch (e) {
    const unknown = /'(--?[^' ,]+)'/.exec((e as Error).message)?.[1]
    // a flag that exists (`--rate-limit -1`: its value read as a flag) needs no "did you mean" itself
    const close = unknown?.startsWith('--') && !(unknown.slice(2) in options) ? didYouMean(unknown.slice(2), Object.keys(options)) : undefined
    throw new NgrokdError('NGROKD_ERR_USAGE', parseArgsMessage(e as Error & { code?: string }), { hint: close ? `did you mean --${close}? (see ngrokd ${spec.name} --help)` : `see ngrokd ${spec.name} --help` })
  }
  const values = parsed.values as Record<string, unknown>
  for (const flag of ['config', 'instance'] as const) {
    // `--config=` (an unset variable: --config="$CFG") names no file: not the current directory
    if (values[flag] === '') throw new NgrokdError('NGROKD_ERR_USAGE', `--${flag} needs a value`, { hint: `see ngrokd ${spec.name} --help` })
    if (spec.readsNoConfig && values[flag] !== undefined) {
      throw new NgrokdError('NGROKD_ERR_USAGE', `--${flag} does not apply: this command reads no configuration`, { hint: `see ngrokd ${spec.name} --help` })
    }
  }
  if (!spec.allowPositionals && parsed.positionals.length > 0) {
    throw new NgrokdError('NGROKD_ERR_USAGE', `unexpected argument ${JSON.stringify(parsed.positionals[0])}`, { hint: `ngrokd ${spec.name} takes only options; see ngrokd ${spec.name} --help` })
  }
  return parsed as unknown as { values: ParsedValues<O>; positionals: string[] }
}

/** parseArgs's complaint in ngrokd's words (its own advice, `-- "--x"`, would only meet "unexpected argument"). */
function parseArgsMessage(e: Error & { code?: string }): string {
  // the quoted word as typed (`'--json_output'`), else the long name in `'-c, --config <value>'`
  const option = /'(--?[^' ,]+)'/.exec(e.message)?.[1] ?? /--[a-zA-Z][\w-]*/.exec(e.message)?.[0]
  if (!option) return e.message
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `unknown option ${option}`
  if (/argument missing/.test(e.message)) return `${option} needs a value`
  if (/does not take an argument/.test(e.message)) return `${option} takes no value`
  // the long name, which takes `=`: Node's own advice (`'--config=-XYZ'`) names it also for `-c`
  const long = /'(--[\w-]+)=-XYZ'/.exec(e.message)?.[1] ?? option
  if (/ambiguous/.test(e.message)) return `${option} needs a value, and the next word looks like an option; write ${long}=VALUE for a value that starts with "-"`
  return e.message
}

export function helpText(spec: CommandSpec<Options>): string {
  return `${spec.summary}\n\nUsage: ${spec.usage}\n`
}
