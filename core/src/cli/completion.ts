import { NgrokdError } from '../errors/ngrokd-error.js'
import { commonOptions, parseCommandArgs, type CommandSpec } from './args.js'
import type { Command } from './commands.js'

export const COMPLETION_SHELLS = ['bash', 'zsh', 'fish'] as const
type Shell = (typeof COMPLETION_SHELLS)[number]

/** What a completion script needs of one command: its name, summary, flags, words and option values. */
interface Completable {
  name: string
  summary: string
  /** `--config`, `-c`, … with whether each takes a value. */
  flags: Array<{ long: string; short?: string; takesValue: boolean; values?: readonly string[]; file?: boolean }>
  positionals: readonly string[]
}

function completable(spec: CommandSpec, platform: NodeJS.Platform): Completable {
  const { config, instance, ...always } = commonOptions
  const options = { ...(spec.readsNoConfig ? always : { config, instance, ...always }), ...spec.options } as Record<string, { type: string; short?: string }>
  const accepted = (long: string) => spec.optionPlatforms?.[long]?.includes(platform) ?? true
  return {
    name: spec.name,
    summary: spec.summary,
    flags: Object.entries(options).filter(([long]) => accepted(long)).map(([long, o]) => ({
      long,
      ...(o.short ? { short: o.short } : {}),
      takesValue: o.type === 'string',
      ...(spec.optionValues?.[long] ? { values: spec.optionValues[long] } : {}),
      ...(long === 'config' ? { file: true } : {}),
    })),
    positionals: spec.positionals ?? [],
  }
}

