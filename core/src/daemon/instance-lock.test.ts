import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { InstanceLock, STATE_LOCK_FILE, liveHolderFor, liveSubnetHolder, stateLockReadable, type InstanceLockOptions } from './instance-lock.js'
import { localUser, localUserSkip } from '../util/local-user.test-helper.js'

async function withDirs(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ngrokd-lock-'))
  try {
    await fn(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

const refused = (pid: number, what: RegExp) => (e: unknown) =>
  isNgrokdError(e, 'NGROKD_ERR_ALREADY_RUNNING') && new RegExp(`another ngrokd \\(pid ${pid},`).test((e as Error).message) && what.test((e as Error).message)

/**
 * Another process that holds the locks `options` names, named like the daemon (the pid check reads its command line);
 * resolves once it holds them.
 */
async function lockHolder(dir: string, options: InstanceLockOptions & { stateDir: string }): Promise<ChildProcess> {
  const script = join(dir, 'ngrokd-lock-holder.mjs')
  await writeFile(
    script,
    `import { InstanceLock } from ${JSON.stringify(new URL('./instance-lock.js', import.meta.url).href)}
     await import('node:fs').then((fs) => fs.mkdirSync(${JSON.stringify(options.stateDir)}, { recursive: true }))
     await InstanceLock.acquire(${JSON.stringify(options)})
     console.log('held')
     process.stdin.resume()`,
  )
  const holder = spawn(process.execPath, [script], { stdio: ['pipe', 'pipe', 'inherit'] })
  const [line] = (await once(holder.stdout!, 'data')) as [Buffer]
  assert.equal(line.toString().trim(), 'held')
  return holder
}

test('a second daemon on the same state dir is refused, naming the first; a lock whose daemon died is replaced', () =>
  withDirs(async (dir) => {
    const stateDir = join(dir, 'state')
    const runDir = join(dir, 'run')
    const holder = await lockHolder(dir, { stateDir, interfaceName: 'ngrokd0', socketPath: '/run/first.sock', runDir, hostsBlock: { path: join(dir, 'hosts') } })
    try {
      await assert.rejects(
        InstanceLock.acquire({ stateDir, interfaceName: 'other0', socketPath: '/run/second.sock', runDir }),
        refused(holder.pid!, /state dir .*\/state \/ interface ngrokd0 \/ the ngrokd block of .*\/hosts; its control socket is \/run\/first\.sock/),
      )
      await mkdir(join(dir, 'state2'))
      await assert.rejects(
        InstanceLock.acquire({ stateDir: join(dir, 'state2'), interfaceName: 'ngrokd0', socketPath: '/run/second.sock', runDir }),
        refused(holder.pid!, /interface ngrokd0/),
        'another state dir on the same interface (same network namespace) is refused too',
      )
      assert.deepEqual(await readdir(join(dir, 'state2')), [], 'a refused start leaves no lock or temp file of its own behind')
      // doctor and status find the daemon that runs on what a config names by its locks, and say which one
      const config = (stateDir: string, interfaceName: string, hostsFile: string) => ({ stateDir, net: { interfaceName }, control: { socket: '/run/other.sock' }, names: { hostsFile } })
      assert.deepEqual(await liveHolderFor(config(stateDir, 'other0', join(dir, 'other-hosts')), runDir).then((l) => [l?.holder.socket, l?.holds]), ['/run/first.sock', `state dir ${stateDir}`])
      assert.equal((await liveHolderFor(config(join(dir, 'state2'), 'ngrokd0', join(dir, 'other-hosts')), runDir))?.holds, 'interface ngrokd0')
      assert.equal((await liveHolderFor(config(join(dir, 'state2'), 'other0', join(dir, 'hosts')), runDir))?.holds, `the ngrokd block of ${join(dir, 'hosts')}`)
      assert.equal(await liveHolderFor(config(join(dir, 'state2'), 'other0', join(dir, 'other-hosts')), runDir), undefined)
    } finally {
      holder.kill('SIGKILL')
      await once(holder, 'exit')
    }
    // the holder died without releasing (kill -9): its locks are stale
    assert.equal(await liveHolderFor({ stateDir, net: { interfaceName: 'ngrokd0' }, control: { socket: '/run/other.sock' }, names: { hostsFile: join(dir, 'hosts') } }, runDir), undefined)
    const lock = await InstanceLock.acquire({ stateDir, interfaceName: 'ngrokd0', socketPath: '/run/second.sock', runDir, hostsBlock: { path: join(dir, 'hosts') } })
    await assert.rejects(InstanceLock.acquire({ stateDir, interfaceName: 'ngrokd0', socketPath: '/run/third.sock', runDir }), refused(process.pid, /second\.sock/), 'a second daemon in this process is refused as well')
    await lock.release()
    await lock.release()
    assert.deepEqual(await readdir(stateDir), [], 'release removes the lock, and temp files never stay')
    assert.deepEqual(await readdir(runDir), [])
  }))

test('a lock whose pid another process has since, even one named ngrokd (another user may make one take it on purpose), is stale: the holder is told by its start, not its name', { skip: process.platform !== 'linux' && 'the start is read from /proc' }, () =>
  withDirs(async (dir) => {
    const stateDir = join(dir, 'state')
    const runDir = join(dir, 'run')
    const holder = await lockHolder(dir, { stateDir, interfaceName: 'ngrokd0', socketPath: '/run/first.sock', runDir })
    const lockFile = join(stateDir, STATE_LOCK_FILE)
    const written = JSON.parse(await readFile(lockFile, 'utf8')) as { processStart?: string }
    assert.match(written.processStart ?? '', /^[0-9a-f-]{36}\/(\d+|-)\/\d+$/, 'the lock names its holder\'s start: boot id, time namespace and starttime')
    // a process named like the daemon, started after the lock was written, stands in for one that got the dead holder's pid
    const squatter = spawn(process.execPath, ['-e', 'process.stdin.resume()', 'ngrokd'], { stdio: ['pipe', 'ignore', 'inherit'] })
    try {
      holder.kill('SIGKILL')
      await once(holder, 'exit')
      for (const path of [lockFile, ...(await readdir(runDir)).map((name) => join(runDir, name))]) {
        const lock = JSON.parse(await readFile(path, 'utf8')) as { pid: number }
        await writeFile(path, JSON.stringify({ ...lock, pid: squatter.pid }))
      }
      assert.equal(await liveHolderFor({ stateDir, net: { interfaceName: 'ngrokd0' }, control: { socket: '/run/other.sock' }, names: { hostsFile: join(dir, 'hosts') } }, runDir), undefined)
      const lock = await InstanceLock.acquire({ stateDir, interfaceName: 'ngrokd0', socketPath: '/run/second.sock', runDir })
      await lock.release()
      // the same lock without the start (an older ngrokd's) is judged by the command line, as before
      await writeFile(lockFile, JSON.stringify({ pid: squatter.pid, socket: '/run/first.sock', interface: 'ngrokd0', stateDir, startedAt: new Date(0).toISOString() }))
      await assert.rejects(InstanceLock.acquire({ stateDir, interfaceName: 'ngrokd0', socketPath: '/run/second.sock', runDir }), refused(squatter.pid!, /state dir/))
    } finally {
      squatter.kill('SIGKILL')
      await once(squatter, 'exit')
    }
  }))

test('a lock written in another time namespace (its starttime shifted for readers outside) still refuses a second daemon while its holder runs', { skip: process.getuid?.() !== 0 ? 'needs root (unshare --time)' : spawnSync('unshare', ['--time', '--boottime', '86400', 'true']).status !== 0 && 'no time namespaces here' }, () =>
  withDirs(async (dir) => {
    const stateDir = join(dir, 'state')
    const runDir = join(dir, 'run')
    const script = join(dir, 'ngrokd-timens-holder.mjs')
    await writeFile(
      script,
      `import { InstanceLock } from ${JSON.stringify(new URL('./instance-lock.js', import.meta.url).href)}
       await import('node:fs').then((fs) => fs.mkdirSync(${JSON.stringify(stateDir)}, { recursive: true }))
       await InstanceLock.acquire(${JSON.stringify({ stateDir, interfaceName: 'ngrokd0', socketPath: '/run/first.sock', runDir })})
       console.log('held')
       process.stdin.resume()`,
    )
    // a day added to the boot clock in the holder's time namespace
    const holder = spawn('unshare', ['--time', '--boottime', '86400', process.execPath, script], { stdio: ['pipe', 'pipe', 'inherit'] })
    try {
      const [line] = (await once(holder.stdout!, 'data')) as [Buffer]
      assert.equal(line.toString().trim(), 'held')
      await assert.rejects(InstanceLock.acquire({ stateDir, interfaceName: 'ngrokd0', socketPath: '/run/second.sock', runDir }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_ALREADY_RUNNING'))
    } finally {
      holder.kill('SIGKILL')
      await once(holder, 'exit')
    }
  }))

test("doctor finds the live daemon that serves a subnet (another instance whose name chose the same /16), by its lock", () =>
  withDirs(async (dir) => {
    const stateDir = join(dir, 'work')
    const runDir = join(dir, 'run')
    const holder = await lockHolder(dir, { stateDir, interfaceName: 'ngrokd-work', socketPath: '/run/work.sock', runDir, subnet: '10.112.0.0/16' })
    try {
      assert.deepEqual(await liveSubnetHolder('10.112.0.0/16', runDir).then((h) => [h?.pid, h?.stateDir]), [holder.pid, stateDir])
      assert.equal(await liveSubnetHolder('10.113.0.0/16', runDir), undefined)
      assert.equal(await liveSubnetHolder('10.112.0.0/16', null), undefined, 'no run dir (not root, or not Linux): not known')
    } finally {
      holder.kill('SIGKILL')
      await once(holder, 'exit')
    }
    assert.equal(await liveSubnetHolder('10.112.0.0/16', runDir), undefined, 'its daemon gone, the lock is stale')
  }))

test('several daemons starting at one instant over a stale lock: exactly one wins and keeps it, the others are refused', () =>
  withDirs(async (dir) => {
    const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js'
    const racer = fileURLToPath(new URL(`./test-fixtures/ngrokd-lock-racer${ext}`, import.meta.url))
    const execArgv = process.execArgv.filter((a) => !a.startsWith('--test'))
    for (let round = 0; round < 4; round++) {
      const stateDir = join(dir, `round-${round}`)
      await mkdir(stateDir, { mode: 0o700 })
      // left by a daemon killed with kill -9: a pid no process has
      await writeFile(join(stateDir, STATE_LOCK_FILE), `${JSON.stringify({ pid: 2 ** 22 + 1, socket: '/x.sock', interface: 'racer', stateDir, startedAt: '2026-01-01T00:00:00.000Z' })}\n`)
      const startAt = Date.now() + 1000
      const children = Array.from({ length: 4 }, () => spawn(process.execPath, [...execArgv, racer, stateDir, String(startAt)], { stdio: ['pipe', 'pipe', 'inherit'] }))
      const outs = children.map(() => '')
      let answered!: () => void
      const allAnswered = new Promise<void>((r) => (answered = r))
      children.forEach((child, i) =>
        child.stdout.on('data', (d: Buffer) => {
          outs[i] += d
          if (outs.every((o) => o.includes('\n'))) answered()
        }),
      )
      const exited = Promise.all(children.map((child) => once(child, 'exit')))
      await Promise.race([allAnswered, exited])
      for (const child of children) child.stdin.end() // the winner lets go only now: a late starter still finds the lock held
      await exited
      const outputs = outs.map((o) => o.trim())
      const winners = outputs.filter((o) => o.startsWith('WON'))
      assert.equal(winners.length, 1, `round ${round}: ${JSON.stringify(outputs)}`)
      assert.match(winners[0]!, /^WON\nHELD true$/, `the winner's lock stayed its own: ${JSON.stringify(outputs)}`)
      for (const o of outputs.filter((x) => !x.startsWith('WON'))) assert.equal(o, 'LOST NGROKD_ERR_ALREADY_RUNNING')
      assert.deepEqual((await readdir(stateDir)).filter((f) => f !== STATE_LOCK_FILE), [], 'no breaker or temp file left')
    }
  }))

test("a breaker file a remover killed mid-break left (a dead pid, this pid from before it started, or not a breaker) does not hold starts up", () =>
  withDirs(async (dir) => {
    const stale = `${JSON.stringify({ pid: 2 ** 22 + 1, socket: '/x.sock', interface: 'x', stateDir: dir, startedAt: '2026-01-01T00:00:00.000Z' })}\n`
    for (const breaker of [`${JSON.stringify({ pid: 2 ** 22 + 2, startedAt: new Date().toISOString() })}\n`, `${JSON.stringify({ pid: process.pid, startedAt: '2026-01-01T00:00:00.000Z' })}\n`, '1\n']) {
      await writeFile(join(dir, STATE_LOCK_FILE), stale)
      await writeFile(join(dir, `${STATE_LOCK_FILE}.break`), breaker)
      const lock = await InstanceLock.acquire({ stateDir: dir, interfaceName: 'x', socketPath: '/x.sock', runDir: null })
      assert.deepEqual(lock.replacedStale, [join(dir, STATE_LOCK_FILE)], breaker)
      await lock.release()
      assert.deepEqual(await readdir(dir), [], `nothing left: ${breaker}`)
    }
  }))

test('a lock with this pid from before this process started is a previous run’s (a container’s pid 1) and is replaced', () =>
  withDirs(async (dir) => {
    const stateDir = join(dir, 'state')
    await mkdir(stateDir)
    const old = { pid: process.pid, socket: '/run/old.sock', interface: 'ngrokd0', stateDir, startedAt: new Date(Date.now() - process.uptime() * 1000 - 3_600_000).toISOString() }
    await writeFile(join(stateDir, STATE_LOCK_FILE), JSON.stringify(old))
    const lock = await InstanceLock.acquire({ stateDir, interfaceName: 'ngrokd0', socketPath: '/run/new.sock', runDir: null })
    await lock.release()
  }))

test('two daemons with their own state dirs and interfaces may not write one hosts block; another instance’s block is free', () =>
  withDirs(async (dir) => {
    const runDir = join(dir, 'run')
    const hostsFile = join(dir, 'hosts')
    const daemon = async (name: string, hostsBlock: { path: string; instance?: string }) => {
      const stateDir = join(dir, name)
      await mkdir(stateDir, { recursive: true })
      return InstanceLock.acquire({ stateDir, interfaceName: `${name}0`, socketPath: `/run/${name}.sock`, runDir, hostsBlock })
    }
    const first = await daemon('first', { path: hostsFile })
    await assert.rejects(daemon('second', { path: join(dir, '.', 'hosts') }), refused(process.pid, new RegExp(`the ngrokd block of ${hostsFile}; its control socket is /run/first\\.sock`)))
    const named = await daemon('work', { path: hostsFile, instance: 'work' })
    await assert.rejects(daemon('work2', { path: hostsFile, instance: 'work' }), (e: unknown) => {
      assert.match((e as { hint: string }).hint, /^stop it first \(`ngrokd status --instance work` shows it\)/, 'a named instance is not told to become one')
      assert.match((e as Error).message, new RegExp(`the ngrokd instance work block of ${hostsFile}; `), 'the block named is the instance\'s')
      return true
    })
    await writeFile(hostsFile, '')
    await symlink(hostsFile, join(dir, 'hosts-link'))
    await assert.rejects(daemon('linked', { path: join(dir, 'hosts-link') }), refused(process.pid, /the ngrokd block of/), 'a symlink to the same file is the same block')
    const elsewhere = await daemon('other', { path: join(dir, 'hosts2') })
    for (const lock of [first, named, elsewhere]) await lock.release()
    assert.deepEqual(await readdir(runDir), [], 'release removes every lock')
    const again = await daemon('second', { path: hostsFile })
    await again.release()
  }))

test('a lock that is no daemon\'s and cannot be replaced (a folder in its place) is named with its fix, not taken for a daemon starting', () =>
  withDirs(async (dir) => {
    const stateDir = join(dir, 'state')
    await mkdir(join(stateDir, STATE_LOCK_FILE), { recursive: true })
    await assert.rejects(InstanceLock.acquire({ stateDir, interfaceName: 'ngrokd0', socketPath: '/run/x.sock', runDir: join(dir, 'run') }), (e: unknown) => {
      assert.ok(isNgrokdError(e, 'NGROKD_ERR_STATE'), String(e))
      assert.match((e as Error).message, /is no running ngrokd's and cannot be replaced/)
      assert.match((e as { hint?: string }).hint ?? '', /rm -r .*ngrokd\.lock/)
      return true
    })
    assert.deepEqual((await readdir(stateDir)).sort(), [STATE_LOCK_FILE], 'no temp file left behind')
  }))

test('root refused by an immutable state dir or run dir (chattr +i) is told of the attribute, not to run as root', { skip: process.getuid?.() !== 0 && 'needs root (chattr)' }, (t) =>
  withDirs(async (dir) => {
    for (const which of ['state', 'run'] as const) {
      const stateDir = join(dir, which, 'state')
      const runDir = join(dir, which, 'run')
      await mkdir(stateDir, { recursive: true })
      await mkdir(runDir, { recursive: true })
      const immutable = which === 'state' ? stateDir : runDir
      if (spawnSync('chattr', ['+i', immutable]).status !== 0) return t.skip('chattr +i is not supported here')
      try {
        await assert.rejects(InstanceLock.acquire({ stateDir, interfaceName: 'ngrokd0', socketPath: '/run/x.sock', runDir }), (e: unknown) => {
          assert.ok(isNgrokdError(e, 'NGROKD_ERR_PERMISSION'), String(e))
          assert.match(e.hint ?? '', new RegExp(`^${immutable} or a file in it refuses even root: it is immutable or append-only \\(lsattr -d ${immutable}; `), `${which}: ${e.hint}`)
          return true
        })
      } finally {
        spawnSync('chattr', ['-i', immutable])
      }
    }
  }))

test('two instances whose names chose one subnet: the second daemon is refused, told to set a net.subnet of its own', () =>
  withDirs(async (dir) => {
    const runDir = join(dir, 'run')
    const daemon = async (name: string, subnet: string) => {
      const stateDir = join(dir, name)
      await mkdir(stateDir, { recursive: true })
      return InstanceLock.acquire({ stateDir, interfaceName: `ngrokd-${name}`, socketPath: `/run/ngrokd-${name}.sock`, runDir, hostsBlock: { path: join(dir, 'hosts'), instance: name }, subnet })
    }
    const prod = await daemon('prod', '10.112.0.0/16')
    await assert.rejects(daemon('work', '10.112.0.0/16'), (e: unknown) => {
      assert.ok(refused(process.pid, /subnet 10\.112\.0\.0\/16; its control socket is \/run\/ngrokd-prod\.sock/)(e), String(e))
      assert.equal((e as { hint: string }).hint, 'it hands out addresses of 10.112.0.0/16: give this daemon a net.subnet of its own (in /etc/ngrokd/work.yml: two instance names can choose one /16)')
      return true
    })
    const work = await daemon('work', '10.113.0.0/16')
    for (const lock of [prod, work]) await lock.release()
    assert.deepEqual(await readdir(runDir), [], 'release removes every lock')
  }))

test('cleanup removes the subnet lock a daemon now gone left, never one a running daemon holds', () =>
  withDirs(async (dir) => {
    const runDir = join(dir, 'run')
    const stateDir = join(dir, 'state')
    await mkdir(stateDir, { recursive: true })
    const running = await InstanceLock.acquire({ stateDir, interfaceName: 'ngrokd0', socketPath: '/run/x.sock', runDir, subnet: '10.114.0.0/16' })
    assert.equal(await InstanceLock.removeStaleSubnetLock('10.114.0.0/16', runDir), undefined, 'a live holder keeps it')
    const [lockFile] = (await readdir(runDir)).filter((f) => f.startsWith('subnet-'))
    assert.ok(lockFile)
    // the same lock as a killed daemon leaves it: a pid that is no ngrokd
    await writeFile(join(runDir, lockFile), `${JSON.stringify({ pid: 2 ** 22 + 1, socket: '/run/x.sock', interface: 'ngrokd0', stateDir, startedAt: new Date().toISOString(), subnet: '10.114.0.0/16' })}\n`)
    assert.equal(await InstanceLock.removeStaleSubnetLock('10.114.0.0/16', runDir), join(runDir, lockFile))
    assert.ok(!(await readdir(runDir)).includes(lockFile))
    assert.equal(await InstanceLock.removeStaleSubnetLock('10.114.0.0/16', runDir), undefined, 'nothing left: nothing said')
    await running.release()
  }))

test('a run dir that is a file (echo x > /run/ngrokd) is named with its fix, not a bare EEXIST', () =>
  withDirs(async (dir) => {
    const stateDir = join(dir, 'state')
    await mkdir(stateDir)
    const runDir = join(dir, 'run')
    await writeFile(runDir, 'x\n')
    for (const [dirAt, code] of [[runDir, 'EEXIST'], [join(runDir, 'below'), 'ENOTDIR']] as const) {
      await assert.rejects(InstanceLock.acquire({ stateDir, interfaceName: 'ngrokd0', socketPath: '/run/x.sock', runDir: dirAt }), (e: unknown) => {
        assert.ok(isNgrokdError(e, 'NGROKD_ERR_STATE'), String(e))
        assert.equal((e as Error).message, `the lock directory ${dirAt} cannot be made: ${dirAt === runDir ? 'it' : runDir} is a file, not a directory (${code})`)
        assert.match((e as { hint?: string }).hint ?? '', new RegExp(`^remove it: rm ${runDir} \\(ngrokd makes ${dirAt} again as a directory`), 'the file is named, wherever it is')
        return true
      })
    }
    assert.deepEqual(await readdir(stateDir), [], 'no lock left in the state dir')
  }))

test('a state dir removed under the daemon: its lock is found lost and taken again, or found taken by the daemon that started there since', () =>
  withDirs(async (dir) => {
    const stateDir = join(dir, 'state')
    await mkdir(stateDir)
    const first = await InstanceLock.acquire({ stateDir, interfaceName: 'ngrokd0', socketPath: '/run/first.sock', runDir: null })
    assert.deepEqual(await first.stateLock(), { held: true })
    await rm(stateDir, { recursive: true })
    assert.deepEqual(await first.stateLock(), { held: false }, 'gone with its folder')
    await mkdir(stateDir)
    assert.equal(await first.retakeStateLock(), undefined)
    assert.deepEqual(await first.stateLock(), { held: true })
    assert.equal(JSON.parse(await readFile(join(stateDir, STATE_LOCK_FILE), 'utf8')).socket, '/run/first.sock')
    // removed again, and another daemon (here in this process: started after it) took the state dir meanwhile
    await rm(stateDir, { recursive: true })
    await mkdir(stateDir)
    const second = await InstanceLock.acquire({ stateDir, interfaceName: 'ngrokd9', socketPath: '/run/second.sock', runDir: null })
    const lost = await first.stateLock()
    assert.equal(lost.held, false)
    assert.equal(!lost.held && lost.other?.socket, '/run/second.sock')
    assert.equal((await first.retakeStateLock())?.socket, '/run/second.sock', 'the lock stays the live holder\'s')
    assert.deepEqual(await second.stateLock(), { held: true })
    await second.release()
  }))

test('a user the 0700 state dir shuts out (a control.group member running doctor) cannot read its lock, and is told so', { skip: localUserSkip() }, async () => {
  const user = localUser()!
  const dir = await mkdtemp(join(tmpdir(), 'ngrokd-lock-'))
  try {
    const stateDir = join(dir, 'state')
    await mkdir(stateDir, { mode: 0o700 })
    assert.equal(await stateLockReadable(stateDir), true, 'root reads it')
    assert.equal(await stateLockReadable(join(dir, 'gone')), true, 'a missing state dir is read as missing, not as shut')
    const probe = `import(${JSON.stringify(new URL('./instance-lock.js', import.meta.url).href)}).then(async (m) => process.stdout.write(String(await m.stateLockReadable(${JSON.stringify(stateDir)}))))`
    const child = spawn('setpriv', [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', process.execPath, '-e', probe], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    await once(child, 'exit')
    assert.equal(out, 'false')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('a daemon in another mount namespace (a systemd service has its own) on the same hosts file is refused; one on a private copy mounted over it is not', { skip: process.getuid?.() === 0 ? false : 'needs root (unshare --mount)' }, () =>
  withDirs(async (dir) => {
    const runDir = join(dir, 'run')
    const hostsFile = join(dir, 'hosts')
    await writeFile(hostsFile, '127.0.0.1 localhost\n')
    await writeFile(join(dir, 'private-hosts'), '127.0.0.1 localhost\n')
    const holderIn = async (privateCopy: boolean) => {
      const script = join(dir, `ngrokd-lock-holder-${privateCopy}.mjs`)
      await writeFile(
        script,
        `import { InstanceLock } from ${JSON.stringify(new URL('./instance-lock.js', import.meta.url).href)}
         const { mkdirSync } = await import('node:fs')
         const { execFileSync } = await import('node:child_process')
         ${privateCopy ? `execFileSync('mount', ['--bind', ${JSON.stringify(join(dir, 'private-hosts'))}, ${JSON.stringify(hostsFile)}])` : ''}
         mkdirSync(${JSON.stringify(join(dir, `state-${privateCopy}`))}, { recursive: true })
         await InstanceLock.acquire({ stateDir: ${JSON.stringify(join(dir, `state-${privateCopy}`))}, interfaceName: 'svc0', socketPath: '/run/service.sock', runDir: ${JSON.stringify(runDir)}, hostsBlock: { path: ${JSON.stringify(hostsFile)} } })
         console.log('held')
         process.stdin.resume()`,
      )
      const holder = spawn('unshare', ['--mount', '--propagation', 'private', process.execPath, script], { stdio: ['pipe', 'pipe', 'inherit'] })
      const [line] = (await once(holder.stdout, 'data')) as [Buffer]
      assert.equal(line.toString().trim(), 'held')
      return holder
    }
    const tryHere = async () => {
      await mkdir(join(dir, 'here'), { recursive: true })
      return InstanceLock.acquire({ stateDir: join(dir, 'here'), interfaceName: 'here0', socketPath: '/run/here.sock', runDir, hostsBlock: { path: hostsFile } })
    }
    const service = await holderIn(false)
    try {
      await assert.rejects(tryHere(), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_ALREADY_RUNNING') && /the ngrokd block of .*\/hosts; its control socket is \/run\/service\.sock/.test((e as Error).message))
    } finally {
      service.kill('SIGKILL')
      await once(service, 'exit')
    }
    const onCopy = await holderIn(true)
    try {
      const lock = await tryHere() // the other daemon writes its private copy, not this file
      await lock.release()
    } finally {
      onCopy.kill('SIGKILL')
      await once(onCopy, 'exit')
    }
  }))
