import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isNgrokdError } from '@ngrokd/core/driver'
import { defaultWintunDllPath, resolveWintunDllPath, trustedWintunLoader } from './wintun-dll-path.js'

test('wintun.dll: absolute paths only, default under %ProgramFiles%\\ngrokd', () => {
  const env = { ProgramFiles: 'C:\\Program Files', SystemRoot: 'C:\\WINDOWS' }
  assert.equal(defaultWintunDllPath(env), 'C:\\Program Files\\ngrokd\\wintun.dll')
  assert.equal(resolveWintunDllPath(undefined, env), 'C:\\Program Files\\ngrokd\\wintun.dll')
  assert.equal(resolveWintunDllPath('D:/tools/wintun/bin/amd64/wintun.dll', env), 'D:\\tools\\wintun\\bin\\amd64\\wintun.dll')
  for (const bad of ['wintun.dll', '.\\wintun.dll', '\\wintun.dll', 'C:wintun.dll']) {
    assert.throws(() => resolveWintunDllPath(bad, env), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID'), bad)
  }
})

test("wintun.dll that someone else could change, or in a folder users may add to, is refused before it is loaded", async () => {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'ngrokd-wintun-dll-')))
  try {
    const dll = join(dir, 'wintun.dll')
    writeFileSync(dll, '')
    const sddl = new Map<string, string>()
    const rule = { platform: 'win32' as const, readSddl: (p: string) => sddl.get(p) ?? 'O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)' }
    let loads = 0
    const load = () => ++loads
    assert.equal((await trustedWintunLoader(dll, load, rule))(), 1, 'only Administrators may change it: loaded')
    sddl.set(dir, 'O:BAD:AI(A;OICIID;FA;;;SY)(A;OICIID;FA;;;BA)(A;CIID;0x100116;;;BU)') // a folder under C:\ProgramData
    const refused = await trustedWintunLoader(dll, load, rule)
    assert.throws(refused, (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED') && e.message.startsWith(`refusing wintun.dll ${dll}: its folder ${dir} gives Users`))
    assert.equal(loads, 1, 'never loaded')
    assert.equal((await trustedWintunLoader(join(dir, 'absent.dll'), load, rule))(), 2, 'a missing DLL is left to the load, which names it')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
