// SIGHUP and `ngrokd reload`: the daemon reads its config again, applies log.level and
// bound_endpoints.poll_interval at once, names every other change as needing a restart, keeps serving —
// and a broken config file is reported, never applied, never fatal.
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import tls from 'node:tls'
import { netnsSkip } from '../helpers/netns.js'
import { netDriverCases } from '../helpers/net-drivers.js'
import { simulatedDaemon } from '../helpers/simulated-daemon.js'
import { waitUntil } from '../helpers/wait-until.js'
import { ngrokdCli } from '../helpers/ngrokd-cli.js'


describe('reload', { skip: netnsSkip }, () => {
  const ctx = simulatedDaemon({ name: 'reload', net: netDriverCases('reload')[0]!, endpoints: ['http://reload.e2e'] })

  test('SIGHUP applies the live keys, lists the rest as needing a restart, and the daemon keeps serving', async () => {
    const edited = { ...ctx.daemon.config, log: { level: 'debug' }, bound_endpoints: { poll_interval: '3s' }, net: { ...ctx.daemon.config.net, subnet: '127.108.0.0/16' } }
    writeFileSync(ctx.daemon.configFile, JSON.stringify(edited))
    ctx.daemon.process.child.kill('SIGHUP')
    await waitUntil(() => /configuration reloaded: applied bound_endpoints\.poll_interval, log\.level; needs a restart to take effect: net\.subnet/.test(ctx.daemon.log()), {
      what: 'the reload line in the log',
    })
    const status = await ctx.daemon.status()
    assert.equal(status.phase, 'running')
    assert.equal(status.pollIntervalMs, 3000)
    assert.equal(status.subnet, ctx.daemon.config.net.subnet, 'the subnet waits for a restart')
    assert.deepEqual(status.config, { file: ctx.daemon.configFile, restartPending: ['net.subnet'] }, 'status names the file and what waits for a restart')
    const text = await ngrokdCli(['status', '--config', ctx.daemon.configFile])
    assert.match(text.stdout, new RegExp(`^config: +${ctx.daemon.configFile.replace(/[.*+?^$\{\}()|[\]\\]/g, '\\$&')}; a restart would apply net\\.subnet$`, 'm'))
    assert.equal(status.services.serving, 1)
  })

  test('ngrokd reload does the same through the socket', async () => {
    const r = await ngrokdCli(['reload', '--json', '--config', ctx.daemon.configFile])
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(JSON.parse(r.stdout), { applied: [], restartNeeded: ['net.subnet'] })
  })

  test('after control.socket is edited, reload, status and list still reach the daemon (on the socket it started with)', async () => {
    const moved = { ...ctx.daemon.config, control: { socket: `${ctx.daemon.socketPath}.moved` } }
    writeFileSync(ctx.daemon.configFile, JSON.stringify(moved))
    try {
      const r = await ngrokdCli(['reload', '--json', '--config', ctx.daemon.configFile])
      assert.equal(r.code, 0, r.stderr)
      assert.ok((JSON.parse(r.stdout) as { restartNeeded: string[] }).restartNeeded.includes('control.socket'), r.stdout)
      const status = await ngrokdCli(['status', '--json', '--config', ctx.daemon.configFile])
      assert.equal(status.code, 0, status.stderr)
      assert.equal((JSON.parse(status.stdout) as { phase: string }).phase, 'running')
      assert.equal((await ngrokdCli(['list', '--config', ctx.daemon.configFile])).code, 0)
    } finally {
      writeFileSync(ctx.daemon.configFile, JSON.stringify(ctx.daemon.config))
    }
  })

  test("a plugins: list that would not load is the reload's error and is not taken; one that loads waits for a restart", async () => {
    const withPlugins = (plugins: unknown[]) => writeFileSync(ctx.daemon.configFile, JSON.stringify({ ...ctx.daemon.config, plugins }))
    try {
      withPlugins(['./nothere.mjs'])
      const missing = await ngrokdCli(['reload', '--config', ctx.daemon.configFile])
      assert.notEqual(missing.code, 0, missing.stdout)
      assert.match(missing.stderr, /plugins: would not load, so the daemon keeps the configuration it runs on: .*nothere\.mjs/)
      assert.match(missing.stderr, /NGROKD_ERR_PLUGIN_NOT_FOUND/)
      withPlugins([{ name: 'dns', options: { port: 5353 } }])
      const badOptions = await ngrokdCli(['reload', '--json', '--config', ctx.daemon.configFile])
      assert.notEqual(badOptions.code, 0, badOptions.stdout)
      // named as doctor and a start name it: the file, the key as written, the options there are
      const unknownPort = `plugins[0].options.port: unknown key; valid keys in plugins[0].options: listen, ttl, suffixes`
      assert.ok(badOptions.stderr.includes(`plugins: would not load, so the daemon keeps the configuration it runs on: invalid configuration in ${ctx.daemon.configFile}:\n  ${unknownPort}`), badOptions.stderr)
      assert.match(badOptions.stderr, /NGROKD_ERR_PLUGIN_INVALID/)
      const refusal = JSON.parse(badOptions.stdout) as { error: { code: string; message: string } }
      assert.equal(refusal.error.code, 'NGROKD_ERR_PLUGIN_INVALID', '--json says a refusal as JSON on stdout too')
      assert.ok(refusal.error.message.includes(unknownPort), refusal.error.message)
      withPlugins([{ name: 'dns', options: { listen: ['10.107.0.1:99999'] } }])
      const badListen = await ngrokdCli(['reload', '--config', ctx.daemon.configFile])
      assert.notEqual(badListen.code, 0, badListen.stdout)
      assert.ok(badListen.stderr.includes(`plugins[0].options: options.listen.0 is not an IP address with an optional port 0-65535 (got "10.107.0.1:99999")`), badListen.stderr)
      writeFileSync(ctx.daemon.configFile, JSON.stringify({ ...ctx.daemon.config, metrics: { prometheus_listen: 'localhost' } }))
      const badMetrics = await ngrokdCli(['reload', '--config', ctx.daemon.configFile])
      assert.notEqual(badMetrics.code, 0, badMetrics.stdout)
      assert.ok(badMetrics.stderr.includes(`invalid configuration in ${ctx.daemon.configFile}:\n  metrics.prometheus_listen: "localhost" is not valid as the prometheus plugin's listen; expected host:port`), badMetrics.stderr)
      ctx.daemon.process.child.kill('SIGHUP')
      await waitUntil(() => /SIGHUP: the configuration was not reloaded, the running one stays: plugins: would not load/.test(ctx.daemon.log()), { what: 'the refused reload in the log' })
      withPlugins(['dns'])
      const loads = await ngrokdCli(['reload', '--json', '--config', ctx.daemon.configFile])
      assert.equal(loads.code, 0, loads.stderr)
      assert.ok((JSON.parse(loads.stdout) as { restartNeeded: string[] }).restartNeeded.includes('plugins'), loads.stdout)
      assert.equal((await ctx.daemon.status()).phase, 'running')
    } finally {
      writeFileSync(ctx.daemon.configFile, JSON.stringify(ctx.daemon.config))
    }
  })

  test('a names.resolver, control.group or net.driver the next start would stop on is refused; another file than the daemon\'s is not read', async () => {
    const edit = (more: Record<string, unknown>) => writeFileSync(ctx.daemon.configFile, JSON.stringify({ ...ctx.daemon.config, ...more }))
    try {
      edit({ names: { resolver: 'bogus' } })
      const resolver = await ngrokdCli(['reload', '--config', ctx.daemon.configFile])
      assert.notEqual(resolver.code, 0, resolver.stdout)
      assert.match(resolver.stderr, /names\.resolver: the next start would stop on it, so the daemon keeps the configuration it runs on: .*"bogus"/)
      edit({ control: { ...ctx.daemon.config.control, group: 'nosuchgroup' } })
      const group = await ngrokdCli(['reload', '--config', ctx.daemon.configFile])
      assert.notEqual(group.code, 0, group.stdout)
      assert.match(group.stderr, /control\.group: the next start would stop on it.*control\.group "nosuchgroup" does not exist/)
      edit({ net: { ...ctx.daemon.config.net, driver: './nope.mjs', subnet: '10.99.0.0/16' } })
      const driver = await ngrokdCli(['reload', '--config', ctx.daemon.configFile])
      assert.notEqual(driver.code, 0, driver.stdout)
      assert.match(driver.stderr, /net\.driver: the next start would stop on it/)
      const doctor = await ngrokdCli(['doctor', '--offline', '--json', '--config', ctx.daemon.configFile])
      assert.equal(doctor.code, 1, doctor.stdout)
      assert.equal((JSON.parse(doctor.stdout) as { checks: Array<{ id: string; status: string }> }).checks.find((c) => c.id === 'driver.resolve')?.status, 'fail')
    } finally {
      writeFileSync(ctx.daemon.configFile, JSON.stringify(ctx.daemon.config))
    }
    const other = `${ctx.daemon.configFile}.other.json`
    writeFileSync(other, JSON.stringify({ ...ctx.daemon.config, log: { level: 'warn' } }))
    const elsewhere = await ngrokdCli(['reload', '--config', other])
    assert.notEqual(elsewhere.code, 0, elsewhere.stdout)
    assert.match(elsewhere.stderr, new RegExp(`this daemon runs on ${ctx.daemon.configFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, and a reload reads that again: .*other\.json is not read, nothing changed`))
    assert.equal((await ctx.daemon.status()).phase, 'running')
  })

  test('the certificates in ingress.ca_file, changed under the same name, wait for a restart; a file the next start would stop on is refused', async () => {
    const caFile = ctx.daemon.config.ingress.ca_file as string
    const before = readFileSync(caFile, 'utf8')
    const reload = async () => {
      const r = await ngrokdCli(['reload', '--json', '--config', ctx.daemon.configFile])
      return { ...r, result: r.code === 0 ? (JSON.parse(r.stdout) as { restartNeeded: string[] }) : undefined }
    }
    try {
      assert.deepEqual((await reload()).result?.restartNeeded, [], 'the same file is no change')
      writeFileSync(caFile, `${before}\n${tls.rootCertificates[0]}\n`)
      assert.deepEqual((await reload()).result?.restartNeeded, ['ingress.ca_file'])
      assert.deepEqual((await ctx.daemon.status()).config.restartPending, ['ingress.ca_file'])
      writeFileSync(caFile, 'no certificate here\n')
      const refused = await reload()
      assert.notEqual(refused.code, 0, refused.stdout)
      assert.match(refused.stderr, /ingress\.ca_file: the next start would stop on it, so the daemon keeps the configuration it runs on: .*holds no PEM certificate/)
    } finally {
      writeFileSync(caFile, before)
    }
    assert.deepEqual((await reload()).result?.restartNeeded, [], 'the file as the daemon read it: nothing waits')
    assert.equal((await ctx.daemon.status()).services.serving, 1)
  })

  test('a broken config file is reported and not applied; the daemon runs on', async () => {
    // an empty one too (a write under way): never a configuration of all the defaults
    writeFileSync(ctx.daemon.configFile, '')
    const refusals = () => ctx.daemon.log().match(/SIGHUP: the configuration was not reloaded, the running one stays/g)?.length ?? 0
    const before = refusals()
    ctx.daemon.process.child.kill('SIGHUP')
    await waitUntil(() => refusals() === before + 1, { what: 'the refused reload of an empty file in the log' })
    writeFileSync(ctx.daemon.configFile, '{ "log": ')
    ctx.daemon.process.child.kill('SIGHUP')
    await waitUntil(() => refusals() === before + 2, { what: 'the refused reload in the log' })
    const viaSocket = await ngrokdCli(['reload', '--config', ctx.daemon.configFile])
    assert.notEqual(viaSocket.code, 0)
    assert.match(viaSocket.stderr, /A daemon of this config, if one runs, was not asked to reload and keeps the configuration it runs on/)
    assert.equal((await ctx.daemon.status()).phase, 'running')
    writeFileSync(ctx.daemon.configFile, JSON.stringify(ctx.daemon.config))
  })

  test('status and list still reach the daemon after its config file went bad, and say the file is bad', async () => {
    writeFileSync(ctx.daemon.configFile, JSON.stringify({ ...ctx.daemon.config, log: { level: 'loud' } }))
    try {
      const status = await ngrokdCli(['status', '--json', '--config', ctx.daemon.configFile])
      assert.equal(status.code, 0, status.stderr)
      assert.equal((JSON.parse(status.stdout) as { phase: string }).phase, 'running')
      assert.match(status.stderr, /log\.level: "loud"[^]*runs on the configuration it read before/)
      const list = await ngrokdCli(['list', '--config', ctx.daemon.configFile])
      assert.equal(list.code, 0, list.stderr)
      assert.match(list.stdout, /reload\.e2e/)
      const doctor = await ngrokdCli(['doctor', '--offline', '--json', '--config', ctx.daemon.configFile])
      assert.equal(doctor.code, 1, 'the file is bad: doctor fails')
      const checks = (JSON.parse(doctor.stdout) as { checks: Array<{ id: string; status: string; summary: string }> }).checks
      assert.equal(checks.find((c) => c.id === 'config.load')?.status, 'fail')
      assert.match(checks.find((c) => c.id === 'daemon.running')?.summary ?? '', /is running .*it runs on the configuration it read before the file went bad/)
      // a file that cannot be parsed names nothing: the defaults' socket and state dir have no daemon (this one's block of
      // /etc/hosts is no reason to ask it: another config's daemon may hold that), and the file's error is said
      writeFileSync(ctx.daemon.configFile, '{ "log": ')
      const unparsable = await ngrokdCli(['status', '--config', ctx.daemon.configFile])
      assert.equal(unparsable.code, 1, unparsable.stdout)
      assert.match(unparsable.stderr, /cannot parse config file/)
      // where the defaults and the environment lead to a daemon, it is asked, and said to be the one there
      for (const command of ['status', 'list']) {
        const there = await ngrokdCli([command, '--json', '--config', ctx.daemon.configFile], { env: { NGROKD_CONTROL_SOCKET: ctx.daemon.socketPath } })
        assert.equal(there.code, 0, there.stderr)
        assert.match(there.stderr, new RegExp(`^ngrokd ${command}: warning: cannot parse config file [^]*\nthe file was not read: this is the daemon at ${ctx.daemon.socketPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, where the defaults and the environment lead, which need not be the one of this file`, 'm'))
      }
      // doctor says the same, and judges nothing of that daemon by what the file did not give (the defaults' state_dir)
      const doctorThere = await ngrokdCli(['doctor', '--offline', '--json', '--config', ctx.daemon.configFile], { env: { NGROKD_CONTROL_SOCKET: ctx.daemon.socketPath } })
      const checksThere = (JSON.parse(doctorThere.stdout) as { checks: Array<{ id: string; status: string; summary: string }> }).checks
      assert.match(checksThere.find((c) => c.id === 'daemon.running')?.summary ?? '', /is running .*; the file was not read: this is the daemon at .*, where the defaults and the environment lead, which need not be the one of this file$/)
      assert.deepEqual(checksThere.filter((c) => c.id === 'daemon.state-lock' || c.id === 'forwarder.open-files'), [])
      // nor is a config that shares only that block with it (its own state dir, socket, interface)
      const other = `${ctx.daemon.configFile}.other.json`
      writeFileSync(other, JSON.stringify({ ...ctx.daemon.config, state_dir: `${ctx.daemon.stateDir}-other`, control: { socket: `${ctx.daemon.socketPath}.other` }, net: { ...ctx.daemon.config.net, interface_name: 'rlother0' } }))
      const elsewhere = await ngrokdCli(['status', '--config', other])
      assert.equal(elsewhere.code, 1, elsewhere.stdout)
      assert.match(elsewhere.stderr, /ngrokd is not running/)
    } finally {
      writeFileSync(ctx.daemon.configFile, JSON.stringify(ctx.daemon.config))
    }
  })
})
