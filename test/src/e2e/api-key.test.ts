// `ngrokd run` with no API key waits for one and says so; `ngrokd set-api-key` reads it from stdin,
// hands it to the running daemon (which saves it 0600 and registers), or saves it for the next start.
// Also: every command answers --help.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DaemonProcess } from '@ngrokd/core'
import { CloudSimulator } from '@ngrokd/plugin-simulator'
import { netnsSkip } from '../helpers/netns.js'
import { E2eDaemon } from '../helpers/e2e-daemon.js'
import { httpRequest } from '../helpers/clients.js'
import { snapshotHostsFile } from '../helpers/hosts-guard.js'
import { ngrokdCli } from '../helpers/ngrokd-cli.js'


describe('ngrokd run without an API key', { skip: netnsSkip }, () => {
  let sim: CloudSimulator
  let dir: string
  let configFile: string
  let socketPath: string
  let logFile: string
  let daemon: DaemonProcess
  const hosts = snapshotHostsFile()

  before(async () => {
    hosts.take()
    sim = await CloudSimulator.start()
    sim.addEndpoint({ url: 'http://keyed.e2e' })
    dir = mkdtempSync(join(tmpdir(), 'ngrokd-e2e-apikey-'))
    configFile = join(dir, 'ngrokd.json')
    socketPath = join(dir, 'ctl.sock')
    logFile = join(dir, 'daemon.log')
    writeFileSync(join(dir, 'ca.pem'), sim.caCertPem)
    writeFileSync(
      configFile,
      JSON.stringify({
        api: { url: sim.apiUrl }, // no key
        ingress: { ca_file: join(dir, 'ca.pem') },
        bound_endpoints: { poll_interval: '1s' },
        net: { driver: 'loopback-alias', subnet: '127.107.0.0/16' },
        state_dir: join(dir, 'state'),
        control: { socket: socketPath },
      }),
    )
  })

  after(async () => {
    await daemon?.stop()
    await sim?.stop()
    rmSync(dir, { recursive: true, force: true })
    hosts.assertRestored()
  })

  test('waits for a key, says how to give one, and serves once set-api-key pipes it in', async () => {
    daemon = new DaemonProcess({ configFile, socketPath, logFile, env: E2eDaemon.childEnv() })
    const waiting = await daemon.waitFor((s) => s.phase === 'waiting-for-api-key', { what: 'the waiting phase' })
    assert.equal(waiting.operatorId, undefined)
    // every hint names what reaches this daemon, not the default one
    const setKey = `ngrokd set-api-key --config ${configFile}`
    assert.ok(readFileSync(logFile, 'utf8').includes(`Run \`${setKey}\``), 'the log names the command')
    const status = await ngrokdCli(['status', '--config', configFile])
    assert.equal(status.code, 0)
    assert.ok(status.stdout.includes(`waiting for an API key: run \`${setKey}\``), status.stdout)
    assert.ok(status.stdout.includes(`api key:    none yet: run \`${setKey}\``), status.stdout)
    const waitingDoctor = await ngrokdCli(['doctor', '--json', '--offline', '--config', configFile])
    assert.equal((JSON.parse(waitingDoctor.stdout) as { checks: Array<{ id: string; hint?: string }> }).checks.find((c) => c.id === 'daemon.running')?.hint, setKey)

    const bad = await ngrokdCli(['set-api-key', '--config', configFile], { stdin: 'not a key!\n' })
    assert.notEqual(bad.code, 0)
    assert.match(bad.stderr, /does not look like an ngrok API key/)

    // a key of the right shape that the API refuses: reported, not saved, the daemon keeps waiting
    const keyFile = join(dir, 'state', 'api-key')
    const refused = await ngrokdCli(['set-api-key', '--config', configFile], { stdin: 'wrongKEY1234567890abc\n' })
    assert.notEqual(refused.code, 0, refused.stdout)
    assert.match(refused.stderr, /the ngrok API refused this key \(HTTP 401\): it was not saved/)
    assert.equal(existsSync(keyFile), false)
    assert.equal((await daemon.status()).phase, 'waiting-for-api-key')

    const set = await ngrokdCli(['set-api-key', '--config', configFile], { stdin: `${sim.apiKey}\n` })
    assert.equal(set.code, 0, set.stderr)
    assert.match(set.stdout, /the ngrok API accepted the key; handed to the running daemon/)
    assert.equal(statSync(keyFile).mode & 0o777, 0o600)
    assert.equal(readFileSync(keyFile, 'utf8').trim(), sim.apiKey)
    assert.ok(!readFileSync(logFile, 'utf8').includes(sim.apiKey), 'the key never reaches the log')

    await daemon.waitFor((s) => s.phase === 'running' && s.services?.serving === 1, { what: 'registration and serving' })
    const res = await httpRequest('http://keyed.e2e/hello')
    assert.equal(res.status, 200)

    // the saved key is used on the next start, without asking again
    await daemon.stop()
    daemon = new DaemonProcess({ configFile, socketPath, logFile, env: E2eDaemon.childEnv() })
    await daemon.waitFor((s) => s.phase === 'running' && s.services?.serving === 1, { what: 'a restart with the saved key' })

    // the key is revoked at ngrok and a new one made: the running daemon's polls fail until it is handed
    // the new key, and then use it (no restart), picking up an endpoint added meanwhile
    const oldKey = sim.apiKey
    const newKey = 'rotatedKEY1234567890abc'
    sim.setApiKey(newKey)
    sim.addEndpoint({ url: 'http://rotated.e2e' })
    const failing = await daemon.waitFor((s) => s.lastPoll?.ok === false && s.apiKey.lastError !== undefined, { what: 'a poll refused with the revoked key' })
    assert.match(failing.apiKey.lastError!.message, /401/)
    const doctor = await ngrokdCli(['doctor', '--json', '--offline', '--config', configFile])
    const keyCheck = (JSON.parse(doctor.stdout) as { checks: Array<{ id: string; status: string; summary: string; hint?: string }> }).checks.find((c) => c.id === 'daemon.api-key')
    assert.equal(keyCheck?.status, 'fail', doctor.stdout)
    assert.match(keyCheck!.summary, /was refused: .*401/)
    assert.match(keyCheck!.hint ?? '', /ngrokd set-api-key/)
    const handed = await ngrokdCli(['set-api-key', '--config', configFile], { stdin: `${newKey}\n` })
    assert.equal(handed.code, 0, handed.stderr)
    assert.match(handed.stdout, /handed to the running daemon/)
    const rotated = await daemon.waitFor((s) => s.lastPoll?.ok === true && s.services?.serving === 2, { what: 'polls with the new key' })
    assert.equal(rotated.apiKey.lastError, undefined)
    assert.equal(rotated.apiKey.source, 'ngrokd set-api-key')
    assert.equal((await httpRequest('http://rotated.e2e/hello')).status, 200)
    // the key handed over, now written in the config file too, is no change; another key waits for a restart
    const base = readFileSync(configFile, 'utf8')
    const reloadWithKey = async (key: string) => {
      writeFileSync(configFile, JSON.stringify({ ...(JSON.parse(base) as { api: object }), api: { url: sim.apiUrl, key } }))
      const r = await ngrokdCli(['reload', '--json', '--config', configFile])
      assert.equal(r.code, 0, r.stderr)
      return (JSON.parse(r.stdout) as { restartNeeded: string[] }).restartNeeded
    }
    try {
      assert.deepEqual(await reloadWithKey(newKey), [])
      assert.deepEqual(await reloadWithKey('anotherKEY1234567890abc'), ['api.key'])
    } finally {
      writeFileSync(configFile, base)
    }
    const log = readFileSync(logFile, 'utf8')
    assert.ok(!log.includes(newKey) && !log.includes(oldKey), 'neither key reaches the log')
  })

  test('with no daemon running, set-api-key asks the API itself: a refused key is not saved, an accepted one is saved 0600 for the next start', async () => {
    await daemon.stop()
    const other = join(dir, 'other.json')
    writeFileSync(other, JSON.stringify({ api: { url: sim.apiUrl }, state_dir: join(dir, 'other-state'), control: { socket: join(dir, 'none.sock') } }))
    const refused = await ngrokdCli(['set-api-key', '--config', other], { stdin: 'abcdEFGH1234_key\n' })
    assert.equal(refused.code, 1, refused.stdout)
    assert.match(refused.stderr, /the ngrok API refused this key \(HTTP 401\): it was not saved/)
    assert.equal(existsSync(join(dir, 'other-state', 'api-key')), false)
    const set = await ngrokdCli(['set-api-key', '--config', other], { stdin: `${sim.apiKey}\n` })
    assert.equal(set.code, 0, set.stderr)
    assert.match(set.stdout, /^the ngrok API accepted the key; ngrokd is not running: saved to .*api-key for its next start$/m)
    assert.equal(statSync(join(dir, 'other-state', 'api-key')).mode & 0o777, 0o600)
    // the API out of reach: saved, and said to be unverified
    writeFileSync(other, JSON.stringify({ api: { url: 'http://127.0.0.1:9' }, state_dir: join(dir, 'other-state'), control: { socket: join(dir, 'none.sock') } }))
    const unreachable = await ngrokdCli(['set-api-key', '--config', other], { stdin: 'abcdEFGH1234_key\n' })
    assert.equal(unreachable.code, 0, unreachable.stderr)
    assert.match(unreachable.stdout, /not running; API key saved to .* for its next start, but not verified: the ngrok API could not be asked/)
  })
})

