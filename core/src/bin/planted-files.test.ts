// The reproduction of issue "root runs what another user planted": the real ngrokd CLI, run as root
// from a directory another user owns and filled, in a private network and mount namespace.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { NGROKD_BIN } from '../daemon/daemon-process.js'
import { localUser, localUserSkip, type LocalUser } from '../util/local-user.test-helper.js'

const run = promisify(execFile)

interface DoctorOutput {
  checks: Array<{ id: string; status: string; summary: string }>
}

describe('ngrokd doctor as root in a directory another user filled', { skip: localUserSkip() }, () => {
  let top: string
  let cwd: string
  let eve: LocalUser
  const marker = () => join(top, 'PLANTED-CODE-RAN')
  /** Planted code leaves a file behind when it runs. */
  const evil = () => `import { writeFileSync } from 'node:fs'\nwriteFileSync(${JSON.stringify(marker())}, 'ran as uid ' + process.getuid())\nexport default {}\n`
  const doctor = async (...args: string[]) => {
    const r: { stdout: string; stderr: string; code?: number } = await run('unshare', ['-n', '-m', process.execPath, NGROKD_BIN, 'doctor', '--offline', '--json', ...args], { cwd, env: { PATH: process.env.PATH } }).catch(
      (e: { stdout: string; stderr: string; code: number }) => e,
    )
    return { ...r, code: r.code ?? 0, json: (r.stdout ? JSON.parse(r.stdout) : { checks: [] }) as DoctorOutput }
  }

  before(async () => {
    eve = localUser()!
    top = await mkdtemp(join(tmpdir(), 'ngrokd-planted-cli-'))
    await chmod(top, 0o755)
    cwd = join(top, 'eve')
    await mkdir(join(cwd, 'node_modules', '@ngrokd', 'driver-linux-netlink'), { recursive: true })
    await writeFile(join(cwd, 'ngrokd.yaml'), 'net:\n  driver: ./evil.mjs\n')
    await writeFile(join(cwd, 'evil.mjs'), evil())
    const pkg = join(cwd, 'node_modules', '@ngrokd', 'driver-linux-netlink')
    await writeFile(join(pkg, 'package.json'), JSON.stringify({ name: '@ngrokd/driver-linux-netlink', type: 'module', exports: { '.': { default: './index.js' } } }))
    await writeFile(join(pkg, 'index.js'), evil())
    await run('chown', ['-R', `${eve.uid}:${eve.gid}`, cwd])
  })
  after(() => rm(top, { recursive: true, force: true }))

  it("ignores the planted ngrokd.yaml and node_modules/@ngrokd/driver-linux-netlink: defaults and the installed driver", async () => {
    const r = await doctor()
    assert.ok(!existsSync(marker()), `planted code ran: ${r.stderr}`)
    const byId = new Map(r.json.checks.map((c) => [c.id, c]))
    assert.match(byId.get('config.load')?.summary ?? '', /configuration from defaults and environment/, r.stdout)
    assert.match(byId.get('driver.resolve')?.summary ?? '', /net\.driver auto → linux-netlink/, r.stdout)
    assert.match(byId.get('config.search')?.summary ?? '', /ngrokd\.yaml is not read: as root the current directory is not searched/, 'the file passed over is named (not read)')
  })

  it('refuses the planted file named with --config, naming its owner', async () => {
    const r = await doctor('--config', 'ngrokd.yaml')
    assert.ok(!existsSync(marker()), 'planted code ran')
    assert.equal(r.code, 1)
    assert.ok(r.json.checks.some((c) => c.status === 'fail' && c.summary.includes(`is owned by ${eve.name}`)), r.stdout)
    assert.match(r.stdout, /NGROKD_ERR_PATH_UNTRUSTED/)
  })

  it("still uses root's own config there with --config (the driver path resolves next to it)", async () => {
    const mine = join(top, 'root-config')
    await mkdir(mine, { mode: 0o755 })
    await writeFile(join(mine, 'ngrokd.yaml'), 'net:\n  driver: loopback-alias\n', { mode: 0o644 })
    const r = await doctor('--config', join(mine, 'ngrokd.yaml'))
    assert.ok(!existsSync(marker()))
    assert.match(r.json.checks.find((c) => c.id === 'driver.resolve')?.summary ?? '', /loopback-alias/, r.stdout)
  })
})
