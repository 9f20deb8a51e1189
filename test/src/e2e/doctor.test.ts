// `ngrokd doctor` against a healthy running daemon (every check ok or an explained warning) and
// against broken configurations (a failure with its code and the fix, exit code 1).
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, spawnSync } from 'node:child_process'
import { promisify } from 'node:util'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NGROKD_BIN } from '@ngrokd/core'
import { TestCa } from '@ngrokd/core/testing'
import { CloudSimulator } from '@ngrokd/plugin-simulator'
import { netnsSkip } from '../helpers/netns.js'
import { netDriverCases } from '../helpers/net-drivers.js'
import { E2eDaemon } from '../helpers/e2e-daemon.js'
import { snapshotHostsFile } from '../helpers/hosts-guard.js'

interface Report {
  ok: boolean
  checks: Array<{ id: string; status: string; summary: string; hint?: string; code?: string }>
}

const run = promisify(execFile)

async function doctor(configFile: string, ...flags: string[]): Promise<{ code: number; report: Report; text: string }> {
  // async: the simulator answering doctor's API call lives in this process
  const exec = (args: string[]) =>
    run(process.execPath, [NGROKD_BIN, 'doctor', '--config', configFile, ...flags, ...args], { env: E2eDaemon.childEnv() }).then(
      (r) => ({ code: 0, stdout: r.stdout }),
      (e: { code: number; stdout: string }) => ({ code: e.code, stdout: e.stdout }),
    )
  const [json, text] = await Promise.all([exec(['--json']), exec([])])
  return { code: json.code, report: JSON.parse(json.stdout) as Report, text: text.stdout }
}