describe('a key handed over while a call with the old one is under way', { skip: netnsSkip }, () => {
  test('a refusal of the replaced key is not taken for one of the new key: the daemon registers with it', async () => {
    const sim = await CloudSimulator.start()
    const dir = mkdtempSync(join(tmpdir(), 'ngrokd-e2e-apikey-race-'))
    const hosts = snapshotHostsFile()
    hosts.take()
    let daemon: DaemonProcess | undefined
    try {
      sim.addEndpoint({ url: 'http://raced.e2e' })
      const configFile = join(dir, 'ngrokd.json')
      const socketPath = join(dir, 'ctl.sock')
      writeFileSync(join(dir, 'ca.pem'), sim.caCertPem)
      writeFileSync(configFile, JSON.stringify({
        api: { url: sim.apiUrl, key: sim.apiKey },
        ingress: { ca_file: join(dir, 'ca.pem') },
        net: { driver: 'loopback-alias', subnet: '127.109.0.0/16', interface_name: 'ngkrace0' },
        state_dir: join(dir, 'state'),
        control: { socket: socketPath },
      }))
      // the daemon's first API call is held long enough for the key to be revoked and a new one handed over
      sim.injectApiFault({ kind: 'latency', ms: 3_000, count: 1 })
      daemon = new DaemonProcess({ configFile, socketPath, logFile: join(dir, 'daemon.log'), env: E2eDaemon.childEnv() })
      await daemon.waitFor((s) => s.phase === 'registering', { what: 'the registration under way' })
      const newKey = 'racedKEY1234567890abcdef'
      sim.setApiKey(newKey)
      const handed = await ngrokdCli(['set-api-key', '--config', configFile], { stdin: `${newKey}\n` })
      assert.equal(handed.code, 0, handed.stderr)
      const serving = await daemon.waitFor((s) => s.phase === 'running' && s.services?.serving === 1, { what: 'registration with the new key' })
      assert.equal(serving.apiKey.source, 'ngrokd set-api-key')
    } finally {
      await daemon?.stop()
      await sim.stop()
      rmSync(dir, { recursive: true, force: true })
      hosts.assertRestored()
    }
  })
})

