import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { assertTrustedPath, assertTrustedPathOrDir, runsElevated } from './trusted-path.js'

// The Windows rule's walk (the file, every folder above it, the folders of links on the way), on this machine's
// paths with each path's SDDL from a table: what windows-security-ffi.ts would read there.
const PROTECTED = 'O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)'
const USER = 'S-1-5-21-1-2-3-1001'

describe('trusted paths on Windows: owner and DACL of the file and every folder above it', () => {
  let dir: string
  const sddl = new Map<string, string>()
  const readSddl = (p: string) => sddl.get(p) ?? PROTECTED
  const win = { platform: 'win32' as const, readSddl }

  before(() => {
    dir = realpathSync(mkdtempSync(join(tmpdir(), 'ngrokd-trusted-win-')))
    mkdirSync(join(dir, 'etc', 'ngrokd'), { recursive: true })
    writeFileSync(join(dir, 'etc', 'ngrokd', 'config.yml'), '')
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  it('a file SYSTEM and Administrators alone may change, in folders only they may empty, passes', async () => {
    sddl.clear()
    const file = join(dir, 'etc', 'ngrokd', 'config.yml')
    sddl.set(dirname(dirname(file)), 'O:SYD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;CI;0x100116;;;BU)') // users may add beside it
    assert.equal(await assertTrustedPath(file, { what: 'config file', ...win }), file)
  })

  it("refuses the config a user planted (C:\\etc\\ngrokd\\config.yml), naming the owner and the fix", async () => {
    sddl.clear()
    const file = join(dir, 'etc', 'ngrokd', 'config.yml')
    sddl.set(file, `O:${USER}D:AI(A;ID;FA;;;${USER})(A;ID;FA;;;SY)`)
    await assert.rejects(assertTrustedPath(file, { what: 'config file', ...win }), (e: unknown) => {
      assert.ok(isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED'), String(e))
      assert.equal(e.message, `refusing config file ${file}: ${file} is owned by ${USER} (not SYSTEM, Administrators or TrustedInstaller); elevated, ngrokd uses only files that SYSTEM and Administrators alone can change`)
      assert.equal(e.hint, `icacls "${file}" /setowner *S-1-5-32-544, or move the file under a folder only Administrators can write, such as %ProgramData%\\ngrokd`)
      return true
    })
  })

  it('refuses a folder above from which another user may delete or re-ACL the file', async () => {
    sddl.clear()
    const file = join(dir, 'etc', 'ngrokd', 'config.yml')
    const folder = join(dir, 'etc')
    sddl.set(folder, 'O:BAD:AI(A;OICI;FA;;;SY)(A;OICI;0x1301bf;;;AU)')
    await assert.rejects(assertTrustedPath(file, { what: 'config file', ...win }), (e: unknown) => {
      assert.ok(isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED'), String(e))
      assert.match(e.message, new RegExp(`: its folder ${folder} gives Authenticated Users \\(S-1-5-11\\) write access \\(0x1301bf, 0x10000\\);`))
      assert.match(e.hint ?? '', /^icacls ".*etc" \/inheritance:r \/grant:r \*S-1-5-18:\(OI\)\(CI\)F \*S-1-5-32-544:\(OI\)\(CI\)F \(and so for every folder above the file\)/)
      return true
    })
  })

  it('judges the folder of a link on the way, which its writer could re-point', async () => {
    sddl.clear()
    const userDir = join(dir, 'users')
    mkdirSync(userDir, { recursive: true })
    symlinkSync(join(dir, 'etc', 'ngrokd', 'config.yml'), join(userDir, 'link.yml'))
    sddl.set(userDir, `O:${USER}D:(A;OICI;FA;;;${USER})`)
    await assert.rejects(assertTrustedPath(join(userDir, 'link.yml'), { what: 'config file', ...win }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED') && e.message.includes(`the link ${join(userDir, 'link.yml')} is in ${userDir}, which is owned by ${USER}`))
  })

  it('a missing file is judged by the folder it would be made in', async () => {
    sddl.clear()
    const folder = join(dir, 'etc', 'ngrokd')
    sddl.set(folder, 'O:BAD:(A;OICI;FA;;;SY)(A;CI;0x100116;;;BU)') // users may add here: they could plant it
    await assert.rejects(assertTrustedPathOrDir(join(folder, 'absent.sock'), { what: 'file', ...win }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED') && e.message.includes(`${folder} gives Users (S-1-5-32-545) write access (0x100116, 0x6)`))
  })

  it('code (node.exe, a module) may not lie in a folder users may add to, below the drive root: a planted DLL or node_modules would load first', async () => {
    sddl.clear()
    const module = join(dir, 'etc', 'ngrokd', 'config.yml')
    const folder = join(dir, 'etc')
    // what a folder made under C:\ProgramData inherits: Users may add files and folders
    sddl.set(folder, 'O:BAD:AI(A;OICIID;FA;;;SY)(A;OICIID;FA;;;BA)(A;OICIID;0x1200a9;;;BU)(A;CIID;0x100116;;;BU)')
    sddl.set('/', `O:BAD:PAI(A;;LC;;;AU)(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)`) // C:\ lets Authenticated Users make folders
    assert.equal(await assertTrustedPath(module, { what: 'config file', ...win }), module, 'data: adding beside it cannot change it')
    await assert.rejects(assertTrustedPath(module, { what: 'plugin module', code: true, ...win }), (e: unknown) => {
      assert.ok(isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED'), String(e))
      assert.match(e.message, new RegExp(`: its folder ${folder} gives Users \\(S-1-5-32-545\\) write access \\(0x100116, 0x6\\);`))
      return true
    })
    sddl.delete(folder)
    assert.equal(await assertTrustedPath(module, { what: 'plugin module', code: true, ...win }), module, 'the drive root alone may let users add')
  })

  it('elevated is asked once; a failure to ask counts as elevated (the rule then holds)', () => {
    // runsElevated keeps its first answer for the process: on Linux no one asked it before this test
    let asked = 0
    assert.equal(runsElevated(() => { asked++; throw new Error('no advapi32') }), true)
    assert.equal(runsElevated(() => { asked++; return false }), true)
    assert.equal(asked, 1)
  })
})
