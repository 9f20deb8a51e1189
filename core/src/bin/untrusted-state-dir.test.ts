// The reproduction of "a state_dir another user owns" (and of a hosts_file reached through another user's link): as root, that user could leave an interrupted
// hosts-file write in it naming any file, and ngrokd would put the user's "backup" back over that file.
// The real CLI, as root, in a private network and mount namespace: run, cleanup and doctor refuse the
// directory, and the file named stays as it was.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { execFile } from 'node:child_process'
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { NGROKD_BIN } from '../daemon/daemon-process.js'
import { HOSTS_BACKUP_FILE, HOSTS_INFLIGHT_FILE, HOSTS_NEXT_FILE } from '../names/hosts-file-name-resolver.js'
import { localUser, localUserSkip, type LocalUser } from '../util/local-user.test-helper.js'

const run = promisify(execFile)
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex')

/** What the root-owned file every test here protects holds. */
const VICTIM = Buffer.from('root-owned original content, do not change\n')

/** A fresh folder (0755, under sticky /tmp) holding the root-owned `victim` file. */
async function folderWithVictim(prefix: string): Promise<{ top: string; victim: string }> {
  const top = await mkdtemp(join(tmpdir(), prefix))
  await chmod(top, 0o755)
  const victim = join(top, 'victim')
  await writeFile(victim, VICTIM, { mode: 0o644 })
  return { top, victim }
}

/** The real CLI as root with `configFile`, in a private network and mount namespace. */
async function ngrokdWith(configFile: string, ...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  const r: { stdout: string; stderr: string; code?: number } = await run('unshare', ['-n', '-m', process.execPath, NGROKD_BIN, ...args, '--config', configFile], { env: { PATH: process.env.PATH } }).catch(
    (e: { stdout: string; stderr: string; code: number }) => e,
  )
  return { ...r, code: r.code ?? 0 }
}

describe('as root, a state_dir another user owns', { skip: localUserSkip() }, () => {
  let top: string
  let stateDir: string
  let victim: string
  let configFile: string
  let eve: LocalUser
  const ngrokd = (...args: string[]) => ngrokdWith(configFile, ...args)

  before(async () => {
    eve = localUser()!
    ;({ top, victim } = await folderWithVictim('ngrokd-state-owner-'))
    await writeFile(join(top, 'hosts'), '127.0.0.1 localhost\n', { mode: 0o644 })
    // what eve leaves in "her" state dir: a cut-off write of the victim, whose backup is hers
    stateDir = join(top, 'eve-state')
    await mkdir(stateDir, { mode: 0o700 })
    const backup = Buffer.from('PLANTED by another user\n')
    const next = Buffer.concat([VICTIM.subarray(0, -1), Buffer.from('X')])
    await writeFile(join(stateDir, HOSTS_BACKUP_FILE), backup)
    await writeFile(join(stateDir, HOSTS_NEXT_FILE), next)
    const marker = { path: victim, startedAt: new Date().toISOString(), old: { size: backup.length, sha256: sha256(backup) }, new: { size: next.length, sha256: sha256(next) } }
    await writeFile(join(stateDir, HOSTS_INFLIGHT_FILE), JSON.stringify(marker))
    await run('chown', ['-R', `${eve.uid}:${eve.gid}`, stateDir])
    configFile = join(top, 'ngrokd.json')
    const config = { state_dir: stateDir, names: { hosts_file: join(top, 'hosts') }, net: { driver: 'loopback-alias', subnet: '127.107.0.0/16' }, control: { socket: join(top, 'ctl.sock') } }
    await writeFile(configFile, JSON.stringify(config), { mode: 0o644 })
  })
  after(() => rm(top, { recursive: true, force: true }))

  for (const command of ['run', 'cleanup']) {
    it(`${command} refuses it, naming the owner and the fix, and the file it names is not touched`, async () => {
      const r = await ngrokd(command)
      assert.notEqual(r.code, 0, r.stderr)
      assert.match(r.stderr, new RegExp(`refusing state directory ${stateDir}: .* is owned by ${eve.name}`))
      assert.match(r.stderr, /NGROKD_ERR_PATH_UNTRUSTED/)
      assert.match(r.stderr, new RegExp(`chown root ${stateDir}`))
      assert.deepEqual(await readFile(victim), VICTIM)
    })
  }

  it('doctor fails the state.dir check the same way', async () => {
    const r = await ngrokd('doctor', '--offline', '--json')
    assert.equal(r.code, 1, r.stderr)
    const check = (JSON.parse(r.stdout) as { checks: Array<{ id: string; status: string; summary: string; code?: string }> }).checks.find((c) => c.id === 'state.dir')
    assert.equal(check?.status, 'fail', r.stdout)
    assert.equal(check?.code, 'NGROKD_ERR_PATH_UNTRUSTED')
    assert.deepEqual(await readFile(victim), VICTIM)
  })
})

