import { parseArgs, type ParseArgsConfig } from 'node:util'
import { NgrokdError } from '../errors/ngrokd-error.js'

type Options = NonNullable<ParseArgsConfig['options']>

export interface CommandSpec<O extends Options = Options> {
  name: string
  summary: string
  usage: string
  options: O
  allowPositionals?: boolean
}

/** Options every command takes. */
export const commonOptions = {
  config: { type: 'string', short: 'c' },
  help: { type: 'boolean', short: 'h' },
} as const

export type ParsedValues<O> = {
  [K in keyof (typeof commonOptions & O)]?: (typeof commonOptions & O)[K] extends { type: 'boolean' } ? boolean : string
}

/** Parses argv against the command's options plus the common ones; a bad flag is a coded error. */
export function parseCommandArgs<O extends Options>(spec: CommandSpec<O>, argv: string[]): { values: ParsedValues<O>; positionals: string[] } {
  try {
    const parsed = parseArgs({ args: argv, options: { ...commonOptions, ...spec.options }, allowPositionals: true, strict: true })
    return parsed as unknown as { values: ParsedValues<O>; positionals: string[] }
  } catch (e) {
    throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `ngrokd ${spec.name}: ${(e as Error).message}`, { hint: `see ngrokd ${spec.name} --help` })
  }
}

export function helpText(spec: CommandSpec<Options>): string {
  return `${spec.summary}\n\nUsage: ${spec.usage}\n`
}
