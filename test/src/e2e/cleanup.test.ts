// `ngrokd cleanup`: after a daemon is killed (kill -9), its interface, addresses, hosts block, control
// socket and lock stay on the machine; cleanup removes each and says so. While a daemon runs it is
// refused (exit 2): that daemon removes what it made when it stops.
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { netnsSkip } from '../helpers/netns.js'
import { netDriverCases } from '../helpers/net-drivers.js'
import { simulatedDaemon } from '../helpers/simulated-daemon.js'
import { kernelAddresses, linkExists } from '../helpers/ip-link.js'
import { managedRecords, readHosts } from '../helpers/hosts-file.js'
import { ngrokdCli } from '../helpers/ngrokd-cli.js'


describe('ngrokd cleanup', { skip: netnsSkip }, () => {
  const net = netDriverCases('clean')[1]!
  const ctx = simulatedDaemon({ name: 'cleanup', net, endpoints: ['http://left.e2e', 'tcp://behind.e2e:6000'] })

  test('refused while the daemon runs, which keeps everything', async () => {
    const r = await ngrokdCli(['cleanup', '--config', ctx.daemon.configFile])
    assert.equal(r.code, 2, r.stdout + r.stderr)
    assert.match(r.stderr, new RegExp(`another ngrokd \\(pid ${ctx.daemon.process.pid},`))
    assert.match(r.stderr, /stop that daemon first .*a daemon that stops removes what it made itself/)
    assert.doesNotMatch(r.stderr, /named instance/, 'no advice to start another daemon')
    assert.equal((await ctx.daemon.status()).services.serving, 2)
  })

  test('after kill -9 it removes the addresses, the interface, the hosts block, the socket and the lock, and says so', async () => {
    await ctx.daemon.stop('SIGKILL')
    assert.equal(linkExists(net.interfaceName!), true, 'a killed daemon leaves its interface')
    assert.ok(kernelAddresses(net.interfaceName!)!.length >= 2, 'and the two endpoints’ addresses')
    assert.equal(managedRecords(readHosts()).size, 2, 'and its hosts lines')
    assert.equal(existsSync(ctx.daemon.socketPath), true)
    assert.equal(existsSync(join(ctx.daemon.stateDir, 'ngrokd.lock')), true)
    // doctor does not call the leftovers fine: each is a warning naming the fix
    const doctor = await ngrokdCli(['doctor', '--json', '--offline', '--config', ctx.daemon.configFile])
    const leftovers = (JSON.parse(doctor.stdout) as { checks: Array<{ id: string; summary: string; hint?: string }> }).checks.filter((c) => c.id === 'daemon.leftovers')
    assert.deepEqual(
      leftovers.map((c) => c.summary.replace(/^no daemon runs, but (.*) (?:is|are) still there.*$/, '$1').replace(/^no daemon runs, but (an interface named \S+) is there:.*$/, '$1')).sort(),
      [`2 names in the ngrokd block of /etc/hosts`, `control socket ${ctx.daemon.socketPath}`, `an interface named ${net.interfaceName}`].sort(),
    )
    assert.match(leftovers[0]!.hint!, /ngrokd cleanup/)

    // a key of what cleanup removes, mistyped since the start, stops it: it would clean up another configuration's
    const config = ctx.daemon.config as { net: Record<string, unknown> }
    writeFileSync(ctx.daemon.configFile, JSON.stringify({ ...config, net: { ...config.net, interface_name: 'bad name!' } }))
    const refused = await ngrokdCli(['cleanup', '--config', ctx.daemon.configFile])
    assert.equal(refused.code, 1, refused.stdout + refused.stderr)
    assert.match(refused.stderr, /net\.interface_name/)
    assert.equal(linkExists(net.interfaceName!), true, 'nothing removed')
    // any other bad key (log.level, an unknown one) is said, and cleanup goes on: the service's ExecStopPost after a crash
    writeFileSync(ctx.daemon.configFile, JSON.stringify({ ...config, bogus: 1, log: { level: 'loud' } }))
    const r = await ngrokdCli(['cleanup', '--config', ctx.daemon.configFile])
    writeFileSync(ctx.daemon.configFile, JSON.stringify(config))
    assert.equal(r.code, 0, r.stdout + r.stderr)
    assert.match(r.stderr, /^ngrokd cleanup: warning: invalid configuration [^]*bogus: unknown key[^]*log\.level[^]*going on with their defaults/)
    assert.match(r.stdout, /^removed:/)
    assert.doesNotMatch(r.stderr, /adopted/, 'the link it removes is not said to be adopted')
    assert.match(r.stdout, /stale lock .*ngrokd\.lock/)
    assert.match(r.stdout, new RegExp(`stale lock .*subnet-\\d+-${net.subnet.replace(/[./]/g, (c) => (c === '/' ? '_' : '\\.'))}\\.lock`), 'the subnet\'s lock too')
    assert.match(r.stdout, new RegExp(`control socket ${ctx.daemon.socketPath.replace(/[.]/g, '\\.')}`))
    assert.match(r.stdout, /the ngrokd block of \/etc\/hosts/)
    assert.match(r.stdout, new RegExp(`interface ${net.interfaceName} \\(linux-netlink\\)`))
    assert.equal(linkExists(net.interfaceName!), false)
    assert.equal(managedRecords(readHosts()).size, 0)
    assert.equal(existsSync(ctx.daemon.socketPath), false)
    assert.equal(existsSync(join(ctx.daemon.stateDir, 'ngrokd.lock')), false)

    // the stable hostname → address mappings are not the cleanup's: kept as they are for the next start,
    // even when the configuration now names another subnet
    const allocations = join(ctx.daemon.stateDir, 'allocations.json')
    const mappings = readFileSync(allocations, 'utf8')
    assert.match(mappings, /left\.e2e/)
    const again = await ngrokdCli(['cleanup', '--config', ctx.daemon.configFile], { env: { NGROKD_NET_SUBNET: '10.99.0.0/16' } })
    assert.equal(again.code, 0, again.stderr)
    assert.equal(again.stdout.trim(), 'nothing to clean up')
    assert.equal(again.stderr, '', 'nothing to warn about')
    assert.equal(linkExists(net.interfaceName!), false, 'a cleanup with nothing left creates nothing either')
    assert.equal(readFileSync(allocations, 'utf8'), mappings)
  })
})

