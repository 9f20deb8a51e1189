import 'reflect-metadata'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isNgrokdError, NgrokdError } from '../errors/ngrokd-error.js'
import { parseCommandArgs } from './args.js'
import { main } from './main.js'

/** Runs main() with console.log/console.error captured. */
async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const saved = { log: console.log, error: console.error }
  let out = ''
  let err = ''
  console.log = (...a: unknown[]) => void (out += `${a.join(' ')}\n`)
  console.error = (...a: unknown[]) => void (err += `${a.join(' ')}\n`)
  try {
    return { code: await main(argv), out, err }
  } finally {
    Object.assign(console, saved)
  }
}

const spec = { name: 'status', summary: '', usage: '', options: { json: { type: 'boolean' } } } as const

test('a mistyped flag is a usage error (exit 2) that names the likely flag once', async () => {
  assert.throws(() => parseCommandArgs(spec, ['--jsn']), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_USAGE') && /did you mean --json\?/.test(String((e as { hint?: string }).hint)))
  const r = await cli(['status', '--confg', 'x'])
  assert.equal(r.code, 2)
  assert.equal(r.err.match(/ngrokd status:/g)?.length, 1, `the command is named once:\n${r.err}`)
  assert.match(r.err, /did you mean --config\?/)
})

test('an argument a command does not take is refused, not ignored', async () => {
  assert.throws(() => parseCommandArgs(spec, ['extra']), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_USAGE') && /unexpected argument "extra"/.test((e as Error).message))
  assert.equal((await cli(['version', 'now'])).code, 2)
})

test('an unknown command gets a did-you-mean; `help <command>` is that command’s help', async () => {
  const typo = await cli(['stauts'])
  assert.equal(typo.code, 2)
  assert.match(typo.err, /unknown command "stauts" — did you mean "status"\?/)
  const help = await cli(['help', 'run'])
  assert.equal(help.code, 0)
  assert.match(help.out, /^Usage: ngrokd run/m)
  assert.doesNotMatch(help.out, /^Commands:/m)
})

test('a command that reads no configuration refuses --config and --instance, and its help does not offer them', async () => {
  for (const flag of [['--config', '/etc/ngrokd/config.yml'], ['--instance', 'work']]) {
    const r = await cli(['version', ...flag])
    assert.equal(r.code, 2, flag[0])
    assert.match(r.err, new RegExp(`^ngrokd version: ${flag[0]} does not apply: this command reads no configuration`))
  }
  const help = await cli(['version', '--help'])
  assert.equal(help.code, 0)
  assert.doesNotMatch(help.out, /--config|--instance/)
  assert.match((await cli(['status', '--help'])).out, /--config FILE[\s\S]*--instance NAME/, 'a command that reads one still offers both')
})

test('a word `ngrokd service` does not take is a usage error (exit 2)', async () => {
  const r = await cli(['service', 'frob'])
  assert.equal(r.code, 2)
  assert.match(r.err, /expected install, uninstall or status, got "frob" \(NGROKD_ERR_USAGE\)/)
})

test('help for a command that does not exist, a second key, and a flag whose value looks like a flag are usage errors (exit 2)', async () => {
  const help = await cli(['help', 'stauts'])
  assert.equal(help.code, 2)
  assert.match(help.err, /^ngrokd help: unknown command "stauts" — did you mean "status"\?/)
  const keys = await cli(['set-api-key', 'ak_one', 'ak_two'])
  assert.equal(keys.code, 2)
  assert.match(keys.err, /set-api-key takes one key, got 2 arguments \(NGROKD_ERR_USAGE\)/)
  const flag = await cli(['status', '--config', '--json'])
  assert.equal(flag.code, 2)
  assert.doesNotMatch(flag.err, /did you mean/, 'the flag typed exists: no suggestion of itself')
})

test("parseArgs's complaints are said in ngrokd's words, without advice that fails", async () => {
  const unknown = await cli(['status', '--jsn'])
  assert.equal(unknown.code, 2)
  assert.match(unknown.err, /^ngrokd status: unknown option --jsn \(NGROKD_ERR_USAGE\)/)
  assert.doesNotMatch(unknown.err, /positional argument/)
  assert.match((await cli(['status', '--json_output'])).err, /^ngrokd status: unknown option --json_output \(/, 'the option as typed, not the known one it starts with')
  const missing = await cli(['status', '--config'])
  assert.equal(missing.code, 2)
  assert.match(missing.err, /^ngrokd status: --config needs a value/)
  const extra = await cli(['status', '--json=yes'])
  assert.match(extra.err, /^ngrokd status: --json takes no value/)
  const dash = await cli(['status', '--config', '-x'])
  assert.match(dash.err, /--config needs a value, and the next word looks like an option; write --config=VALUE/)
  assert.match((await cli(['status', '-c', '-x'])).err, /-c needs a value, .*write --config=VALUE/, 'the long name, which takes =')
})

test('an option before the command, and anything after --version, are usage errors (exit 2)', async () => {
  const before = await cli(['--config', '/etc/ngrokd/config.yml', 'status'])
  assert.equal(before.code, 2)
  assert.match(before.err, /^ngrokd: --config is an option, and options go after the command: ngrokd status --config …/)
  const alone = await cli(['-x'])
  assert.equal(alone.code, 2)
  assert.match(alone.err, /^ngrokd: -x is an option, and options go after the command\n/)
  for (const [typo, meant] of [['--verison', '--version'], ['--hepl', '--help']]) {
    const misspelt = await cli([typo!])
    assert.equal(misspelt.code, 2)
    assert.match(misspelt.err, new RegExp(`^ngrokd: unknown option ${typo} — did you mean ${meant}\\?\n`))
  }
  const version = await cli(['--version', 'status'])
  assert.equal(version.code, 2)
  assert.match(version.err, /--version takes nothing after it/)
})

test('a reload of a daemon that found its config file without --config says that file is gone, not that --config is wrong', async () => {
  const { rereadError } = await import('./commands.js')
  const missing = new NgrokdError('NGROKD_ERR_CONFIG_NOT_FOUND', 'config file /etc/ngrokd/config.yml does not exist', { hint: 'check the path given with --config' })
  const said = rereadError(missing, '/etc/ngrokd/config.yml')
  assert.ok(isNgrokdError(said, 'NGROKD_ERR_CONFIG_NOT_FOUND'))
  assert.equal(said.message, 'the config file this daemon started from, /etc/ngrokd/config.yml, is gone')
  assert.match(said.hint ?? '', /^put it back; the daemon keeps running on what it read at its start$/)
  assert.equal(rereadError(missing, undefined), missing, 'named with --config: the typo is the likelier cause, said as it is')
  const invalid = new NgrokdError('NGROKD_ERR_CONFIG_INVALID', 'x')
  assert.equal(rereadError(invalid, '/etc/ngrokd/config.yml'), invalid)
})

test('reload of an empty config file (a write under way) is refused naming the file, and no daemon is asked', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ngrokd-main-empty-'))
  const socket = join(dir, 'd.sock')
  let asked = 0
  const server = createServer((c) => void (asked++, c.destroy())).listen(socket)
  await once(server, 'listening')
  const saved = process.env.NGROKD_CONTROL_SOCKET
  process.env.NGROKD_CONTROL_SOCKET = socket // what the defaults would lead to
  try {
    const file = join(dir, 'config.yml')
    writeFileSync(file, '')
    const r = await cli(['reload', '--config', file])
    assert.equal(r.code, 1, r.err)
    assert.match(r.err, new RegExp(`^ngrokd reload: config file ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is empty \\(a write under way\\?\\): it names no daemon to reload, and none was asked; a daemon running on it keeps the configuration it runs on`))
    assert.equal(asked, 0)
  } finally {
    if (saved === undefined) delete process.env.NGROKD_CONTROL_SOCKET
    else process.env.NGROKD_CONTROL_SOCKET = saved
    server.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a command given --json that fails prints the failure as JSON on stdout too; without --json stdout stays empty', async () => {
  const missing = '/nonexistent/ngrokd-main-test.yml'
  for (const command of ['status', 'list', 'reload']) {
    const r = await cli([command, '--json', '--config', missing])
    assert.equal(r.code, 1, command)
    const { error } = JSON.parse(r.out) as { error: { code: string; message: string; hint?: string } }
    assert.equal(error.code, 'NGROKD_ERR_CONFIG_NOT_FOUND', command)
    assert.match(error.message, /ngrokd-main-test\.yml/, command)
    assert.match(r.err, new RegExp(`^ngrokd ${command}: .*NGROKD_ERR_CONFIG_NOT_FOUND`), `${command}: people still read it on stderr`)
  }
  const usage = await cli(['list', '--json', '--frob'])
  assert.equal(usage.code, 2)
  assert.equal((JSON.parse(usage.out) as { error: { code: string } }).error.code, 'NGROKD_ERR_USAGE')
  const text = await cli(['status', '--config', missing])
  assert.equal(text.out, '')
  // doctor's JSON is its report, in which a config that does not load is a failed check
  const doctor = await cli(['doctor', '--json', '--offline', '--config', missing])
  assert.equal(doctor.code, 1)
  const report = JSON.parse(doctor.out) as { ok: boolean; checks: { id: string; code?: string }[] }
  assert.equal(report.checks.find((c) => c.id === 'config.load')?.code, 'NGROKD_ERR_CONFIG_NOT_FOUND')
})

test('--config= with no value is a usage error, not the current directory', async () => {
  for (const flag of ['--config=', '--instance=']) {
    const r = await cli(['status', flag])
    assert.equal(r.code, 2, flag)
    assert.match(r.err, new RegExp(`^ngrokd status: ${flag.slice(0, -1)} needs a value`))
  }
})

test('help, help help, help --help and help -h print the usage on stdout and exit 0', async () => {
  for (const argv of [['help'], ['help', 'help'], ['help', '--help'], ['help', '-h'], ['--help']]) {
    const r = await cli(argv)
    assert.equal(r.code, 0, argv.join(' '))
    assert.match(r.out, /Commands:/, argv.join(' '))
    assert.match(r.out, /^  help +Print this help, or a command's/m, 'help, which works and is completed, is listed with the commands')
  }
  const none = await cli([])
  assert.equal(none.code, 2)
  assert.match(none.err, /Commands:/)
})

test('an error that quotes the API or a file reaches the terminal escaped: nothing in it can redraw the screen', async () => {
  const saved = console.error
  let err = ''
  console.error = (...a: unknown[]) => void (err += `${a.join(' ')}\n`)
  try {
    const boom = { name: 'boom', summary: '', usage: '', options: {}, run: async () => Promise.reject(new Error('bad\u001b]0;TITLE\u0007\u001b[2J\r✔ all good')) }
    assert.equal(await main(['boom'], [boom]), 1)
  } finally {
    console.error = saved
  }
  assert.equal(err, 'ngrokd boom: bad\\u001b]0;TITLE\\u0007\\u001b[2J\\u000d✔ all good\n')
})
