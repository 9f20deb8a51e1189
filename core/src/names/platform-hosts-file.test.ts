import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Logger } from '../contracts/logger.js'
import { silentLogger } from '../contracts/logger.js'
import { HostsFileNameResolver } from './hosts-file-name-resolver.js'
import { MacosHostsFileNameResolver } from './macos-hosts.js'
import { createHostsFileNameResolver, platformHostsPath, POSIX_HOSTS_FILE } from './platform-hosts-file.js'
import { WindowsHostsFileNameResolver } from './windows-hosts.js'
import type { CommandOutcome } from './macos-resolver-cache.js'

describe('createHostsFileNameResolver', () => {
  it('picks the resolver of each OS, and on Windows the default path means the file under %SystemRoot%', () => {
    const base = { stateDir: '/state', logger: silentLogger }
    const linux = createHostsFileNameResolver({ ...base, path: POSIX_HOSTS_FILE, platform: 'linux' })
    assert.ok(linux instanceof HostsFileNameResolver && !(linux instanceof MacosHostsFileNameResolver))
    assert.equal((linux as HostsFileNameResolver).path, '/etc/hosts')
    assert.ok(createHostsFileNameResolver({ ...base, path: POSIX_HOSTS_FILE, platform: 'darwin' }) instanceof MacosHostsFileNameResolver)
    const windows = createHostsFileNameResolver({ ...base, path: POSIX_HOSTS_FILE, platform: 'win32', env: { SystemRoot: 'D:\\Windows' } })
    assert.ok(windows instanceof WindowsHostsFileNameResolver)
    assert.equal((windows as WindowsHostsFileNameResolver).path, 'D:\\Windows\\System32\\drivers\\etc\\hosts')
    const chosen = createHostsFileNameResolver({ ...base, path: 'C:\\hosts-copy', platform: 'win32', env: {} })
    assert.equal((chosen as WindowsHostsFileNameResolver).path, 'C:\\hosts-copy', 'a configured path is kept')
  })
})

describe('MacosHostsFileNameResolver', () => {
  it('flushes the resolver cache after each change of the file and only then; a failing command is warned about once', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ngrokd-macos-hosts-'))
    try {
      const path = join(dir, 'hosts')
      await writeFile(path, '127.0.0.1 localhost\n')
      const flushes: number[] = []
      const warnings: string[] = []
      const logger = { ...silentLogger, warn: (_o: unknown, msg?: string) => void warnings.push(String(msg)) } as unknown as Logger
      const flushCache = async (): Promise<CommandOutcome[]> => {
        flushes.push(Date.now())
        return [
          { command: '/usr/bin/dscacheutil -flushcache', ok: true },
          { command: '/usr/bin/killall -HUP mDNSResponder', ok: false, error: 'exit code 1: No matching processes' },
        ]
      }
      const names = new MacosHostsFileNameResolver({ path, stateDir: join(dir, 'state'), logger, flushCache })
      await names.open()
      const records = [{ hostname: 'api.prod', address: '10.107.0.2' }]
      assert.deepEqual(await names.publish({ records }), { changed: true })
      assert.match(await readFile(path, 'utf8'), /10\.107\.0\.2\s+api\.prod/)
      assert.equal(flushes.length, 1)
      assert.deepEqual(await names.publish({ records }), { changed: false })
      assert.equal(flushes.length, 1, 'no change, no flush')
      await names.publish({ records: [] })
      assert.equal(flushes.length, 2)
      assert.equal(warnings.length, 1, warnings.join('\n'))
      assert.match(warnings[0]!, /killall -HUP mDNSResponder failed/)
      await names.close()
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('the hosts file judged as trusted is the one written', () => {
  it("on Windows /etc/hosts means %SystemRoot%'s file, never C:\\etc\\hosts (which any user may create); a path of the user's own stays", () => {
    assert.equal(platformHostsPath(POSIX_HOSTS_FILE, 'win32', { SystemRoot: 'D:\\Windows' }), 'D:\\Windows\\System32\\drivers\\etc\\hosts')
    assert.equal(platformHostsPath('D:\\hosts', 'win32', {}), 'D:\\hosts')
    assert.equal(platformHostsPath(POSIX_HOSTS_FILE, 'linux', {}), '/etc/hosts')
  })
})