describe('ngrokd doctor', { skip: netnsSkip }, () => {
  let sim: CloudSimulator
  let daemon: E2eDaemon
  let dir: string
  const hosts = snapshotHostsFile()

  before(async () => {
    hosts.take()
    dir = mkdtempSync(join(tmpdir(), 'ngrokd-doctor-'))
    sim = await CloudSimulator.start()
    sim.addEndpoint({ url: 'http://doc.e2e' })
    daemon = E2eDaemon.start({ name: 'doctor', sim, net: netDriverCases('doctor')[1]! })
    await daemon.waitReady((s) => s.services?.serving === 1)
  })

  after(async () => {
    await daemon?.dispose()
    await sim?.stop()
    rmSync(dir, { recursive: true, force: true })
    hosts.assertRestored()
  })

  test('a healthy setup: no failure, the API answers, the daemon is running, secrets are 0600', async () => {
    const { code, report, text } = await doctor(daemon.configFile)
    const byId = new Map(report.checks.map((c) => [c.id, c]))
    assert.equal(code, 0, text)
    assert.equal(report.ok, true)
    assert.equal(byId.get('driver.resolve')?.status, 'ok')
    assert.match(byId.get('driver.resolve')!.summary, /; needs CAP_NET_ADMIN \(privilege\), koffi \(library\), dummy \(kernel-module, optional\)/, 'the driver\'s declared requirements')
    assert.equal(byId.get('linux-netlink.socket')?.status, 'ok')
    // the running daemon's driver checks the interface it has open (Interface.diagnose()), in place of the module's probe
    assert.match(byId.get('linux-netlink.link-kind')?.summary ?? '', new RegExp(`^${netDriverCases('doctor')[1]!.interfaceName} is a `))
    assert.equal(report.checks.filter((c) => c.id === 'linux-netlink.link-kind').length, 1, 'said once')
    assert.equal(byId.get('api.reach')?.status, 'ok', byId.get('api.reach')?.summary)
    assert.equal(byId.get('daemon.running')?.status, 'ok')
    assert.match(byId.get('daemon.running')!.summary, /1 serving/)
    assert.equal(byId.get('ingress.trust')?.status, 'ok')
    assert.ok(report.checks.filter((c) => c.id === 'state.secret-mode').every((c) => c.status === 'ok'))
    assert.match(text, /✔ daemon\.running/)
    assert.match(text, /\d+ ok, \d+ warnings?, 0 failures/)
  })

  test('broken setups fail with the code and the fix', async () => {
    const missing = join(dir, 'missing-driver.json')
    writeFileSync(missing, JSON.stringify({ net: { driver: 'ngrokd-driver-nope' }, state_dir: join(dir, 'state'), control: { socket: join(dir, 'x.sock') } }))
    const a = await doctor(missing, '--offline')
    assert.equal(a.code, 1)
    const resolve = a.report.checks.find((c) => c.id === 'driver.resolve')!
    assert.equal(resolve.status, 'fail')
    assert.equal(resolve.code, 'NGROKD_ERR_DRIVER_NOT_FOUND')
    assert.match(resolve.hint ?? '', /npm install ngrokd-driver-nope/)
    assert.match(a.text, /✘ driver\.resolve/)
    // the page of codes it points to is installed with it (core's dist), where it says
    const page = /each code is explained in (\S+)$/m.exec(a.text)?.[1]
    assert.ok(page && existsSync(page) && readFileSync(page, 'utf8').includes('NGROKD_ERR_DRIVER_NOT_FOUND'), `the errors page: ${page}`)

    const invalid = join(dir, 'invalid.json')
    writeFileSync(invalid, JSON.stringify({ net: { subnet: '10.107.0.1/16' } }))
    const b = await doctor(invalid, '--offline')
    assert.equal(b.code, 1)
    const load = b.report.checks.find((c) => c.id === 'config.load')!
    assert.equal(load.code, 'NGROKD_ERR_CONFIG_INVALID')
    assert.match(load.summary, /invalid configuration/)

    const state = join(dir, 'leaky')
    writeFileSync(join(dir, 'leaky.json'), JSON.stringify({ state_dir: state, net: { driver: 'loopback-alias' }, control: { socket: join(dir, 'y.sock') } }))
    rmSync(state, { recursive: true, force: true })
    spawnSync('mkdir', ['-p', state])
    writeFileSync(join(state, 'api-key'), 'abcdEFGH12345678\n')
    chmodSync(join(state, 'api-key'), 0o644)
    const c = await doctor(join(dir, 'leaky.json'), '--offline')
    const mode = c.report.checks.find((x) => x.id === 'state.secret-mode')!
    assert.equal(mode.status, 'fail')
    assert.match(mode.hint ?? '', /chmod 600/)
    assert.equal(c.code, 1)
    // the state dir (mkdir -p: 755 here) and what ngrokd writes 0600 in it, found wider, are said too
    chmodSync(state, 0o755)
    writeFileSync(join(state, 'allocations.json'), '{}', { mode: 0o644 })
    chmodSync(join(state, 'allocations.json'), 0o644)
    const wide = (await doctor(join(dir, 'leaky.json'), '--offline')).report.checks.filter((x) => x.id === 'state.private-mode')
    assert.deepEqual(wide.map((x) => [x.status, x.hint]), [['warn', `chmod 700 ${state}`], ['warn', `chmod 600 ${join(state, 'allocations.json')}`]])

    // a config file that holds the API key is a secret as the key file is
    const keyed = join(dir, 'keyed.json')
    writeFileSync(keyed, JSON.stringify({ state_dir: join(dir, 'keyed-state'), net: { driver: 'loopback-alias' }, control: { socket: join(dir, 'k.sock') }, api: { key: 'abcdEFGH12345678' } }), { mode: 0o644 })
    chmodSync(keyed, 0o644)
    const readable = (await doctor(keyed, '--offline')).report.checks.find((x) => x.id === 'config.secret-mode')
    assert.equal(readable?.status, 'warn', 'a key in a file others can read')
    assert.match(readable!.summary, /keyed\.json holds api\.key and is mode 644/)
    assert.match(readable!.hint ?? '', /chmod 600 .*keyed\.json/)
    const withEnvKey = await run(process.execPath, [NGROKD_BIN, 'doctor', '--json', '--offline', '--config', keyed], { env: { ...E2eDaemon.childEnv(), NGROK_API_KEY: 'zzzzYYYY12345678' } }).then((r) => r.stdout, (e: { stdout: string }) => e.stdout)
    assert.equal((JSON.parse(withEnvKey) as Report).checks.find((x) => x.id === 'config.secret-mode')?.status, 'warn', 'the file holds the key whichever key wins')
    chmodSync(keyed, 0o600)
    assert.equal((await doctor(keyed, '--offline')).report.checks.find((x) => x.id === 'config.secret-mode'), undefined)

    // a certificate valid only from later than this machine's clock: the clock is behind, and doctor says so
    chmodSync(join(state, 'api-key'), 0o600)
    const early = TestCa.create().issueKeyPair({ notBefore: new Date(Date.now() + 3 * 3_600_000) })
    writeFileSync(join(state, 'client.crt'), early.certPem)
    writeFileSync(join(state, 'client.key'), early.keyPem, { mode: 0o600 })
    const skewed = (await doctor(join(dir, 'leaky.json'), '--offline')).report.checks.find((x) => x.id === 'registration.cert')!
    assert.deepEqual([skewed.status, skewed.code], ['fail', 'NGROKD_ERR_CERT'])
    assert.match(skewed.summary, /valid only from .* after this machine's clock .*: its clock is behind/)
    rmSync(join(state, 'client.crt'))
    rmSync(join(state, 'client.key'))

    // a registration file that is a folder or a link stops registration: doctor names it and the fix
    mkdirSync(join(state, 'client.crt'))
    symlinkSync(join(state, 'api-key'), join(state, 'operator.json'))
    const d = await doctor(join(dir, 'leaky.json'), '--offline')
    const files = d.report.checks.filter((x) => x.id === 'state.files')
    assert.deepEqual(files.map((x) => [x.status, x.code]), [['fail', 'NGROKD_ERR_STATE'], ['fail', 'NGROKD_ERR_STATE']])
    assert.match(files.map((x) => x.summary).join('\n'), /operator\.json is a symbolic link.*\n.*client\.crt is a directory/)
    assert.match(files[1]!.hint ?? '', /rm -r .*client\.crt/)
    assert.equal(d.code, 1)
  })

  test("a name-resolver driver's own checks are shown, with names.driver_options passed to them", async () => {
    writeFileSync(join(dir, 'names-driver.mjs'), `import { defineDriver } from '@ngrokd/core/driver'
export default defineDriver({ name: 'jsonnames', provides: ['name-resolver'], platforms: [process.platform], ngrokd: '^1.0.0',
  async create() { throw new Error('not in doctor') },
  async diagnose(_ctx, options) { return [{ id: 'jsonnames.file', status: 'fail', summary: 'names file ' + options.file + ' is not writable', hint: 'chmod u+w ' + options.file }] } })
`)
    const file = join(dir, 'names-driver.json')
    writeFileSync(file, JSON.stringify({ state_dir: join(dir, 'state'), control: { socket: join(dir, 'n.sock') }, names: { resolver: './names-driver.mjs', driver_options: { file: '/srv/names.json' } } }))
    const { code, report } = await doctor(file, '--offline')
    assert.equal(report.checks.find((c) => c.id === 'names.resolver')?.status, 'ok', JSON.stringify(report.checks))
    assert.deepEqual(report.checks.find((c) => c.id === 'jsonnames.file'), { id: 'jsonnames.file', status: 'fail', summary: 'names file /srv/names.json is not writable', hint: 'chmod u+w /srv/names.json' })
    assert.equal(code, 1)
  })

  test('a plugin list that cannot load fails with the code, naming the plugin and the entry; a dns plugin whose resolver is not selected is warned', async () => {
    const config = (file: string, extra: Record<string, unknown>) => {
      writeFileSync(join(dir, file), JSON.stringify({ state_dir: join(dir, 'state'), control: { socket: join(dir, 'p.sock') }, ...extra }))
      return join(dir, file)
    }
    // an optionsSchema Ajv cannot compile is the plugin's bug, said with its name and without a stack
    writeFileSync(join(dir, 'bad-schema.mjs'), `import { definePlugin } from '@ngrokd/core/plugin'\nexport default definePlugin({ name: 'badschema', version: '1.0.0', ngrokd: '^1.0.0', optionsSchema: { type: 'object', properties: { a: { type: 'strin' } } }, register() {} })\n`)
    const schema = await doctor(config('bad-schema.json', { plugins: ['./bad-schema.mjs'] }), '--offline')
    const invalid = schema.report.checks.find((c) => c.id === 'plugin.load')!
    assert.equal(invalid.code, 'NGROKD_ERR_PLUGIN_INVALID', JSON.stringify(invalid))
    assert.match(invalid.summary, /plugin "badschema" 1\.0\.0 declares an optionsSchema that is not a valid JSON Schema/)
    assert.doesNotMatch(schema.text, /at .*ajv/, 'no stack')

    // a suffix that is no DNS name: refused at load, not sent to resolved (which refuses it) at the first reconcile
    const suffix = await doctor(config('bad-suffix.json', { plugins: [{ name: 'dns', options: { suffixes: ['prod', 'corp..internal'] } }], names: { resolver: 'dns' } }), '--offline')
    const load = suffix.report.checks.find((c) => c.id === 'plugin.load')!
    assert.equal(load.code, 'NGROKD_ERR_PLUGIN_INVALID', JSON.stringify(load))
    assert.equal(load.summary, `plugins[0].options.suffixes[1] in ${join(dir, 'bad-suffix.json')}: "corp..internal" is not a DNS name: has an empty label`)
    assert.match(load.hint ?? '', /a DNS name is labels of a-z, 0-9 and "-" joined by single dots/)
    assert.equal(suffix.code, 1)

    // a listen address that is none (a name is not looked up, a port past 65535): refused at load, not at the responder's start
    const listen = await doctor(config('bad-listen.json', { plugins: [{ name: 'dns', options: { listen: ['127.0.0.1:5353', 'localhost:53'] } }], names: { resolver: 'dns' } }), '--offline')
    const bad = listen.report.checks.find((c) => c.id === 'plugin.load')!
    assert.equal(bad.code, 'NGROKD_ERR_PLUGIN_INVALID', JSON.stringify(bad))
    assert.equal(bad.summary, `plugins[0].options in ${join(dir, 'bad-listen.json')}: options.listen.1 is not an IP address with an optional port 0-65535 (got "localhost:53")`)
    assert.match(bad.hint ?? '', /write e\.g\. 10\.107\.0\.1, 127\.0\.0\.53:5353/)
    assert.equal(listen.code, 1)

    // an option as a bad key of the file is named: the file, the key as written, what is expected (never a bare
    // pattern), the option it is likely a typo of; metrics.prometheus_listen as itself
    const options = async (file: string, extra: Record<string, unknown>) => {
      const d = await doctor(config(file, extra), '--offline')
      const failed = d.report.checks.filter((c) => c.id === 'plugin.load')
      assert.deepEqual(failed.map((c) => [c.status, c.code]), [['fail', 'NGROKD_ERR_PLUGIN_INVALID']], JSON.stringify(d.report.checks))
      return failed[0]!.summary
    }
    const HOST_PORT = 'host:port, such as 127.0.0.1:9464 or [::1]:9464 (a port is needed)'
    assert.equal(await options('prom-listen.json', { plugins: [{ name: 'prometheus', options: { listen: 'localhost' } }] }), `plugins[0].options.listen in ${join(dir, 'prom-listen.json')}: "localhost" is not valid; expected ${HOST_PORT}`)
    assert.equal(await options('prom-lisen.json', { plugins: [{ name: 'prometheus', options: { lisen: '127.0.0.1:9464' } }] }), `plugins[0].options.lisen in ${join(dir, 'prom-lisen.json')}: unknown key; valid keys in plugins[0].options: listen (did you mean plugins[0].options.listen?)`)
    assert.equal(await options('prom-metrics.json', { metrics: { prometheus_listen: 'localhost' } }), `metrics.prometheus_listen in ${join(dir, 'prom-metrics.json')}: "localhost" is not valid as the prometheus plugin's listen; expected ${HOST_PORT}`)

    // plugins: [dns] alone: its resolver is never opened, so it serves no names
    const unused = await doctor(config('dns-unused.json', { plugins: ['dns'] }), '--offline')
    const warned = unused.report.checks.find((c) => c.id === 'plugin.dns.resolver')
    assert.equal(warned?.status, 'warn', JSON.stringify(unused.report.checks))
    assert.match(warned!.summary, /plugin dns offers the name resolver dns, which is not used: names\.resolver is hosts-file/)
    assert.match(warned!.hint ?? '', /set names\.resolver: dns/)
  })

  test('a configuration that loads with notices: each is a warning of its own check, not a deprecation', async () => {
    const file = join(dir, 'noticed.json')
    writeFileSync(file, JSON.stringify({ api: { url: 'http://api.lan:8080', allow_insecure_http: true }, server: { log_level: 'debug' }, state_dir: join(dir, 'state'), control: { socket: join(dir, 'n.sock') } }))
    const { stdout } = await run(process.execPath, [NGROKD_BIN, 'doctor', '--offline', '--json', '--config', file], { env: { ...E2eDaemon.childEnv(), NGROKD_SUBNET: '10.99.0.0/16' } }).catch((e: { stdout: string }) => e)
    const warned = (JSON.parse(stdout) as Report).checks.filter((c) => /INSECURE|NGROKD_SUBNET|server\.log_level/.test(c.summary)).map((c) => [c.id, c.status, c.summary.split(' ').slice(0, 3).join(' ')])
    assert.deepEqual(warned.sort(), [
      ['api.insecure-http', 'warn', 'INSECURE: api.allow_insecure_http is'],
      ['config.deprecated', 'warn', `${file}: deprecated key`],
      ['config.environment', 'warn', 'environment variable NGROKD_SUBNET'],
    ])
  })

  test('before the first registration with an API other than ngrok\'s, the ingress is not dialled at ngrok\'s default', async () => {
    const fresh = join(dir, 'fresh.json')
    writeFileSync(fresh, JSON.stringify({ api: { url: sim.apiUrl, key: sim.apiKey }, state_dir: join(dir, 'fresh-state'), net: { driver: 'loopback-alias' }, control: { socket: join(dir, 'z.sock') } }))
    const r = await doctor(fresh)
    const tls = r.report.checks.find((x) => x.id === 'ingress.tls')!
    assert.equal(tls.status, 'skip', JSON.stringify(tls))
    assert.match(tls.summary, /no binding ingress known yet: the API at .* names one when ngrokd registers/)
  })
})