/** A word list for a shell's single quotes. */
const singleQuoted = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`

function bash(all: Completable[]): string {
  const cases = all.map((c) => {
    const words = [...c.flags.flatMap((f) => [`--${f.long}`, ...(f.short ? [`-${f.short}`] : [])]), ...c.positionals]
    return `    ${c.name}) words=${singleQuoted(words.join(' '))} ;;`
  })
  const valueCases = [...new Map(all.flatMap((c) => c.flags.filter((f) => f.values).map((f) => [f.long, f.values!] as const)))].map(
    ([long, values]) => `    --${long}) COMPREPLY=($(compgen -W ${singleQuoted(values.join(' '))} -- "$cur")); return ;;`,
  )
  return [
    '# ngrokd completion for bash: eval "$(ngrokd completion bash)" (e.g. in ~/.bashrc)',
    '_ngrokd() {',
    '  local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}" words',
    '  if [ "$COMP_CWORD" -eq 1 ]; then',
    `    COMPREPLY=($(compgen -W ${singleQuoted([...all.map((c) => c.name), 'help'].join(' '))} -- "$cur"))`,
    '    return',
    '  fi',
    '  case "$prev" in',
    '    -c|--config) COMPREPLY=($(compgen -f -- "$cur")); return ;;',
    '    --instance) COMPREPLY=(); return ;;',
    ...valueCases,
    '  esac',
    '  case "${COMP_WORDS[1]}" in',
    ...cases,
    `    help) words=${singleQuoted(all.map((c) => c.name).join(' '))} ;;`,
    '    *) words= ;;',
    '  esac',
    '  COMPREPLY=($(compgen -W "$words" -- "$cur"))',
    '}',
    'complete -F _ngrokd ngrokd',
    '',
  ].join('\n')
}

/** zsh `_arguments` / `_describe` text: `[`, `]` and `:` are theirs, and the whole is single-quoted. */
const zshText = (text: string) => text.replace(/[[\]:\\]/g, (c) => `\\${c}`)

function zsh(all: Completable[]): string {
  const describe = all.map((c) => singleQuoted(`${c.name}:${zshText(c.summary)}`)).join(' ')
  const cases = all.map((c) => {
    const specs = c.flags.map((f) => {
      const action = f.file ? ':file:_files' : f.values ? `:${f.long}:(${f.values.join(' ')})` : f.takesValue ? `:${f.long}: ` : ''
      const names = f.short ? `{-${f.short},--${f.long}}` : `--${f.long}`
      return f.short ? `'(-${f.short} --${f.long})'${names}${singleQuoted(`[${f.long}]${action}`)}` : singleQuoted(`${names}[${f.long}]${action}`)
    })
    if (c.positionals.length) specs.push(singleQuoted(`1:action:(${c.positionals.join(' ')})`))
    return `    ${c.name}) _arguments ${specs.join(' ')} ;;`
  })
  return [
    '#compdef ngrokd',
    '# ngrokd completion for zsh: ngrokd completion zsh > "${fpath[1]}/_ngrokd" (or eval "$(ngrokd completion zsh)")',
    '_ngrokd() {',
    `  local -a commands; commands=(${describe})`,
    '  if (( CURRENT == 2 )); then _describe command commands; return; fi',
    '  shift words; (( CURRENT-- ))',
    '  case $words[1] in',
    ...cases,
    '  esac',
    '}',
    'if [[ $zsh_eval_context[-1] == loadautofunc ]]; then _ngrokd "$@"; else compdef _ngrokd ngrokd; fi',
    '',
  ].join('\n')
}

function fish(all: Completable[]): string {
  const lines = ['# ngrokd completion for fish: ngrokd completion fish > ~/.config/fish/completions/ngrokd.fish', 'complete -c ngrokd -f']
  for (const c of all) {
    lines.push(`complete -c ngrokd -n __fish_use_subcommand -a ${c.name} -d ${singleQuoted(c.summary)}`)
    const when = singleQuoted(`__fish_seen_subcommand_from ${c.name}`)
    for (const f of c.flags) {
      const value = f.file ? ' -r -F' : f.values ? ` -x -a ${singleQuoted(f.values.join(' '))}` : f.takesValue ? ' -x' : ''
      lines.push(`complete -c ngrokd -n ${when} -l ${f.long}${f.short ? ` -s ${f.short}` : ''}${value}`)
    }
    if (c.positionals.length) lines.push(`complete -c ngrokd -n ${when} -a ${singleQuoted(c.positionals.join(' '))}`)
  }
  return `${lines.join('\n')}\n`
}

const RENDER: Record<Shell, (all: Completable[]) => string> = { bash, zsh, fish }

/** `ngrokd completion bash|zsh|fish`: a completion script for every command the CLI has, extras included, with the options `platform` accepts. */
export function completionCommand(all: () => readonly Command[], platform: NodeJS.Platform = process.platform): Command {
  const spec: CommandSpec = {
    name: 'completion',
    summary: 'Print a shell completion script: ngrokd completion bash|zsh|fish.',
    usage: 'ngrokd completion bash|zsh|fish\n\n  bash: eval "$(ngrokd completion bash)" in ~/.bashrc\n  zsh:  ngrokd completion zsh > "${fpath[1]}/_ngrokd"\n  fish: ngrokd completion fish > ~/.config/fish/completions/ngrokd.fish',
    options: {},
    allowPositionals: true,
    positionals: COMPLETION_SHELLS,
    readsNoConfig: true,
  }
  return {
    ...spec,
    async run(argv) {
      const { values, positionals } = parseCommandArgs(spec, argv)
      if (values.help) {
        console.log(`${spec.summary}\n\nUsage: ${spec.usage}`)
        return 0
      }
      const shell = positionals[0] as Shell | undefined
      if (positionals.length !== 1 || !shell || !COMPLETION_SHELLS.includes(shell)) {
        throw new NgrokdError('NGROKD_ERR_USAGE', `expected one shell, ${COMPLETION_SHELLS.join(', ')}; got ${JSON.stringify(positionals.join(' '))}`, { hint: 'see ngrokd completion --help' })
      }
      process.stdout.write(RENDER[shell](all().map((c) => completable(c, platform))))
      return 0
    },
  }
}
