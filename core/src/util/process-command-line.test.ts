import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { commandLineOf, type RunSync } from './process-command-line.js'

/** A pid no process has: above Linux's pid_max limit (2^22). */
const NO_SUCH_PID = 2 ** 22 + 1

describe('commandLineOf', () => {
  /** A child process whose command line holds a word of its own; ended after `fn`. */
  async function withMarkedChild(fn: (pid: number) => void): Promise<void> {
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', 'ngrokd-marker-7f3a'], { stdio: 'ignore' })
    try {
      await once(child, 'spawn')
      fn(child.pid!)
    } finally {
      child.kill('SIGKILL')
      await once(child, 'exit')
    }
  }

  it('Linux: a process\'s arguments from /proc; no such process is ""', { skip: process.platform !== 'linux' && 'Linux only' }, () =>
    withMarkedChild((pid) => {
      assert.ok(commandLineOf(pid)!.includes('ngrokd-marker-7f3a'), 'its arguments')
      assert.equal(commandLineOf(NO_SUCH_PID), '')
    }))

  it("macOS's way, /bin/ps -o command=, read here on this machine's ps: a process's arguments; no such process is \"\"", { skip: !existsSync('/bin/ps') && 'no /bin/ps' }, () =>
    withMarkedChild((pid) => {
      assert.ok(commandLineOf(pid, { platform: 'darwin' })!.includes('ngrokd-marker-7f3a'))
      assert.equal(commandLineOf(NO_SUCH_PID, { platform: 'darwin' }), '')
    }))

  it('macOS: another user\'s process that ps shows only as (name) is not known, never "not ngrokd"', () => {
    const run: RunSync = () => ({ status: 0, stdout: '(node)\n' })
    assert.equal(commandLineOf(312, { platform: 'darwin', run }), undefined)
    assert.equal(commandLineOf(312, { platform: 'darwin', run: () => ({ status: null, stdout: '' }) }), undefined, 'ps did not end')
  })

  it('Windows: asks PowerShell by its absolute path for Win32_Process.CommandLine; gone is "", unreadable or failed is not known', () => {
    const calls: Array<[string, readonly string[]]> = []
    const answer = (stdout: string, status: number | null = 0): RunSync => (file, args) => (calls.push([file, args]), { status, stdout })
    assert.equal(commandLineOf(4012, { platform: 'win32', systemRoot: 'D:\\Windows', run: answer('"C:\\Program Files\\nodejs\\node.exe" C:\\npm\\ngrokd\\bin\\ngrokd.js run --service\r\n') }), '"C:\\Program Files\\nodejs\\node.exe" C:\\npm\\ngrokd\\bin\\ngrokd.js run --service')
    const [file, args] = calls[0]!
    assert.equal(file, 'D:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe')
    assert.deepEqual(args.slice(0, 3), ['-NoProfile', '-NonInteractive', '-Command'])
    assert.match(args[3]!, /Get-CimInstance Win32_Process -Filter 'ProcessId=4012'/)
    assert.equal(commandLineOf(4012, { platform: 'win32', run: answer('\r\n') }), '', 'no such process')
    assert.equal(commandLineOf(4012, { platform: 'win32', run: answer('<unreadable>\r\n') }), undefined)
    assert.equal(commandLineOf(4012, { platform: 'win32', run: answer('', 1) }), undefined)
  })

  it('another OS, or no pid, says what it can', () => {
    assert.equal(commandLineOf(1, { platform: 'freebsd' }), undefined)
    assert.equal(commandLineOf(0), '')
  })
})
