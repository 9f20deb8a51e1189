import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isNgrokdError } from '@ngrokd/core/driver'
import { defaultWintunDllPath, isAdminOnlyLocation, resolveWintunDllPath } from './wintun-dll-path.js'

test('wintun.dll: absolute paths only, default under %ProgramFiles%\\ngrokd', () => {
  const env = { ProgramFiles: 'C:\\Program Files', SystemRoot: 'C:\\WINDOWS' }
  assert.equal(defaultWintunDllPath(env), 'C:\\Program Files\\ngrokd\\wintun.dll')
  assert.equal(resolveWintunDllPath(undefined, env), 'C:\\Program Files\\ngrokd\\wintun.dll')
  assert.equal(resolveWintunDllPath('D:/tools/wintun/bin/amd64/wintun.dll', env), 'D:\\tools\\wintun\\bin\\amd64\\wintun.dll')
  for (const bad of ['wintun.dll', '.\\wintun.dll', '\\wintun.dll', 'C:wintun.dll']) {
    assert.throws(() => resolveWintunDllPath(bad, env), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID'), bad)
  }
  assert.equal(isAdminOnlyLocation('C:\\Program Files\\ngrokd\\wintun.dll', env), true)
  assert.equal(isAdminOnlyLocation('c:\\windows\\system32\\wintun.dll', env), true)
  assert.equal(isAdminOnlyLocation('C:\\Users\\me\\AppData\\Roaming\\nvm\\wintun.dll', env), false)
  assert.equal(isAdminOnlyLocation('C:\\Program Files Evil\\wintun.dll', env), false)
})