describe('ngrokd cleanup when the driver cannot remove the interface', { skip: netnsSkip }, () => {
  test('the interface is said not removed, with the driver\'s reason, and the exit code is 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ngrokd-e2e-cleanup-fails-'))
    try {
      // an interface a killed daemon left (open() adopts it) that its driver fails to delete
      writeFileSync(
        join(dir, 'stuck-driver.mjs'),
        `import { defineDriver } from ${JSON.stringify(import.meta.resolve('@ngrokd/core/driver'))}
export default defineDriver({ name: 'stuck', provides: ['interface'], platforms: ['linux'], ngrokd: '*',
  async create() {
    return { interface: {
      driver: 'stuck',
      async open({ name }) { return { name, kind: 'stuck', adopted: true, notes: [] } },
      async addAddress() {}, async removeAddress() {}, async applyAddresses() {}, async listAddresses() { return [] },
      async close({ removeInterface } = {}) { if (removeInterface) throw new Error('EBUSY: the link is in use') },
      async diagnose() { return [] },
    } }
  },
})
`,
      )
      writeFileSync(join(dir, 'hosts'), '127.0.0.1 localhost\n')
      const config = join(dir, 'config.json')
      writeFileSync(config, JSON.stringify({ state_dir: join(dir, 'state'), control: { socket: join(dir, 'ctl.sock') }, net: { driver: join(dir, 'stuck-driver.mjs'), interface_name: 'stuck0' }, names: { hosts_file: join(dir, 'hosts') } }))
      const r = await ngrokdCli(['cleanup', '--config', config])
      assert.equal(r.code, 1, r.stdout + r.stderr)
      assert.doesNotMatch(r.stdout, /interface stuck0/, 'not listed as removed')
      // a driver's own error without a code is said as the driver's, with a code
      writeFileSync(join(dir, 'stuck-driver.mjs'), readFileSync(join(dir, 'stuck-driver.mjs'), 'utf8').replace('async open({ name }) {', "async open() { throw new Error('kaboom in open');"))
      const broken = await ngrokdCli(['cleanup', '--config', config])
      assert.equal(broken.code, 1, broken.stdout + broken.stderr)
      assert.match(broken.stderr, /interface driver .*stuck-driver\.mjs: open\(\) failed: kaboom in open.*NGROKD_ERR_DRIVER_FAILED/s)
      assert.match(r.stderr, /not removed:\n {2}interface stuck0 \(.*stuck-driver\.mjs\): .*EBUSY: the link is in use/)
      assert.doesNotMatch(r.stderr, /error while closing/, 'said once')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test('a state_dir that is not there and cannot be made (a read-only file system) holds nothing: cleanup says so and ends 0; doctor names EROFS', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ngrokd-e2e-cleanup-rofs-'))
    const ro = join(dir, 'ro')
    mkdirSync(ro)
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro', 'ngrokd-e2e-rofs', ro])
    try {
      writeFileSync(join(dir, 'hosts'), '127.0.0.1 localhost\n')
      const config = join(dir, 'config.json')
      writeFileSync(config, JSON.stringify({ state_dir: join(ro, 'ngrokd'), control: { socket: join(dir, 'ctl.sock') }, net: { interface_name: 'rofs0', subnet: '10.97.0.0/16' }, names: { hosts_file: join(dir, 'hosts') } }))
      const r = await ngrokdCli(['cleanup', '--config', config])
      assert.equal(r.code, 0, r.stdout + r.stderr)
      assert.match(r.stdout, /nothing to clean up/)
      assert.match(r.stderr, /read-only \(EROFS\): nothing ran on it, so it holds nothing to clean up/)
      assert.doesNotMatch(r.stderr, /the locks cannot be taken/, 'said once')
      const doctor = await ngrokdCli(['doctor', '--json', '--offline', '--config', config])
      const check = (JSON.parse(doctor.stdout) as { checks: Array<{ id: string; status: string; summary: string; hint?: string }> }).checks.find((c) => c.id === 'state.dir')!
      assert.equal(check.status, 'fail')
      assert.match(check.summary, /is not writable: its file system is read-only \(EROFS\)/)
      assert.match(check.hint!, /^remount the file system of/, 'not "run as root"')
    } finally {
      execFileSync('umount', [ro])
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

