import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execFileRunner, flushMacosResolverCache, type CommandRunner } from './macos-resolver-cache.js'

function recordingRunner(fail: (file: string) => Error | undefined = () => undefined): CommandRunner & { ran: Array<[string, readonly string[]]> } {
  const ran: Array<[string, readonly string[]]> = []
  const run = async (file: string, args: readonly string[]) => {
    ran.push([file, [...args]])
    const error = fail(file)
    if (error) throw error
  }
  return Object.assign(run, { ran })
}

describe('macOS resolver cache flush', () => {
  it('runs dscacheutil -flushcache, then killall -HUP mDNSResponder, by absolute path', async () => {
    const run = recordingRunner()
    const outcomes = await flushMacosResolverCache({ run })
    assert.deepEqual(run.ran, [
      ['/usr/bin/dscacheutil', ['-flushcache']],
      ['/usr/bin/killall', ['-HUP', 'mDNSResponder']],
    ])
    assert.deepEqual(outcomes, [
      { command: '/usr/bin/dscacheutil -flushcache', ok: true },
      { command: '/usr/bin/killall -HUP mDNSResponder', ok: true },
    ])
  })

  it('still runs the second command when the first fails, and reports the failure', async () => {
    const run = recordingRunner((file) => (file.endsWith('dscacheutil') ? new Error('Command failed: exit code 1') : undefined))
    const outcomes = await flushMacosResolverCache({ run })
    assert.equal(run.ran.length, 2)
    assert.deepEqual(outcomes, [
      { command: '/usr/bin/dscacheutil -flushcache', ok: false, error: 'Command failed: exit code 1' },
      { command: '/usr/bin/killall -HUP mDNSResponder', ok: true },
    ])
  })

  it('the default runner runs a program without a shell and reports its exit and stderr', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ngrokd-flush-'))
    try {
      const args = join(dir, 'args')
      const script = join(dir, 'prog')
      await writeFile(script, `#!/bin/sh\nprintf '%s|' "$@" > ${args}\n[ "$1" = fail ] && { echo "no such process" >&2; exit 3; }\nexit 0\n`)
      await chmod(script, 0o755)
      await execFileRunner(script, ['-HUP', 'a b', '$HOME'], {})
      assert.equal(await readFile(args, 'utf8'), '-HUP|a b|$HOME|', 'each argument arrives as it is: no shell')
      await assert.rejects(execFileRunner(script, ['fail'], {}), /no such process/)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