describe('as root, a hosts_file reached through a link another user may re-point', { skip: localUserSkip() }, () => {
  let top: string
  let victim: string
  let configFile: string
  let eve: LocalUser

  before(async () => {
    eve = localUser()!
    // root's file, named through eve's link: after a check of the file alone she could point the link anywhere
    ;({ top, victim } = await folderWithVictim('ngrokd-hosts-link-'))
    const eveDir = join(top, 'eve')
    await mkdir(eveDir, { mode: 0o755 })
    await symlink(victim, join(eveDir, 'hosts'))
    await run('chown', ['-R', '-h', `${eve.uid}:${eve.gid}`, eveDir])
    configFile = join(top, 'ngrokd.json')
    const config = { state_dir: join(top, 'state'), names: { hosts_file: join(eveDir, 'hosts') }, net: { driver: 'loopback-alias', subnet: '127.107.0.0/16' }, control: { socket: join(top, 'ctl.sock') } }
    await writeFile(configFile, JSON.stringify(config), { mode: 0o644 })
  })
  after(() => rm(top, { recursive: true, force: true }))

  for (const command of ['run', 'cleanup']) {
    it(`${command} refuses it, naming the link and its owner, and the file is not touched`, async () => {
      const r = await ngrokdWith(configFile, command)
      assert.notEqual(r.code, 0, r.stderr)
      assert.match(r.stderr, new RegExp(`refusing hosts file \\(names.hosts_file\\) ${victim} .*the link ${join(top, 'eve', 'hosts')} is owned by ${eve.name}`))
      assert.match(r.stderr, /NGROKD_ERR_PATH_UNTRUSTED/)
      assert.deepEqual(await readFile(victim), VICTIM)
    })
  }

  it('doctor fails it as run does, whatever names.resolver is, instead of calling it readable and writable', async () => {
    const dnsConfig = join(top, 'dns.json')
    await writeFile(dnsConfig, JSON.stringify({ ...JSON.parse(await readFile(configFile, 'utf8')), plugins: ['dns'], names: { hosts_file: join(top, 'eve', 'hosts'), resolver: 'dns' } }), { mode: 0o644 })
    for (const file of [configFile, dnsConfig]) {
      const r = await ngrokdWith(file, 'doctor', '--json', '--offline')
      const check = (JSON.parse(r.stdout) as { checks: Array<{ id: string; status: string; summary: string; code?: string }> }).checks.find((c) => c.id === 'hosts-file.access')
      assert.equal(check?.status, 'fail', r.stdout)
      assert.equal(check?.code, 'NGROKD_ERR_PATH_UNTRUSTED')
      assert.match(check!.summary, new RegExp(`the link ${join(top, 'eve', 'hosts')} is owned by ${eve.name}`))
    }
  })

  it('a hosts file whose folder does not exist: doctor fails it as run refuses it, both with the code and fix (no crash, no stack)', async () => {
    const missing = join(top, 'missing.json')
    await writeFile(missing, JSON.stringify({ ...JSON.parse(await readFile(configFile, 'utf8')), names: { hosts_file: join(top, 'no-such-folder', 'hosts') } }), { mode: 0o644 })
    const r = await ngrokdWith(missing, 'doctor', '--json', '--offline')
    const check = (JSON.parse(r.stdout) as { checks: Array<{ id: string; status: string; summary: string; code?: string }> }).checks.find((c) => c.id === 'hosts-file.access')
    assert.equal(check?.status, 'fail', r.stdout)
    assert.equal(check?.code, 'NGROKD_ERR_HOSTS_FILE')
    assert.match(check!.summary, /its folder .*no-such-folder does not exist/)
    const run = await ngrokdWith(missing, 'run')
    assert.notEqual(run.code, 0)
    assert.match(run.stderr, /its folder .*no-such-folder does not exist.*NGROKD_ERR_HOSTS_FILE/s)
    assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack')
  })
})
