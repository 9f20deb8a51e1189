import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { chmod, chown, lchown, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { localUser, localUserSkip, type LocalUser } from './local-user.test-helper.js'
import { assertTrustedPath, rootMapsToMachineRoot } from './trusted-path.js'

const skip = localUserSkip()

describe('assertTrustedPath: as root, only what root alone can change', { skip }, () => {
  let dir: string
  let eve: LocalUser
  const untrusted = async (path: string, pattern: RegExp) => {
    await assert.rejects(assertTrustedPath(path, { what: 'config file' }), (e: unknown) => {
      assert.ok(isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED'), String(e))
      assert.match(e.message, pattern)
      assert.match(e.message, /as root ngrokd uses only files that root alone can change/)
      assert.ok(e.hint, 'says how to fix it')
      return true
    })
  }

  before(async () => {
    eve = localUser()!
    // /tmp itself is sticky and root's: the accepted shape of a shared parent
    dir = await mkdtemp(join(tmpdir(), 'ngrokd-trust-'))
    await chmod(dir, 0o755)
  })
  after(() => rm(dir, { recursive: true, force: true }))

  it('accepts a root-owned 0644 file in root-owned directories (and under sticky /tmp)', async () => {
    const file = join(dir, 'ok.yml')
    await writeFile(file, 'log: {}\n', { mode: 0o644 })
    assert.equal(await assertTrustedPath(file, { what: 'config file' }), file)
  })

  it('refuses a file another user owns, naming the owner, the mode and the fix', async () => {
    const file = join(dir, 'planted.yml')
    await writeFile(file, 'net:\n  driver: ./evil.mjs\n', { mode: 0o644 })
    await chown(file, eve.uid, eve.gid)
    await untrusted(file, new RegExp(`refusing config file ${file}: ${file} is owned by ${eve.name} \\(uid ${eve.uid}\\) \\(owner ${eve.name} \\(uid ${eve.uid}\\), mode 0644\\)`))
    await assert.rejects(assertTrustedPath(file, { what: 'config file' }), (e: any) => /chown root/.test(e.hint))
  })

  it('refuses a root-owned file that group or others may write', async () => {
    const file = join(dir, 'group.yml')
    await writeFile(file, '{}')
    await chmod(file, 0o664)
    await untrusted(file, /is writable by its group \(owner root \(uid 0\), mode 0664\)/)
    await chmod(file, 0o646)
    await untrusted(file, /is writable by everyone/)
  })

  it("refuses a root-owned file in a directory another user owns (they may replace it)", async () => {
    const home = join(dir, 'eve-home')
    await mkdir(home, { mode: 0o755 })
    await chown(home, eve.uid, eve.gid)
    const file = join(home, 'ngrokd.yaml')
    await writeFile(file, '{}', { mode: 0o644 })
    await untrusted(file, new RegExp(`its directory ${home} is owned by ${eve.name}`))
  })

  it('refuses a world-writable directory that is not sticky, and accepts a sticky root-owned one', async () => {
    const shared = join(dir, 'shared')
    await mkdir(shared)
    await chmod(shared, 0o777)
    const file = join(shared, 'c.yml')
    await writeFile(file, '{}', { mode: 0o600 })
    await untrusted(file, new RegExp(`its directory ${shared} is writable by its group and everyone \\(owner root \\(uid 0\\), mode 0777\\)`))
    await chmod(shared, 0o1777)
    assert.equal(await assertTrustedPath(file, { what: 'config file' }), file)
  })

  it('follows a symbolic link and judges the file it points to', async () => {
    const target = join(dir, 'eve-target.yml')
    await writeFile(target, '{}', { mode: 0o644 })
    await chown(target, eve.uid, eve.gid)
    const link = join(dir, 'link.yml')
    await symlink(target, link)
    await untrusted(link, new RegExp(`refusing config file ${target} \\(${link}\\): ${target} is owned by ${eve.name}`))
  })

  it('refuses a trusted file reached through a link another user may re-point, however deep in the chain', async () => {
    const trusted = join(dir, 'root-ca.pem')
    await writeFile(trusted, 'pem', { mode: 0o644 })
    const home = join(dir, 'eve-links')
    await mkdir(home, { mode: 0o755 })
    await chown(home, eve.uid, eve.gid)
    const eveLink = join(home, 'ca.pem') // eve may point it at her own CA after the check
    await symlink(trusted, eveLink)
    await untrusted(eveLink, new RegExp(`refusing config file ${trusted} \\(${eveLink}\\): the link ${eveLink} is in ${home}, which is owned by ${eve.name}`))
    const rootLink = join(dir, 'via-eve.pem') // root's own link, to eve's link
    await symlink(eveLink, rootLink)
    await untrusted(rootLink, new RegExp(`the link ${eveLink} is in ${home}, which is owned by ${eve.name}`))
    const evesOwn = join(dir, 'eve-owned-link.pem') // eve's link in root's folder (in a sticky one like /tmp she may replace it)
    await symlink(trusted, evesOwn)
    await lchown(evesOwn, eve.uid, eve.gid)
    await untrusted(evesOwn, new RegExp(`the link ${evesOwn} is owned by ${eve.name}`))
    const relative = join(dir, 'relative.pem') // a relative link in a trusted directory: accepted
    await symlink('root-ca.pem', relative)
    assert.equal(await assertTrustedPath(relative, { what: 'config file' }), trusted)
  })

  it("trusts the given user's own files besides root's", async () => {
    const file = join(dir, 'eve-own.yml')
    await writeFile(file, '{}', { mode: 0o644 })
    await chown(file, eve.uid, eve.gid)
    assert.equal(await assertTrustedPath(file, { what: 'config file', uid: eve.uid }), file)
  })
})

describe('rootMapsToMachineRoot: whose root a user namespace\'s uid 0 is', () => {
  it('the first namespace, and one root made mapping itself: the machine\'s root', () => {
    assert.equal(rootMapsToMachineRoot('         0          0 4294967295\n'), true)
    assert.equal(rootMapsToMachineRoot('0 0 1\n'), true)
  })
  it('a namespace a user made (unshare --user --map-root-user): not the machine\'s root', () => {
    assert.equal(rootMapsToMachineRoot('         0      65534          1\n'), false)
    assert.equal(rootMapsToMachineRoot('0 1000 1\n1 100000 65536\n'), false)
    assert.equal(rootMapsToMachineRoot('1 100000 65536\n0 1000 1\n'), false)
  })
  it('a map without uid 0, or one that does not parse: root, so the stricter rule holds', () => {
    assert.equal(rootMapsToMachineRoot(''), true)
    assert.equal(rootMapsToMachineRoot('1 100000 65536\n'), true)
    assert.equal(rootMapsToMachineRoot('garbage\n'), true)
  })
})
