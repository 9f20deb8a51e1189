import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { commandLineOf, otherBoot, processStartOf, sameClockView, sameStart, type RunSync } from './process-command-line.js'

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

describe('processStartOf', () => {
  /** Two child processes one after the other, each read while it runs. */
  async function startsOfTwoChildren(read: (pid: number) => string | undefined): Promise<Array<string | undefined>> {
    const starts: Array<string | undefined> = []
    for (let i = 0; i < 2; i++) {
      const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' })
      await once(child, 'spawn')
      starts.push(read(child.pid!), read(child.pid!))
      child.kill('SIGKILL')
      await once(child, 'exit')
      // lstart counts seconds: the second child starts in a later one
      if (i === 0) await new Promise((r) => setTimeout(r, 1100))
    }
    return starts
  }

  it("macOS's way, /bin/ps -o lstart=, read here on this machine's ps: one reading a process's whole life, another for the next process; none is \"\"", { skip: !existsSync('/bin/ps') && 'no /bin/ps' }, async () => {
    const [a1, a2, b1] = await startsOfTwoChildren((pid) => processStartOf(pid, { platform: 'darwin' }))
    assert.match(a1!, /^wall\/-\/\d{13}$/)
    assert.equal(a2, a1, 'the same process reads the same')
    assert.ok(Math.abs(Number(a1!.slice(7)) - Date.now()) < 60 * 60_000, 'milliseconds since the epoch, in this time zone as ps prints it')
    assert.ok(sameClockView(a1!, b1!) && !otherBoot(a1!, b1!), 'wall-clock readings compare as they are')
    assert.equal(processStartOf(NO_SUCH_PID, { platform: 'darwin' }), '')
    assert.equal(processStartOf(312, { platform: 'darwin', run: () => ({ status: 0, stdout: '(node)\n' }) }), undefined, 'not a start time')
    assert.equal(processStartOf(312, { platform: 'darwin', run: () => ({ status: null, stdout: '' }) }), undefined, 'ps did not end')
  })

  it('a wall-clock start compares within a few seconds (ps says whole seconds; a process reads its own as Node does), a Linux one exactly', () => {
    assert.equal(sameStart('wall/-/1796688000000', 'wall/-/1796688004999'), true)
    assert.equal(sameStart('wall/-/1796688000000', 'wall/-/1796688005001'), false, 'a later process of that pid')
    assert.equal(sameStart('b/1/4200', 'b/1/4200'), true)
    assert.equal(sameStart('b/1/4200', 'b/1/4201'), false)
  })

  it('Windows: asks PowerShell by its absolute path for Win32_Process.CreationDate in UTC ticks; gone is "", failed is not known', () => {
    const calls: Array<[string, readonly string[]]> = []
    const answer = (stdout: string, status: number | null = 0): RunSync => (file, args) => (calls.push([file, args]), { status, stdout })
    // 2026-12-08T00:00:00Z in .NET ticks
    assert.equal(processStartOf(4012, { platform: 'win32', systemRoot: 'D:\\Windows', run: answer('639322848000000000\r\n') }), `wall/-/${Date.UTC(2026, 11, 8)}`)
    const [file, args] = calls[0]!
    assert.equal(file, 'D:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe')
    assert.deepEqual(args.slice(0, 3), ['-NoProfile', '-NonInteractive', '-Command'])
    assert.match(args[3]!, /Get-CimInstance Win32_Process -Filter 'ProcessId=4012'.*CreationDate\.ToUniversalTime\(\)\.Ticks/)
    assert.equal(processStartOf(4012, { platform: 'win32', run: answer('\r\n') }), '', 'no such process')
    assert.equal(processStartOf(4012, { platform: 'win32', run: answer('Get-CimInstance : Access denied\r\n') }), undefined)
    assert.equal(processStartOf(4012, { platform: 'win32', run: answer('', 1) }), undefined)
  })

  it('Linux: one reading a process\'s whole life, another for the next process; none is ""', { skip: process.platform !== 'linux' && 'Linux only' }, async () => {
    const [a1, a2, b1] = await startsOfTwoChildren((pid) => processStartOf(pid))
    assert.equal(a2, a1)
    assert.notEqual(b1, a1)
    assert.equal(processStartOf(NO_SUCH_PID), '')
    assert.equal(processStartOf(1, { platform: 'freebsd' }), undefined, 'another OS')
  })
})
