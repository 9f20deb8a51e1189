import 'reflect-metadata'
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { main } from './main.js'
import { completionCommand } from './completion.js'
import type { Command } from './commands.js'

/** The script `ngrokd completion <shell>` prints, with an extra command as the ngrokd package adds demo. */
async function script(shell: string): Promise<string> {
  const extra: Command = { name: 'demo', summary: "Try it: a simulated cloud (it's safe)", usage: '', options: { once: { type: 'boolean' } }, readsNoConfig: true, run: async () => 0 }
  let out = ''
  const write = process.stdout.write
  process.stdout.write = ((chunk: string) => ((out += chunk), true)) as typeof process.stdout.write
  try {
    assert.equal(await main(['completion', shell], [extra]), 0)
  } finally {
    process.stdout.write = write
  }
  return out
}

const has = (shell: string) => spawnSync(shell, ['-c', 'exit 0']).status === 0

function withFile<T>(name: string, text: string, use: (path: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'ngrokd-completion-'))
  try {
    const path = join(dir, name)
    writeFileSync(path, text)
    return use(path)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

describe('ngrokd completion', () => {
  test('bash: commands, then each command\'s flags and words, then an option\'s values', async () => {
    const text = await script('bash')
    /** What bash offers for the words typed so far (the last one being completed). */
    const offer = (...words: string[]) =>
      withFile('ngrokd.bash', text, (path) =>
        execFileSync('bash', ['-c', `source ${path}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _ngrokd; printf '%s\\n' "\${COMPREPLY[@]}"`], { encoding: 'utf8' })
          .split('\n')
          .filter(Boolean)
          .sort(),
      )
    assert.deepEqual(offer('ngrokd', 'se'), ['service', 'set-api-key'])
    assert.ok(offer('ngrokd', '').includes('demo'), 'an extra command is completed too')
    assert.deepEqual(offer('ngrokd', 'run', '--log'), ['--log-format'])
    assert.deepEqual(offer('ngrokd', 'run', '--log-format', ''), ['auto', 'json', 'pretty'])
    assert.deepEqual(offer('ngrokd', 'service', 'in'), ['install'])
    assert.deepEqual(offer('ngrokd', 'status', '--'), ['--config', '--help', '--instance', '--json'])
    assert.deepEqual(offer('ngrokd', 'version', '--'), ['--help'], 'a command that reads no configuration is offered no --config')
    assert.deepEqual(offer('ngrokd', 'demo', '--'), ['--help', '--once'])
    if (process.platform !== 'win32') assert.ok(!offer('ngrokd', 'run', '--').includes('--service'), 'run --service, which only Windows accepts, is not offered here')
  })

  test("an option only some platforms accept is offered by every shell's script there alone (run --service: Windows)", async () => {
    const { commands } = await import('./commands.js')
    const scriptFor = async (shell: string, platform: NodeJS.Platform) => {
      let out = ''
      const write = process.stdout.write
      process.stdout.write = ((chunk: string) => ((out += chunk), true)) as typeof process.stdout.write
      try {
        assert.equal(await completionCommand(() => commands, platform).run([shell]), 0)
      } finally {
        process.stdout.write = write
      }
      return out
    }
    for (const shell of ['bash', 'zsh', 'fish']) {
      assert.match(await scriptFor(shell, 'win32'), /(--|-l )service\b/, shell)
      const linux = await scriptFor(shell, 'linux')
      assert.match(linux, /(--|-l )log-format\b/, shell)
      assert.doesNotMatch(linux, /(--|-l )service\b/, shell)
    }
  })

  test('fish: the same, through fish itself', { skip: has('fish') ? false : 'fish is not installed' }, async () => {
    const text = await script('fish')
    const offer = (line: string) =>
      withFile('ngrokd.fish', text, (path) => execFileSync('fish', ['-c', `source ${path}; complete -C ${JSON.stringify(line)}`], { encoding: 'utf8' }))
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split('\t')[0]!)
        .sort()
    assert.deepEqual(offer('ngrokd se'), ['service', 'set-api-key'])
    assert.deepEqual(offer('ngrokd run --log-format '), ['auto', 'json', 'pretty'])
    assert.deepEqual(offer('ngrokd service '), ['install', 'status', 'uninstall'])
    assert.ok(offer('ngrokd ').includes('demo'))
  })

  test('zsh: the script parses and defines the completion function under compinit', { skip: has('zsh') ? false : 'zsh is not installed' }, async () => {
    const text = await script('zsh')
    assert.match(text, /'demo:Try it\\: a simulated cloud \(it'\\''s safe\)'/, 'summaries are quoted for zsh')
    withFile('_ngrokd', text, (path) => {
      execFileSync('zsh', ['-n', path])
      const out = execFileSync('zsh', ['-f', '-c', `autoload -U compinit; compinit -u -D; source ${path}; print -r -- \${_comps[ngrokd]}`], { encoding: 'utf8', env: { ...process.env, HOME: tmpdir() } })
      assert.equal(out.trim(), '_ngrokd')
    })
  })

  test('a shell it does not know is a usage error', async () => {
    const saved = console.error
    console.error = () => {}
    try {
      assert.equal(await main(['completion', 'tcsh']), 2)
    } finally {
      console.error = saved
    }
  })
})