describe('every command answers --help', () => {
  for (const command of ['run', 'status', 'list', 'set-api-key', 'reload', 'cleanup', 'service', 'demo', 'version']) {
    test(`ngrokd ${command} --help`, async () => {
      const r = await ngrokdCli([command, '--help'])
      assert.equal(r.code, 0, r.stderr)
      assert.match(r.stdout, /Usage: /)
      // a command that reads no configuration neither offers --config nor takes it
      if (command === 'demo' || command === 'version') {
        assert.doesNotMatch(r.stdout, /--config/)
        const refused = await ngrokdCli([command, '--config', '/etc/ngrokd/config.yml'])
        assert.equal(refused.code, 2, refused.stderr)
        assert.match(refused.stderr, new RegExp(`^ngrokd ${command}: --config does not apply: this command reads no configuration`))
      } else assert.match(r.stdout, /--config/)
    })
  }
  test('ngrokd version names ngrokd, Node.js and each built-in driver for this system; the others as for other systems', async () => {
    const r = await ngrokdCli(['version'])
    assert.equal(r.code, 0)
    assert.match(r.stdout, /^ngrokd \d+\.\d+\.\d+\nnode v\d+/)
    for (const d of ['linux-netlink', 'loopback-alias']) assert.match(r.stdout, new RegExp(`^driver ${d} \\d+\\.\\d+\\.\\d+$`, 'm'))
    assert.match(r.stdout, /^drivers for other systems, not usable on linux: darwin-utun \(darwin\), windows-wintun \(win32\)$/m)
    assert.doesNotMatch(r.stdout, /^driver (darwin-utun|windows-wintun) /m)
  })

  test('ngrokd with no command prints the command list; an unknown one fails', async () => {
    const none = await ngrokdCli([])
    assert.match(none.stderr, /Commands:/, 'a usage error, on stderr as every other')
    assert.equal(none.stdout, '')
    assert.equal(none.code, 2)
    const asked = await ngrokdCli(['help', 'help'])
    assert.equal(asked.code, 0)
    assert.match(asked.stdout, /Commands:/)
    const unknown = await ngrokdCli(['frobnicate'])
    assert.equal(unknown.code, 2)
    assert.match(unknown.stderr, /unknown command "frobnicate"/)
  })
})
