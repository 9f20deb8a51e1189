import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { existsSync, readdirSync, readlinkSync, renameSync, statSync } from 'node:fs'
import { sharingViolationCode, windowsHostsPath, withSharingRetries, WindowsHostsFileNameResolver } from './windows-hosts.js'

/** The hosts file a fresh Windows 10/11 install ships: CRLF, comments only. */
const STOCK = [
  '# Copyright (c) 1993-2009 Microsoft Corp.',
  '#',
  '# This is a sample HOSTS file used by Microsoft TCP/IP for Windows.',
  '#',
  '# localhost name resolution is handled within DNS itself.',
  '#\t127.0.0.1       localhost',
  '#\t::1             localhost',
  '',
].join('\r\n')

const held = (code: string) => Object.assign(new Error(`${code}: resource busy or locked, rename`), { code })

describe('windows hosts file', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ngrokd-win-hosts-'))
  })
  after(() => rm(dir, { recursive: true, force: true }))

  it('lives under %SystemRoot%', () => {
    assert.equal(windowsHostsPath({ SystemRoot: 'D:\\WINNT' }), 'D:\\WINNT\\System32\\drivers\\etc\\hosts')
    assert.equal(windowsHostsPath({}), 'C:\\Windows\\System32\\drivers\\etc\\hosts')
  })

  it('keeps the stock CRLF file CRLF, block included, and restores it byte for byte', async () => {
    const path = join(dir, 'hosts-crlf')
    await writeFile(path, STOCK)
    let flushes = 0
    const names = new WindowsHostsFileNameResolver({ path, stateDir: join(dir, 'state1'), flushDns: () => (flushes++, true) })
    await names.open()
    assert.deepEqual(await names.publish({ records: [{ hostname: 'api.prod', address: '10.107.0.2' }] }), { changed: true })
    const text = await readFile(path, 'utf8')
    assert.equal(text, `${STOCK}# BEGIN ngrokd managed block (do not edit)\r\n10.107.0.2\tapi.prod\r\n# END ngrokd managed block\r\n`)
    assert.doesNotMatch(text.replace(/\r\n/g, ''), /\n/, 'no bare LF anywhere')
    assert.equal(flushes, 1, 'the DNS cache is flushed after a change')
    assert.deepEqual(await names.publish({ records: [{ hostname: 'api.prod', address: '10.107.0.2' }] }), { changed: false })
    assert.equal(flushes, 1, 'and not when nothing changed')
    await names.publish({ records: [] })
    assert.equal(await readFile(path, 'utf8'), STOCK)
    assert.equal(flushes, 2)
    await names.close()
  })

  it('tries again while the file is held (EBUSY, EPERM, EACCES), with growing waits', async () => {
    const failures = ['EBUSY', 'EPERM', 'EACCES']
    const waits: number[] = []
    const result = await withSharingRetries(
      async () => {
        const code = failures.shift()
        if (code) throw held(code)
        return 'written'
      },
      { sleep: async (ms) => void waits.push(ms), policy: { attempts: 6, firstDelayMs: 50, maxDelayMs: 800 } },
    )
    assert.equal(result, 'written')
    assert.deepEqual(waits, [50, 100, 200])
  })

  it('a rename refused because another process holds the file (EPERM) ends in an in-place write, CRLF kept', async () => {
    const path = join(dir, 'hosts-held')
    await writeFile(path, STOCK)
    let tries = 0
    const names = new WindowsHostsFileNameResolver({
      path,
      stateDir: join(dir, 'state2'),
      flushDns: () => true,
      rename: () => {
        tries++
        throw held('EPERM')
      },
    })
    await names.open()
    await names.publish({ records: [{ hostname: 'db.prod', address: '10.107.0.3' }] })
    assert.equal(tries, 1)
    assert.match(await readFile(path, 'utf8'), /10\.107\.0\.3\tdb\.prod\r\n/)
    await names.close()
  })

  it('replaces the file by rename, holding nothing of it open then: MoveFileExW refuses a target any handle holds', async () => {
    const path = join(dir, 'hosts-own-handle')
    await writeFile(path, STOCK)
    const stateDir = join(dir, 'state-own-handle')
    const refusals: string[] = []
    // MoveFileExW(MOVEFILE_REPLACE_EXISTING) fails with ERROR_ACCESS_DENIED (EPERM) while the target is open
    const rename = (from: string, to: string) => {
      const holders = readdirSync('/proc/self/fd').filter((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`) === to
        } catch {
          return false
        }
      })
      if (holders.length > 0) {
        refusals.push(to)
        throw held('EPERM')
      }
      renameSync(from, to)
    }
    const names = new WindowsHostsFileNameResolver({ path, stateDir, flushDns: () => true, rename })
    await names.open()
    for (const address of ['10.107.0.4', '10.107.0.5']) {
      const before = statSync(path).ino
      await names.publish({ records: [{ hostname: 'db.prod', address }] })
      assert.notEqual(statSync(path).ino, before, `replaced by rename for ${address}, not rewritten in place`)
    }
    assert.deepEqual(refusals, [], 'no rename met a handle of its own')
    assert.match(await readFile(path, 'utf8'), /10\.107\.0\.5\tdb\.prod\r\n/)
    assert.equal(existsSync(join(stateDir, 'hosts.ngrokd-backup')), false, 'no in-place backup: the in-place path was never taken')
    await names.close()
  })

  it('when the rename meets EBUSY, rewrites the file in place (backup first) rather than fail', async () => {
    const path = join(dir, 'hosts-stuck')
    await writeFile(path, STOCK)
    let tries = 0
    const waits: number[] = []
    const names = new WindowsHostsFileNameResolver({
      path,
      stateDir: join(dir, 'state3'),
      flushDns: () => true,
      retry: { sleep: async (ms) => void waits.push(ms), policy: { attempts: 4, firstDelayMs: 10, maxDelayMs: 25 } },
      rename: () => {
        tries++
        throw held('EBUSY')
      },
    })
    await names.open()
    // EBUSY on the atomic replace makes the resolver rewrite in place (as for a bind mount): that works here
    await names.publish({ records: [{ hostname: 'db.prod', address: '10.107.0.3' }] })
    assert.equal(tries, 1, 'EBUSY goes straight to the in-place write, as for a bind mount')
    assert.deepEqual(waits, [])
    assert.match(await readFile(path, 'utf8'), /^# Copyright[\s\S]*10\.107\.0\.3\tdb\.prod\r\n# END ngrokd managed block\r\n$/)
    await names.close()
  })

  it('withSharingRetries retries only sharing violations, found in the cause chain too', async () => {
    let n = 0
    await assert.rejects(
      withSharingRetries(async () => {
        n++
        throw Object.assign(new Error('no'), { code: 'ENOENT' })
      }, { sleep: async () => {} }),
      /no/,
    )
    assert.equal(n, 1)
    assert.equal(sharingViolationCode(new Error('wrapped', { cause: held('EPERM') })), 'EPERM')
    assert.equal(sharingViolationCode(new Error('plain')), undefined)
  })

  it('a DNS flush that fails is a warning, not a failed publish', async () => {
    const path = join(dir, 'hosts-flush')
    await writeFile(path, STOCK)
    const names = new WindowsHostsFileNameResolver({
      path,
      stateDir: join(dir, 'state4'),
      flushDns: () => {
        throw new Error('dnsapi.dll not loaded')
      },
    })
    await names.open()
    assert.deepEqual(await names.publish({ records: [{ hostname: 'api.prod', address: '10.107.0.2' }] }), { changed: true })
    await names.close()
  })

  it('diagnose() fails on the read-only attribute (a mode without write bits on Windows)', async () => {
    const path = join(dir, 'hosts-ro')
    await writeFile(path, STOCK)
    const names = new WindowsHostsFileNameResolver({ path, stateDir: join(dir, 'state5'), flushDns: () => true, stat: async () => ({ mode: 0o100444 }) })
    const check = (await names.diagnose()).find((c) => c.id === 'hosts-file.windows-read-only')
    assert.equal(check?.status, 'fail')
    assert.match(String(check?.hint), /attrib -r/)
  })
})
