import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { ConfigInvalidError, type ConfigIssue } from './config-invalid-error.js'
import type { DaemonConfig } from './daemon-config.js'
import { defaultConfig, resolveConfig } from './resolve-config.js'

const FILE = '/srv/ngrokd/config.yml'

/** The issues resolveConfig throws for `content` (and `env`); fails the test if it does not throw. */
function issuesOf(content: unknown, env: NodeJS.ProcessEnv = {}): { error: ConfigInvalidError; issues: readonly ConfigIssue[] } {
  try {
    resolveConfig(content, { source: FILE, env, cwd: '/home/ops' })
  } catch (e) {
    assert.ok(isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID'), String(e))
    assert.ok(e instanceof ConfigInvalidError)
    return { error: e, issues: e.issues }
  }
  assert.fail('expected NGROKD_ERR_CONFIG_INVALID')
}

describe('resolveConfig: defaults', () => {
  it('fills every default', () => {
    const expected: DaemonConfig = {
      api: { url: 'https://api.ngrok.com', allowInsecureHttp: false, timeoutMs: 10_000 },
      ingress: { caMode: 'add', insecureSkipVerify: false, podIdentity: { annotations: {} }, sessionResumption: true, predial: 0 },
      registration: { region: 'global', deploymentName: 'ngrokd' },
      boundEndpoints: { pollIntervalMs: 10_000, selectors: ['true'] },
      net: { driver: 'auto', interfaceName: 'ngrokd0', subnet: '10.107.0.0/16', driverOptions: {}, force: false, network: { startPort: 20_000 } },
      names: { resolver: 'hosts-file', driverOptions: {}, hostsFile: '/etc/hosts', allow: [], deny: [] },
      stateDir: '/var/lib/ngrokd',
      control: { socket: '/run/ngrokd/ngrokd.sock' },
      log: { level: 'info' },
      cleanup: { removeInterfaceOnStop: true },
      forwarder: {
        workers: 'auto',
        maxConnections: 10_000,
        maxConnectionsPerEndpoint: 1_000,
        idleTimeoutMs: 3_600_000,
        firstByteTimeoutMs: 30_000,
        handshakeTimeoutMs: 10_000,
        connRequestTimeoutMs: 10_000,
        drainTimeoutMs: 5_000,
        maxYoungGenerationMib: 16,
        youngGcEveryMib: 8,
      },
      metrics: {},
      plugins: [],
      configDir: '/home/ops',
    }
    const loaded = resolveConfig(undefined, { cwd: '/home/ops', env: {} })
    assert.deepEqual(loaded, { config: expected, notices: [] })
    assert.deepEqual(defaultConfig('/home/ops'), expected)
  })

  it('gives each result its own arrays and objects', () => {
    const a = defaultConfig('/x')
    a.boundEndpoints.selectors.push('changed')
    a.net.driverOptions.changed = true
    const b = defaultConfig('/x')
    assert.deepEqual(b.boundEndpoints.selectors, ['true'])
    assert.deepEqual(b.net.driverOptions, {})
  })

  it('converts file values: durations to ms, canonical subnet, URL without trailing slash, empty key unset', () => {
    const { config } = resolveConfig(
      {
        $schema: './node_modules/@ngrokd/core/config.schema.json',
        api: { url: 'https://api.example.test/', key: '', timeout: 2.5 },
        bound_endpoints: { poll_interval: '1m30s', selectors: ['metadata.team == "a"'] },
        net: { subnet: ' 10.99.0.0/24 ', driver_options: { bridge: true } },
        ingress: { endpoint: '[::1]:8443' },
      },
      { source: FILE, env: {} },
    )
    assert.equal(config.api.url, 'https://api.example.test')
    assert.ok(!('key' in config.api))
    assert.equal(config.api.timeoutMs, 2500)
    assert.equal(config.boundEndpoints.pollIntervalMs, 90_000)
    assert.deepEqual(config.boundEndpoints.selectors, ['metadata.team == "a"'])
    assert.equal(config.net.subnet, '10.99.0.0/24')
    assert.deepEqual(config.net.driverOptions, { bridge: true })
    assert.equal(config.ingress.endpoint, '[::1]:8443')
    assert.equal(config.configDir, '/srv/ngrokd')
  })

  it('resolves relative paths against the file directory', () => {
    const { config } = resolveConfig(
      { ingress: { ca_file: 'certs/ca.pem' }, names: { hosts_file: '../hosts' }, state_dir: 'state', control: { socket: './ngrokd.sock' } },
      { source: FILE, cwd: '/elsewhere', env: {} },
    )
    assert.equal(config.ingress.caFile, '/srv/ngrokd/certs/ca.pem')
    assert.equal(config.names.hostsFile, '/srv/hosts')
    assert.equal(config.stateDir, '/srv/ngrokd/state')
    assert.equal(config.control.socket, '/srv/ngrokd/ngrokd.sock')
  })
})

describe('resolveConfig: invalid values', () => {
  it('names the unknown key, lists the valid ones and suggests the closest', () => {
    const { error, issues } = issuesOf({ net: { subnt: '10.1.0.0/16' } })
    assert.equal(issues.length, 1)
    assert.deepEqual(issues[0]!.key, 'net.subnt')
    assert.equal(issues[0]!.file, FILE)
    assert.match(error.message, new RegExp(`^invalid configuration in ${FILE}:`))
    assert.match(error.message, /net\.subnt: unknown key; valid keys in net: driver, interface_name, subnet, driver_options, force, network \(did you mean net\.subnet\?\)/)
  })

  it("a control.socket longer than a Unix socket's sun_path holds is refused, naming its length and the limit (Node would cut it short)", () => {
    const long = `/srv/${'d'.repeat(98)}/s.sock` // 110 bytes
    const { issues } = issuesOf({ control: { socket: long } })
    assert.deepEqual(issues.map((i) => i.key), ['control.socket'])
    assert.match(issues[0]!.message, /is 110 bytes long, and a Unix socket's path holds at most 107 here \(sun_path\); expected a shorter path, such as \/run\/ngrokd\/ngrokd\.sock$/)
    assert.doesNotThrow(() => resolveConfig({ control: { socket: `/srv/${'d'.repeat(95)}/s.sock` } }, { source: FILE, env: {} }), '107 bytes fit')
    assert.doesNotThrow(() => resolveConfig({ control: { socket: long } }, { source: FILE, env: {}, platformDefaults: { platform: 'win32', env: {} } }), 'on Windows it names a pipe')
  })

  it('salvage: hands the issues over and builds the config from the good keys, each bad one at its default', () => {
    const salvaged: Error[] = []
    const { config } = resolveConfig({ log: { level: 'loud' }, control: { socket: '/tmp/x.sock' } }, { source: FILE, env: {}, salvage: (e) => salvaged.push(e) })
    assert.equal(salvaged.length, 1)
    assert.ok(salvaged[0] instanceof ConfigInvalidError && salvaged[0].issues[0]!.key === 'log.level', salvaged[0]!.message)
    assert.equal(config.control.socket, '/tmp/x.sock')
    assert.equal(config.log.level, defaultConfig().log.level)
  })

  it('suggests keys at the top level and keys that live in another section', () => {
    const { issues } = issuesOf({ bound_endpoint: {}, net: { poll_interval: 5 }, loglevel: 'x' })
    const byKey = new Map(issues.map((i) => [i.key, i.message]))
    assert.match(byKey.get('bound_endpoint')!, /valid top-level keys: api, ingress, bound_endpoints, .*\(did you mean bound_endpoints\?\)/)
    assert.match(byKey.get('net.poll_interval')!, /did you mean bound_endpoints\.poll_interval\?/)
    assert.ok(byKey.has('loglevel'))
    assert.ok(!byKey.get('loglevel')!.includes('did you mean'))
  })

  it('says an unknown key of a plugin entry and what else is wrong with the list', () => {
    const { issues } = issuesOf({ plugins: [{ name: 'dns', x: 1 }, { options: {} }] })
    assert.deepEqual(issues.map((i) => i.key), ['plugins[0].x', 'plugins'])
    assert.match(issues[1]!.message, /is not valid; expected a list of plugin names/)
    assert.deepEqual(issuesOf({ plugins: [{ name: 'dns', optoins: {} }] }).issues.map((i) => i.key), ['plugins[0].optoins'], 'nothing else wrong: said once')
  })

  it('explains that dotted keys are not expanded', () => {
    const { issues } = issuesOf({ 'net.subnet': '10.1.0.0/16' })
    assert.match(issues[0]!.message, /dotted keys are not expanded: nest net → subnet/)
  })

  const cases: Array<[string, unknown, string, RegExp]> = [
    ['host bits set', { net: { subnet: '10.107.0.1/16' } }, 'net.subnet', /"10\.107\.0\.1\/16" has host bits set \(its network is 10\.107\.0\.0\/16\); expected an IPv4 subnet in CIDR form/],
    ['prefix too long', { net: { subnet: '10.107.0.0/31' } }, 'net.subnet', /"10\.107\.0\.0\/31" has a prefix longer than \/30.*; expected an IPv4 subnet/],
    ['not a subnet', { net: { subnet: 'ten/8' } }, 'net.subnet', /"ten\/8" is not an IPv4 subnet; expected/],
    ['bad duration', { api: { timeout: '10 seconds' } }, 'api.timeout', /"10 seconds" is not a duration; expected a duration such as 10s, 500ms/],
    ['duration too short', { bound_endpoints: { poll_interval: '500ms' } }, 'bound_endpoints.poll_interval', /"500ms" is shorter than 1s; expected .* at least 1s/],
    ['bad level', { log: { level: 'verbose' } }, 'log.level', /"verbose" is not one of trace, debug, info, warn, error, fatal/],
    ['bad bool', { ingress: { insecure_skip_verify: 'yes' } }, 'ingress.insecure_skip_verify', /"yes" is not valid; expected true or false/],
    ['workers out of range', { forwarder: { workers: 1000 } }, 'forwarder.workers', /1000 is not valid; expected a whole number from 0 to 256, or "auto"$/],
    ['port out of range', { net: { network: { start_port: 70000 } } }, 'net.network.start_port', /70000 is not valid; expected a whole number from 1 to 65535$/],
    ['limit below 1', { forwarder: { max_connections: 0 } }, 'forwarder.max_connections', /0 is not valid; expected a whole number of 1 or more$/],
    ['a plugin resolver without its plugin', { names: { resolver: 'dns' } }, 'names.resolver', /"dns" is the dns plugin's resolver, and plugins does not load it; expected plugins: \[dns\] beside it/],
    ['an unknown key of a plugin entry', { plugins: ['dns', { name: 'prometheus', option: { listen: 1 } }] }, 'plugins[1].option', /^unknown key; valid keys of an entry: name, options \(did you mean options\?\)$/],
    ['a plugin entry without its name', { plugins: [{ options: {} }] }, 'plugins', /is not valid; expected a list of plugin names/],
    ['bad ifname', { net: { interface_name: 'eth0:1' } }, 'net.interface_name', /"eth0:1" is not valid; expected a Linux interface name/],
    ['ifname too long', { net: { interface_name: 'ngrokd-interface0' } }, 'net.interface_name', /"ngrokd-interface0" is longer than 15 bytes/],
    ['ifname in bytes', { net: { interface_name: 'ééééééééé' } }, 'net.interface_name', /is longer than 15 bytes/],
    ['bad url', { api: { url: 'ftp://api.ngrok.com' } }, 'api.url', /"ftp:\/\/api\.ngrok\.com" uses ftp, not http or https/],
    ['bad endpoint port', { ingress: { endpoint: 'ingress.test:70000' } }, 'ingress.endpoint', /has a port outside 1-65535/],
    ['bad selectors', { bound_endpoints: { selectors: [] } }, 'bound_endpoints.selectors', /\[\] is not valid; expected a list of non-empty strings \(at least 1\)/],
    ['section not a mapping', { net: 'ngrokd0' }, 'net', /"ngrokd0" is not valid; expected a mapping with the keys driver, interface_name/],
  ]
  for (const [name, content, key, message] of cases) {
    it(`${name}: names the key, the value and what is expected`, () => {
      const { error, issues } = issuesOf(content)
      assert.equal(issues.length, 1, JSON.stringify(issues))
      assert.equal(issues[0]!.key, key)
      assert.match(issues[0]!.message, message)
      assert.ok(error.message.includes(`${key}: ${issues[0]!.message}`))
      assert.ok(error.message.includes(FILE))
      assert.ok(error.hint)
    })
  }

  it("takes a built-in plugin's resolver with the plugin listed by its short name or by its package name", () => {
    for (const plugins of [['dns'], ['@ngrokd/plugin-dns'], [{ name: '@ngrokd/plugin-dns', options: { ttl: 5 } }]]) {
      assert.equal(resolveConfig({ plugins, names: { resolver: 'dns' } }, { source: FILE, env: {} }).config.names.resolver, 'dns', JSON.stringify(plugins))
    }
    const { issues } = issuesOf({ plugins: ['@ngrokd/plugin-prometheus'], names: { resolver: 'dns' } })
    assert.match(issues.find((i) => i.key === 'names.resolver')!.message, /plugins does not load it/)
  })

  it('lists every problem at once', () => {
    const { error, issues } = issuesOf({ net: { subnet: '1.2.3.4/8', interface_name: '' }, log: { level: 'loud' }, api: { timeout: 'x' }, extra: 1 })
    assert.deepEqual(issues.map((i) => i.key).sort(), ['api.timeout', 'extra', 'log.level', 'net.interface_name', 'net.subnet'])
    assert.equal(error.message.split('\n').length, 6)
  })

  it('never prints the API key', () => {
    const { error } = issuesOf({ api: { key: 12345678901234 } })
    assert.ok(!error.message.includes('12345678901234'), error.message)
    assert.match(error.message, /api\.key: "…234" is not valid; expected a string/)
  })

  it('rejects content that is not a mapping', () => {
    const { issues } = issuesOf(['api', 'net'])
    assert.equal(issues[0]!.key, '(top level)')
    assert.match(issues[0]!.message, /expected a mapping of the sections api, ingress/)
  })

  it('never echoes a file that is no config (a key, a password file given as --config)', async () => {
    const { load: parse } = await import('js-yaml')
    const pem = '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49SECRETKEYBYTES\n-----END PRIVATE KEY-----\n'
    const shadow = 'root:$y$j9T$SECRETHASHxyz:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n'
    for (const text of [pem, shadow]) {
      const { issues } = issuesOf(parse(text))
      assert.equal(issues.length, 1, JSON.stringify(issues))
      assert.equal(issues[0]!.key, '(top level)')
      assert.match(issues[0]!.message, /not an ngrokd config.*its content is not shown/)
      assert.doesNotMatch(JSON.stringify(issues), /SECRET/)
    }
    // a config with a mistaken section is still said key by key
    assert.match(issuesOf({ nte: { subnet: '10.99.0.0/24' } }).issues[0]!.message, /did you mean net\?/)
  })
})

describe('resolveConfig: net.subnet outside special-purpose ranges', () => {
  const refused: Array<[string, RegExp]> = [
    ['224.0.0.0/24', /overlaps 224\.0\.0\.0\/4, multicast \(RFC 5771\)/],
    ['169.254.0.0/16', /overlaps 169\.254\.0\.0\/16, link-local/],
    ['0.0.0.0/16', /overlaps 0\.0\.0\.0\/8, "this network"/],
    ['255.255.255.0/24', /overlaps 240\.0\.0\.0\/4, reserved, with the limited broadcast 255\.255\.255\.255/],
    ['240.0.0.0/8', /overlaps 240\.0\.0\.0\/4, reserved/],
    ['192.0.2.0/24', /overlaps 192\.0\.2\.0\/24, documentation/],
    ['192.0.0.0/2', /overlaps 192\.0\.0\.0\/24, IETF protocol assignments .*; 192\.0\.2\.0\/24/],
  ]
  for (const [subnet, reason] of refused) {
    it(`refuses ${subnet}, naming the range`, () => {
      const { error, issues } = issuesOf({ net: { subnet } })
      assert.equal(issues.length, 1)
      assert.equal(issues[0]!.key, 'net.subnet')
      assert.match(issues[0]!.message, reason)
      assert.match(issues[0]!.message, /no endpoint address may come from there; expected an IPv4 subnet/)
      assert.equal(issues[0]!.file, FILE)
      assert.equal(error.code, 'NGROKD_ERR_CONFIG_INVALID')
    })
  }

  it('refuses loopback unless net.driver is loopback-alias, from a file and from the environment', () => {
    const { issues } = issuesOf({ net: { subnet: '127.107.0.0/16' } })
    assert.equal(issues.length, 1)
    assert.equal(issues[0]!.file, FILE)
    assert.match(issues[0]!.message, /"127\.107\.0\.0\/16" overlaps 127\.0\.0\.0\/8, loopback .* only net\.driver: loopback-alias serves from/)
    const fromEnv = issuesOf({}, { NGROKD_NET_SUBNET: '127.5.0.0/16', NGROKD_NET_DRIVER: 'linux-netlink' }).issues
    assert.equal(fromEnv[0]!.env, 'NGROKD_NET_SUBNET')
    const ok = resolveConfig({ net: { driver: 'loopback-alias', subnet: '127.107.0.0/16' } }, { source: FILE, env: {} })
    assert.equal(ok.config.net.subnet, '127.107.0.0/16')
    // its package name is the same driver; a third-party driver's capabilities.loopbackOnly is judged at the start
    for (const driver of ['@ngrokd/driver-loopback-alias', 'ngrokd-driver-sample', './my-driver.mjs']) {
      assert.equal(resolveConfig({ net: { driver, subnet: '127.107.0.0/16' } }, { source: FILE, env: {} }).config.net.subnet, '127.107.0.0/16', driver)
    }
    for (const driver of ['auto', 'linux-netlink', '@ngrokd/driver-darwin-utun']) assert.equal(issuesOf({ net: { driver, subnet: '127.107.0.0/16' } }).issues.length, 1, driver)
  })

  it('accepts the private ranges and ordinary unicast', () => {
    for (const subnet of ['10.107.0.0/16', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '8.8.8.0/24']) {
      assert.equal(resolveConfig({ net: { subnet } }, { source: FILE, env: {} }).config.net.subnet, subnet)
    }
  })
})

describe('resolveConfig: ingress.pod_identity', () => {
  it('refuses annotations that would not let a ConnRequest fit in one frame (its length is a uint16)', () => {
    const { issues } = issuesOf({ ingress: { pod_identity: { annotations: { 'k8s.ngrok.com/a': 'x'.repeat(40_000), 'k8s.ngrok.com/b': 'y'.repeat(30_000) } } } })
    assert.equal(issues.length, 1)
    assert.equal(issues[0]!.key, 'ingress.pod_identity.annotations')
    assert.equal(issues[0]!.file, FILE)
    assert.match(issues[0]!.message, /a ConnRequest with this pod identity takes up to \d+ bytes, over the 65535 one frame holds/)
    const ok = { 'k8s.ngrok.com/a': 'x'.repeat(64_000) } // with the longest host and port, still one frame
    assert.deepEqual(resolveConfig({ ingress: { pod_identity: { annotations: ok } } }, { source: FILE, env: {} }).config.ingress.podIdentity.annotations, ok)
  })
})

describe('resolveConfig: api.url over plain HTTP', () => {
  it('refuses http:// to a host that is not loopback, naming the opt-in', () => {
    for (const url of ['http://api.ngrok.com', 'http://10.0.0.5:8080/', 'http://[2001:db8::1]/']) {
      const { issues } = issuesOf({ api: { url } })
      assert.equal(issues.length, 1, url)
      assert.equal(issues[0]!.key, 'api.url')
      assert.match(issues[0]!.message, /is plain HTTP to a host that is not loopback: the API key would cross the network in clear text; expected an https URL \(set api\.allow_insecure_http: true/)
    }
    assert.equal(issuesOf({}, { NGROKD_API_URL: 'http://api.example.test' }).issues[0]!.env, 'NGROKD_API_URL')
  })

  it('accepts https, and http to loopback, without a notice', () => {
    for (const url of ['https://api.ngrok.com', 'http://127.0.0.1:4040', 'http://localhost:8080', 'http://[::1]:9000', 'http://127.9.9.9']) {
      const { config, notices } = resolveConfig({ api: { url } }, { source: FILE, env: {} })
      assert.equal(config.api.url, url.replace(/\/+$/, ''))
      assert.deepEqual(notices, [])
    }
  })

  it('accepts http to the network with api.allow_insecure_http, and says INSECURE loudly', () => {
    const { config, notices } = resolveConfig({ api: { url: 'http://api.lan:8080', allow_insecure_http: true } }, { source: FILE, env: {} })
    assert.equal(config.api.url, 'http://api.lan:8080')
    assert.equal(config.api.allowInsecureHttp, true)
    assert.deepEqual(notices.map((n) => n.check), ['api.insecure-http'], 'its own doctor check, no deprecation')
    assert.match(notices[0]!.message, /^INSECURE: api\.allow_insecure_http is set and api\.url http:\/\/api\.lan:8080 is plain HTTP: the ngrok API key .* unencrypted/)
  })
})

describe('resolveConfig: environment overrides', () => {
  const resolveEnv = (env: NodeJS.ProcessEnv, content?: unknown) => resolveConfig(content, { source: FILE, cwd: '/home/ops', env })

  it('reads NGROK_API_KEY, and NGROKD_API_KEY wins over it', () => {
    assert.equal(resolveEnv({ NGROK_API_KEY: 'key-from-ngrok-env' }).config.api.key, 'key-from-ngrok-env')
    assert.equal(resolveEnv({ NGROK_API_KEY: 'a', NGROKD_API_KEY: 'b' }).config.api.key, 'b')
  })

  it('overrides the file, which overrides the defaults', () => {
    const content = { log: { level: 'debug' }, net: { subnet: '10.1.0.0/16', interface_name: 'fromfile0' }, api: { key: 'file-key' } }
    const { config } = resolveEnv({ NGROKD_NET_SUBNET: '10.2.0.0/16', NGROKD_LOG_LEVEL: 'warn', NGROK_API_KEY: 'env-key' }, content)
    assert.equal(config.net.subnet, '10.2.0.0/16')
    assert.equal(config.log.level, 'warn')
    assert.equal(config.api.key, 'env-key')
    assert.equal(config.net.interfaceName, 'fromfile0')
    assert.equal(config.net.driver, 'auto')
  })

  it('finds keys whose names contain underscores and types values by the schema', () => {
    const { config } = resolveEnv({
      NGROKD_BOUND_ENDPOINTS_POLL_INTERVAL: '1m30s',
      NGROKD_INGRESS_INSECURE_SKIP_VERIFY: 'true',
      NGROKD_CLEANUP_REMOVE_INTERFACE_ON_STOP: '0',
      NGROKD_NET_DRIVER_OPTIONS: '{"bridge":true}',
      NGROKD_STATE_DIR: 'state',
      NGROKD_API_TIMEOUT: '30',
      NGROKD_CONTROL_GROUP: 'ngrokd',
      NGROKD_LOG_LEVEL: '',
    })
    assert.equal(config.boundEndpoints.pollIntervalMs, 90_000)
    assert.equal(config.ingress.insecureSkipVerify, true)
    assert.equal(config.cleanup.removeInterfaceOnStop, false)
    assert.deepEqual(config.net.driverOptions, { bridge: true })
    // Relative paths from the environment resolve against the working directory.
    assert.equal(config.stateDir, '/home/ops/state')
    assert.equal(config.api.timeoutMs, 30_000)
    assert.equal(config.control.group, 'ngrokd')
    assert.equal(config.log.level, 'info', 'an empty variable counts as unset')
  })

  it('reads a key that takes a number or a word (forwarder.workers) as either', () => {
    assert.equal(resolveEnv({ NGROKD_FORWARDER_WORKERS: '2' }).config.forwarder.workers, 2)
    assert.equal(resolveEnv({ NGROKD_FORWARDER_WORKERS: 'auto' }).config.forwarder.workers, 'auto')
    assert.equal(resolveEnv({ NGROKD_FORWARDER_IDLE_TIMEOUT: '90' }).config.forwarder.idleTimeoutMs, 90_000)
    assert.match(issuesOf({}, { NGROKD_FORWARDER_WORKERS: 'many' }).issues[0]!.message, /many/)
  })

  it('splits arrays on commas, or reads a JSON array', () => {
    assert.deepEqual(resolveEnv({ NGROKD_BOUND_ENDPOINTS_SELECTORS: 'a, b,,c' }).config.boundEndpoints.selectors, ['a', 'b', 'c'])
    assert.deepEqual(resolveEnv({ NGROKD_BOUND_ENDPOINTS_SELECTORS: '["x in [1, 2]"]' }).config.boundEndpoints.selectors, ['x in [1, 2]'])
  })

  it('names the variable when its value is bad', () => {
    const { error, issues } = issuesOf({}, { NGROKD_INGRESS_INSECURE_SKIP_VERIFY: 'maybe', NGROKD_NET_SUBNET: '10.0.0.1/8', NGROKD_NET_DRIVER_OPTIONS: '[1]' })
    const byEnv = new Map(issues.map((i) => [i.env, i]))
    assert.match(byEnv.get('NGROKD_INGRESS_INSECURE_SKIP_VERIFY')!.message, /"maybe" is not a boolean; expected true or false/)
    assert.equal(byEnv.get('NGROKD_NET_SUBNET')!.key, 'net.subnet')
    assert.match(byEnv.get('NGROKD_NET_SUBNET')!.message, /has host bits set/)
    assert.match(byEnv.get('NGROKD_NET_DRIVER_OPTIONS')!.message, /is not a JSON object/)
    assert.match(error.message, /^invalid configuration in the environment:/)
    assert.match(error.message, /environment variable NGROKD_NET_SUBNET \(net\.subnet\): "10\.0\.0\.1\/8" has host bits set/)
  })

  it('reports file and environment problems together', () => {
    const { error } = issuesOf({ log: { level: 'nope' } }, { NGROKD_NET_FORCE: 'perhaps' })
    assert.match(error.message, new RegExp(`^invalid configuration in ${FILE} and the environment:`))
    assert.match(error.message, /log\.level: "nope"/)
    assert.match(error.message, /environment variable NGROKD_NET_FORCE/)
  })

  it('refuses a misspelled key of a section, as a file does, and ignores unrelated NGROKD_ variables', () => {
    const { error } = issuesOf({}, { NGROKD_LOG_LEVLE: 'debug', NGROKD_NET_SUBNETT: '10.99.0.0/16', NGROKD_SOMETHING_ELSE: '1', HOME: '/root' })
    assert.match(error.message, /environment variable NGROKD_LOG_LEVLE \(log\): is not a key of log \(did you mean NGROKD_LOG_LEVEL\?\); expected one of NGROKD_LOG_LEVEL/)
    assert.match(error.message, /environment variable NGROKD_NET_SUBNETT \(net\): is not a key of net \(did you mean NGROKD_NET_SUBNET\?\)/)
    assert.doesNotMatch(error.message, /SOMETHING_ELSE/)
    const { notices } = resolveEnv({ NGROKD_SOMETHING_ELSE: '1' })
    assert.deepEqual(notices, [])
  })

  it('notices a key named without its section, as a file does', () => {
    const { notices, config } = resolveEnv({ NGROKD_SUBNET: '10.99.0.0/16', NGROKD_POLL_INTERVAL: '5s', NGROKD_HOSTS_FILE: '/tmp/h' })
    assert.ok(notices.every((n) => n.check === 'config.environment'), 'a doctor check of its own, no deprecation')
    assert.deepEqual(notices.map((n) => n.message).sort(), [
      'environment variable NGROKD_HOSTS_FILE is not a configuration key and is ignored (did you mean NGROKD_NAMES_HOSTS_FILE?)',
      'environment variable NGROKD_POLL_INTERVAL is not a configuration key and is ignored (did you mean NGROKD_BOUND_ENDPOINTS_POLL_INTERVAL?)',
      'environment variable NGROKD_SUBNET is not a configuration key and is ignored (did you mean NGROKD_NET_SUBNET?)',
    ])
    assert.equal(config.net.subnet, '10.107.0.0/16')
  })
})

describe('resolveConfig: the seed daemon file', () => {
  // The layout of the seed daemon's /etc/ngrokd/config.yml, every key set.
  const seed = {
    api: { url: 'https://api.ngrok.com', key: '' },
    ingressEndpoint: 'kubernetes-binding-ingress.ngrok.io:443',
    server: { log_level: 'debug', socket_path: '/var/run/ngrokd.sock', client_cert: '/etc/ngrokd/tls.crt', client_key: '/etc/ngrokd/tls.key' },
    bound_endpoints: { poll_interval: 30, selectors: ['true'] },
    net: { interface_name: 'ngrokd0', subnet: '10.107.0.0/16', listen_interface: 'virtual', start_port: 9080 },
  }

  it('maps renamed keys and keeps the unchanged ones', () => {
    const { config } = resolveConfig(seed, { source: FILE, env: {} })
    assert.equal(config.ingress.endpoint, 'kubernetes-binding-ingress.ngrok.io:443')
    assert.equal(config.control.socket, '/var/run/ngrokd.sock')
    assert.equal(config.log.level, 'debug')
    assert.equal(config.boundEndpoints.pollIntervalMs, 30_000)
    assert.deepEqual(config.boundEndpoints.selectors, ['true'])
    assert.equal(config.net.interfaceName, 'ngrokd0')
    assert.equal(config.api.url, 'https://api.ngrok.com')
    assert.ok(!('key' in config.api))
  })

  it('gives exactly one notice per old key', () => {
    const { notices } = resolveConfig(seed, { source: FILE, env: {} })
    assert.ok(notices.every((n) => n.check === 'config.deprecated'))
    assert.deepEqual(notices.map((n) => n.message), [
      `${FILE}: deprecated key ingressEndpoint → ingress.endpoint; rename it`,
      `${FILE}: deprecated key server.socket_path → control.socket; rename it`,
      `${FILE}: deprecated key server.log_level → log.level; rename it`,
      `${FILE}: deprecated key net.start_port → net.network.start_port; rename it`,
      `${FILE}: net.listen_interface "virtual" is the default (network mode off); remove it`,
      `${FILE}: server.client_cert is ignored: ngrokd makes its own key and certificate in state_dir and has the ngrok API sign them; remove it`,
      `${FILE}: server.client_key is ignored: ngrokd makes its own key and certificate in state_dir and has the ngrok API sign them; remove it`,
    ])
  })

  it('gives no notice for a current file', () => {
    assert.deepEqual(resolveConfig({ log: { level: 'debug' }, control: { socket: '/run/x.sock' } }, { env: {} }).notices, [])
  })

  it('names the old key when its value is bad, and the relative socket path resolves like a new one', () => {
    const { issues } = issuesOf({ server: { log_level: 'warning' } })
    assert.equal(issues[0]!.key, 'server.log_level')
    assert.match(issues[0]!.message, /"warning" is not one of trace, debug/)
    assert.equal(resolveConfig({ server: { socket_path: 'run/ngrokd.sock' } }, { source: FILE, env: {} }).config.control.socket, '/srv/ngrokd/run/ngrokd.sock')
  })

  it('refuses an old key set together with its new name, and unknown server keys', () => {
    const { issues } = issuesOf({ server: { log_level: 'debug', pid_file: '/run/x.pid' }, log: { level: 'info' } })
    const byKey = new Map(issues.map((i) => [i.key, i.message]))
    assert.match(byKey.get('server.log_level')!, /is set together with its new name log\.level; remove server\.log_level/)
    assert.match(byKey.get('server.pid_file')!, /unknown key; server is the seed daemon's section, its keys were socket_path, log_level, client_cert, client_key/)
  })

  it('lets the environment override a legacy key', () => {
    const { config } = resolveConfig(seed, { source: FILE, env: { NGROKD_LOG_LEVEL: 'error' } })
    assert.equal(config.log.level, 'error')
  })
})

describe('resolveConfig: what a refusal says is expected', () => {
  it('names the characters a pattern allows, string values of a mapping, and a NaN as what it is; a number in the environment is decimal', () => {
    const messageOf = (content: unknown, key: string, env: NodeJS.ProcessEnv = {}) => issuesOf(content, env).issues.find((i) => i.key === key)?.message ?? ''
    assert.match(messageOf({ registration: { region: 'EU' } }, 'registration.region'), /^"EU" .*expected a string of the characters \[a-z0-9-\]$/)
    assert.match(messageOf({ ingress: { pod_identity: { annotations: { team: 42 } } } }, 'ingress.pod_identity.annotations'), /expected a mapping of names to strings/)
    assert.match(messageOf({ forwarder: { idle_timeout: Number.NaN } }, 'forwarder.idle_timeout'), /^NaN /)
    for (const text of ['0x10', '1e3', '0b1', '']) {
      if (text === '') continue // an empty variable counts as unset
      assert.match(messageOf({}, 'forwarder.max_connections', { NGROKD_FORWARDER_MAX_CONNECTIONS: text }), /is not a decimal number/, text)
    }
  })
})
