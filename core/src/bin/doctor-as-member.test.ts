// `ngrokd doctor` run by a control.group member (not root) about root's daemon: the state_dir is root's, and what this
// user may write (state_dir, the hosts file) or do (the driver's own checks) is not what the daemon may — not failures.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { NGROKD_BIN } from '../daemon/daemon-process.js'
import { cannotRunNode, localUser, localUserSkip, type LocalUser } from '../util/local-user.test-helper.js'

const run = promisify(execFile)

interface Report {
  ok: boolean
  checks: Array<{ id: string; status: string; summary: string; hint?: string }>
}

describe('doctor as another user than the state_dir\'s owner', { skip: localUserSkip() }, () => {
  let top: string
  let stateDir: string
  let configFile: string
  let member: LocalUser

  const doctor = async (as?: LocalUser): Promise<{ code: number; report: Report }> => {
    const r: { stdout: string; code?: number } = await run(process.execPath, [NGROKD_BIN, 'doctor', '--offline', '--json', '--config', configFile], {
      env: { PATH: process.env.PATH, HOME: top },
      cwd: top,
      ...(as ? { uid: as.uid, gid: as.gid } : {}),
    }).catch((e: { stdout: string; code: number }) => e)
    return { code: r.code ?? 0, report: JSON.parse(r.stdout) as Report }
  }

  /** Why this user cannot run this node (one installed under a folder only root may enter), or false. */
  let cannotRun: string | false = false

  before(async () => {
    member = localUser()!
    cannotRun = await cannotRunNode(member)
    top = await mkdtemp(join(tmpdir(), 'ngrokd-doctor-member-'))
    await chmod(top, 0o755)
    stateDir = join(top, 'state')
    await mkdir(stateDir, { mode: 0o700 })
    const hostsFile = join(top, 'hosts')
    await writeFile(hostsFile, '127.0.0.1 localhost\n', { mode: 0o644 })
    configFile = join(top, 'config.yml')
    const config = [`state_dir: ${stateDir}`, 'names:', `  hosts_file: ${hostsFile}`, 'control:', `  socket: ${join(top, 'ngrokd.sock')}`, '']
    await writeFile(configFile, config.join('\n'), { mode: 0o644 })
  })
  after(() => rm(top, { recursive: true, force: true }))

  it("says once that the daemon's rights are not judged by this user's, and fails none of them", async (t) => {
    if (cannotRun) return t.skip(cannotRun)
    const { code, report } = await doctor(member)
    const ids = report.checks.map((c) => c.id)
    const user = report.checks.find((c) => c.id === 'doctor.user')
    assert.equal(user?.status, 'skip', JSON.stringify(report.checks, null, 1))
    assert.match(user.summary, new RegExp(`state_dir ${stateDir} is root's and this doctor runs as uid ${member.uid}`))
    assert.match(user.hint ?? '', /sudo ngrokd doctor/)
    assert.ok(!ids.includes('state.dir') && !ids.includes('hosts-file.access'), ids.join(', '))
    assert.deepEqual(report.checks.filter((c) => c.status === 'fail'), [])
    assert.equal(code, 0)
  })

  it('as root (the owner) every one of them is checked, and no such note is made', async () => {
    const { report } = await doctor()
    const ids = report.checks.map((c) => c.id)
    assert.ok(ids.includes('state.dir') && ids.includes('hosts-file.access'), ids.join(', '))
    assert.ok(!ids.includes('doctor.user'))
  })
})
