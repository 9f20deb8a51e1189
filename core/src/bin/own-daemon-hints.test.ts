// A user's own daemon (its config in the user's home, found by the config search, its state there) is told how to reach
// it as that user: the hints of doctor and status name its config and no sudo, which would run root's daemon instead.
// Root's daemon's hints keep sudo.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { NGROKD_BIN } from '../daemon/daemon-process.js'
import { cannotRunNode, localUser, localUserSkip, type LocalUser } from '../util/local-user.test-helper.js'

const run = promisify(execFile)

interface Report {
  checks: Array<{ id: string; status: string; summary: string; hint?: string }>
}

describe("the hints to set a key and start the daemon are for this config's daemon, under sudo only when its state is root's", { skip: localUserSkip() }, () => {
  let top: string
  let user: LocalUser
  /** Why this user cannot run this node (one installed under a folder only root may enter), or false. */
  let cannotRun: string | false = false

  /** A config in `dir` whose state, socket and hosts file are there too. */
  const configIn = async (dir: string): Promise<string> => {
    await writeFile(join(dir, 'hosts'), '127.0.0.1 localhost\n')
    const file = join(dir, 'ngrokd.yaml')
    await writeFile(file, [`state_dir: ${join(dir, 'state')}`, 'names:', `  hosts_file: ${join(dir, 'hosts')}`, 'control:', `  socket: ${join(dir, 'ngrokd.sock')}`, ''].join('\n'))
    return file
  }
  const cli = (args: string[], cwd: string, as?: LocalUser) =>
    run(process.execPath, [NGROKD_BIN, ...args], { env: { PATH: process.env.PATH, HOME: cwd }, cwd, ...(as ? { uid: as.uid, gid: as.gid } : {}) }).catch(
      (e: { stdout: string; stderr: string }) => e,
    )
  const hintsOf = (stdout: string) => {
    const checks = (JSON.parse(stdout) as Report).checks
    return { key: checks.find((c) => c.id === 'api.key')?.hint, start: checks.find((c) => c.id === 'daemon.running')?.hint }
  }

  before(async () => {
    user = localUser()!
    cannotRun = await cannotRunNode(user)
    top = await mkdtemp(join(tmpdir(), 'ngrokd-own-daemon-'))
    await chmod(top, 0o755)
  })
  after(() => rm(top, { recursive: true, force: true }))

  it("a user's own daemon: its config, no sudo", async (t) => {
    if (cannotRun) return t.skip(cannotRun)
    const home = join(top, 'home')
    await mkdir(home)
    const config = await configIn(home)
    for (const f of [home, config, join(home, 'hosts')]) await chown(f, user.uid, user.gid)
    const doctor = await cli(['doctor', '--offline', '--json'], home, user)
    assert.deepEqual(hintsOf(doctor.stdout), {
      key: `echo "$KEY" | ngrokd set-api-key --config ${config}`,
      start: `start it with \`ngrokd run --config ${config}\` (or check control.socket); a daemon started before both control.socket and state_dir were changed in its file answers only on its old socket: restart it`,
    })
    const status = await cli(['status'], home, user)
    assert.match(status.stderr, new RegExp(`^ngrokd status: ngrokd is not running .*\\n  hint: start it with \`ngrokd run --config ${config}\` `, 'm'))
    // a malformed key saved there: the hint to give a good one is the same command
    const state = join(home, 'state')
    await mkdir(state, { mode: 0o700 })
    await writeFile(join(state, 'api-key'), 'abc\n', { mode: 0o600 })
    for (const f of [state, join(state, 'api-key')]) await chown(f, user.uid, user.gid)
    const malformed = await cli(['doctor', '--offline', '--json'], home, user)
    assert.match(hintsOf(malformed.stdout).key ?? '', new RegExp(`run: echo "\\$KEY" \\| ngrokd set-api-key --config ${config}$`))
    // a malformed key piped to set-api-key itself: the same command, found by the same search
    const given = await new Promise<{ stderr: string }>((done) => {
      const child = execFile(process.execPath, [NGROKD_BIN, 'set-api-key'], { env: { PATH: process.env.PATH, HOME: home }, cwd: home, uid: user.uid, gid: user.gid }, (_e, _out, stderr) => done({ stderr }))
      child.stdin!.end('abc\n')
    })
    assert.match(given.stderr, new RegExp(`hint: .*run: echo "\\$KEY" \\| ngrokd set-api-key --config ${config}$`, 'm'))
  })

  it("root's daemon: sudo", async () => {
    const dir = join(top, 'root')
    await mkdir(dir)
    const config = await configIn(dir)
    const doctor = await cli(['doctor', '--offline', '--json', '--config', config], dir)
    const hints = hintsOf(doctor.stdout)
    assert.equal(hints.key, `echo "$KEY" | sudo ngrokd set-api-key --config ${config}`)
    assert.match(hints.start ?? '', new RegExp(`^start it with \`sudo ngrokd run --config ${config}\``))
  })
})
