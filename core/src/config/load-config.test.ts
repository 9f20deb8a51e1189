import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { chmod, chown, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { execFileSync } from 'node:child_process'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { DEFAULT_CONFIG_PATH, loadConfig, sameDaemonFlags } from './load-config.js'
import { localUser, localUserSkip } from '../util/local-user.test-helper.js'

let root: string
/** A fresh project directory: its package.json stops cosmiconfig's upward search at it. */
let n = 0
async function project(files: Record<string, string> = {}): Promise<string> {
  const dir = join(root, `p${n++}`)
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'package.json'), '{"name":"some-app","private":true}')
  for (const [name, text] of Object.entries(files)) {
    await mkdir(join(dir, name, '..'), { recursive: true })
    await writeFile(join(dir, name), text)
  }
  return dir
}
/** Options that keep the machine's /etc/ngrokd/config.yml and environment out of the test (and search as a user would). */
const isolated = (cwd: string) => ({ cwd, env: {}, defaultPath: join(cwd, 'no-such-default.yml'), asRoot: false })

/** A project whose package.json and cosmiconfig meta config (`.config/config.yaml`) do not parse, and a good etc/ngrokd.yml. */
async function brokenWorkingDirectory(): Promise<string> {
  const dir = await project({ 'etc/ngrokd.yml': 'log:\n  level: warn\n', '.config/config.yaml': 'cosmiconfig: [unclosed\n' })
  await writeFile(join(dir, 'package.json'), '{ broken')
  return dir
}

/** cosmiconfig reads its meta config from the process's working directory, not from the `cwd` option. */
async function inWorkingDirectory(dir: string, body: () => Promise<void>): Promise<void> {
  const before = process.cwd()
  process.chdir(dir)
  try {
    await body()
  } finally {
    process.chdir(before)
  }
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'ngrokd-config-'))
})
after(async () => {
  await rm(root, { recursive: true, force: true })
})

const YAML = `# a current file
api:
  key: ak_test_1234567890
  timeout: 30s
bound_endpoints:
  poll_interval: 1m
  selectors: ["true"]
net:
  subnet: 10.42.0.0/16
  interface_name: ngrk1
log:
  level: debug
`

describe('loadConfig', () => {
  it('uses only defaults when no file exists', async () => {
    const dir = await project()
    const loaded = await loadConfig(isolated(dir))
    assert.equal(loaded.source, undefined)
    assert.deepEqual(loaded.notices, [])
    assert.equal(loaded.config.configDir, dir)
    assert.equal(loaded.config.net.subnet, '10.107.0.0/16')
    assert.equal(loaded.config.boundEndpoints.pollIntervalMs, 10_000)
  })

  it('reads YAML named with --config, relative to cwd', async () => {
    const dir = await project({ 'conf/daemon.yml': YAML })
    const { config, source } = await loadConfig({ ...isolated(dir), configPath: 'conf/daemon.yml' })
    assert.equal(source, join(dir, 'conf/daemon.yml'))
    assert.equal(config.configDir, join(dir, 'conf'))
    assert.equal(config.api.key, 'ak_test_1234567890')
    assert.equal(config.api.timeoutMs, 30_000)
    assert.equal(config.boundEndpoints.pollIntervalMs, 60_000)
    assert.equal(config.net.subnet, '10.42.0.0/16')
    assert.equal(config.net.interfaceName, 'ngrk1')
    assert.equal(config.log.level, 'debug')
  })

  it('reads JSON named with --config', async () => {
    const json = JSON.stringify({ net: { subnet: '10.43.0.0/24', force: true }, bound_endpoints: { poll_interval: 15 } })
    const dir = await project({ 'ngrokd-prod.json': json })
    const { config } = await loadConfig({ ...isolated(dir), configPath: join(dir, 'ngrokd-prod.json') })
    assert.equal(config.net.subnet, '10.43.0.0/24')
    assert.equal(config.net.force, true)
    assert.equal(config.boundEndpoints.pollIntervalMs, 15_000)
  })

  it('reads a file with any other extension as YAML', async () => {
    const dir = await project({ 'ngrokd.conf': 'log:\n  level: warn\n' })
    assert.equal((await loadConfig({ ...isolated(dir), configPath: 'ngrokd.conf' })).config.log.level, 'warn')
  })

  it('fails with NGROKD_ERR_CONFIG_NOT_FOUND naming a missing --config file', async () => {
    const dir = await project({ 'ngrokd.yml': YAML })
    const missing = join(dir, 'nope.yml')
    await assert.rejects(loadConfig({ ...isolated(dir), configPath: 'nope.yml' }), (e: unknown) => {
      assert.ok(isNgrokdError(e, 'NGROKD_ERR_CONFIG_NOT_FOUND'), String(e))
      assert.ok(e.message.includes(missing), e.message)
      assert.ok(e.hint)
      return true
    })
  })

  it('finds ngrokd.yaml by searching up from cwd to the project root', async () => {
    const dir = await project({ 'ngrokd.yaml': 'net:\n  subnet: 10.50.0.0/16\n' })
    const deep = join(dir, 'a', 'b')
    await mkdir(deep, { recursive: true })
    const { config, source } = await loadConfig(isolated(deep))
    assert.equal(source, join(dir, 'ngrokd.yaml'))
    assert.equal(config.net.subnet, '10.50.0.0/16')
    assert.equal(config.configDir, dir)
  })

  it('finds .ngrokdrc.json and .config/ngrokdrc', async () => {
    const a = await project({ '.ngrokdrc.json': '{"log":{"level":"error"}}' })
    assert.equal((await loadConfig(isolated(a))).config.log.level, 'error')
    const b = await project({ '.config/ngrokdrc': 'log:\n  level: trace\n' })
    const loaded = await loadConfig(isolated(b))
    assert.equal(loaded.config.log.level, 'trace')
    assert.equal(loaded.source, join(b, '.config/ngrokdrc'))
  })

  it('finds the ngrokd key of package.json', async () => {
    const dir = await project()
    await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'app', ngrokd: { net: { interface_name: 'pkg0' } } }))
    const { config, source } = await loadConfig(isolated(dir))
    assert.equal(config.net.interfaceName, 'pkg0')
    assert.equal(source, join(dir, 'package.json'))
  })

  it('does not run a JavaScript config file', async () => {
    const dir = await project({ 'evil.config.js': 'globalThis.ran = true; export default {}' })
    await assert.rejects(loadConfig({ ...isolated(dir), configPath: 'evil.config.js' }), (e: unknown) => {
      assert.ok(isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID'))
      assert.match(e.message, /is a program; ngrokd reads YAML or JSON only/)
      return true
    })
    assert.equal((globalThis as { ran?: boolean }).ran, undefined)
  })

  it('falls back to the default path only when the search finds nothing', async () => {
    const dir = await project()
    const fallback = join(root, 'etc-config.yml')
    await writeFile(fallback, 'log:\n  level: fatal\n')
    const viaDefault = await loadConfig({ cwd: dir, env: {}, defaultPath: fallback, asRoot: false })
    assert.equal(viaDefault.source, fallback)
    assert.equal(viaDefault.config.log.level, 'fatal')
    assert.equal(viaDefault.config.configDir, root)

    const withLocal = await project({ 'ngrokd.yml': 'log:\n  level: warn\n' })
    const local = await loadConfig({ cwd: withLocal, env: {}, defaultPath: fallback, asRoot: false })
    assert.equal(local.source, join(withLocal, 'ngrokd.yml'))
    assert.equal(local.config.log.level, 'warn')
  })

  it('resolves relative paths against the file, not cwd', async () => {
    const yaml = 'ingress:\n  ca_file: ca.pem\nnames:\n  hosts_file: ./hosts\nstate_dir: state\ncontrol:\n  socket: run/ngrokd.sock\n'
    const dir = await project({ 'etc/ngrokd.yml': yaml })
    const elsewhere = await project()
    const { config } = await loadConfig({ ...isolated(elsewhere), configPath: join(dir, 'etc/ngrokd.yml') })
    assert.equal(config.ingress.caFile, join(dir, 'etc/ca.pem'))
    assert.equal(config.names.hostsFile, join(dir, 'etc/hosts'))
    assert.equal(config.stateDir, join(dir, 'etc/state'))
    assert.equal(config.control.socket, join(dir, 'etc/run/ngrokd.sock'))
  })

  it('applies the environment over the file', async () => {
    const dir = await project({ 'ngrokd.yml': YAML })
    const { config } = await loadConfig({ ...isolated(dir), env: { NGROKD_NET_SUBNET: '10.60.0.0/16', NGROK_API_KEY: 'from-env-key' } })
    assert.equal(config.net.subnet, '10.60.0.0/16')
    assert.equal(config.api.key, 'from-env-key')
    assert.equal(config.log.level, 'debug')
  })

  it('names the file when validation fails', async () => {
    const dir = await project({ 'ngrokd.yml': 'net:\n  subnet: 10.107.0.1/16\n' })
    await assert.rejects(loadConfig(isolated(dir)), (e: unknown) => {
      assert.ok(isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID'))
      assert.ok(e.message.startsWith(`invalid configuration in ${join(dir, 'ngrokd.yml')}:`), e.message)
      assert.match(e.message, /net\.subnet: "10\.107\.0\.1\/16" has host bits set/)
      return true
    })
  })

  it('reports a YAML syntax error with the file, the line and the column', async () => {
    const dir = await project({ 'bad.yml': 'net:\n  subnet: [unclosed\n' })
    await assert.rejects(loadConfig({ ...isolated(dir), configPath: 'bad.yml' }), (e: unknown) => {
      assert.ok(isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID'))
      assert.match(e.message, new RegExp(`^cannot parse config file ${join(dir, 'bad.yml')}: [^:]+ at line 3, column 1$`)) // the reason's wording is js-yaml's
      return true
    })
  })

  it('reports a JSON syntax error with the file, the line and the column', async () => {
    const dir = await project({ 'bad.json': '{\n  "log": { "level": "warn", }\n}\n' })
    await assert.rejects(loadConfig({ ...isolated(dir), configPath: 'bad.json' }), (e: unknown) => {
      assert.ok(isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID'))
      assert.match(e.message, new RegExp(`^cannot parse config file ${join(dir, 'bad.json')}: [^:]+ at line 2, column 29$`)) // the reason's wording is V8's
      return true
    })
  })

  it('never quotes the text of a JSON file it cannot parse (a token file given as --config)', async () => {
    const dir = await project({ 'token.json': 'ghp_SECRETTOKEN\n', 'creds.json': '{ "password": hunter2SECRET }\n' })
    for (const file of ['token.json', 'creds.json']) {
      await assert.rejects(loadConfig({ ...isolated(dir), configPath: file }), (e: unknown) => {
        assert.ok(isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID'))
        assert.match(e.message, new RegExp(`^cannot parse config file ${join(dir, file)}: `))
        assert.doesNotMatch(`${e.message} ${e.hint ?? ''} ${String((e as { cause?: unknown }).cause)}`, /SECRET|ghp_|hunter/)
        // V8 gives no position for these: the hint does not point at one, it says what such a token usually is
        assert.match(e.message, /Unexpected token \(the file's text is not shown\)$/)
        assert.match(e.hint ?? '', /^fix the JSON syntax: a value that is not a quoted string, a number, true, false or null/)
        return true
      })
    }
  })

  it('reports where a JSON file that ends too soon ends', async () => {
    const dir = await project({ 'short.json': '{ "log": {\n' })
    await assert.rejects(loadConfig({ ...isolated(dir), configPath: 'short.json' }), (e: unknown) => {
      assert.ok(isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID'))
      assert.match(e.message, /short\.json: [^:]+ at line 2, column 1$/) // the reason's wording is V8's
      assert.doesNotMatch(e.message, /position/)
      return true
    })
  })

  it('reads a JSON file that starts with a byte-order mark', async () => {
    const dir = await project({ 'bom.json': '\uFEFF{ "log": { "level": "warn" } }' })
    const { config } = await loadConfig({ ...isolated(dir), configPath: 'bom.json' })
    assert.equal(config.log.level, 'warn')
  })

  it('treats an empty YAML file as defaults (and says it is empty); an empty .json file is not JSON', async () => {
    const dir = await project({ 'empty.yml': '', 'empty.json': '\n' })
    const loaded = await loadConfig({ ...isolated(dir), configPath: 'empty.yml' })
    assert.equal(loaded.source, join(dir, 'empty.yml'))
    assert.equal(loaded.config.log.level, 'info')
    assert.equal(loaded.empty, true)
    await assert.rejects(loadConfig({ ...isolated(dir), configPath: 'empty.json' }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID') && /empty\.json is empty, which is not JSON/.test((e as Error).message))
  })

  it('loads the seed daemon file with notices', async () => {
    const seed = [
      'api:',
      '  url: https://api.ngrok.com',
      '  key: ""',
      'ingressEndpoint: "kubernetes-binding-ingress.ngrok.io:443"',
      'server:',
      '  log_level: info',
      '  socket_path: /var/run/ngrokd.sock',
      '  client_cert: /etc/ngrokd/tls.crt',
      'bound_endpoints:',
      '  poll_interval: 30',
      '  selectors: ["true"]',
      'net:',
      '  interface_name: ngrokd0',
      '  subnet: 10.107.0.0/16',
      '',
    ].join('\n')
    const dir = await project({ 'config.yml': seed })
    const { config, notices } = await loadConfig({ ...isolated(dir), configPath: 'config.yml' })
    assert.equal(config.control.socket, '/var/run/ngrokd.sock')
    assert.equal(config.ingress.endpoint, 'kubernetes-binding-ingress.ngrok.io:443')
    assert.equal(config.boundEndpoints.pollIntervalMs, 30_000)
    assert.equal(notices.length, 4)
    assert.ok(notices.every((n) => n.message.startsWith(`${join(dir, 'config.yml')}: `)))
  })

  it("reads a named file without the working directory's files: a package.json there that does not parse changes nothing", async () => {
    const dir = await brokenWorkingDirectory()
    await inWorkingDirectory(dir, async () => {
      assert.equal((await loadConfig({ ...isolated(dir), configPath: 'etc/ngrokd.yml' })).config.log.level, 'warn')
      // a search of that directory reads its package.json: the search ends there without a file, said as a notice naming it
      const searched = await loadConfig(isolated(dir))
      assert.equal(searched.source, undefined)
      assert.deepEqual(searched.notices.map((n) => n.check), ['config.search'])
      assert.match(searched.notices[0]!.message, new RegExp(`^${join(dir, 'package.json')} does not parse \\(.+\\): the search for a config file ended there, without one .*--config$`))
      // the parser's reason, not a line of its code frame (`> 1 | { broken`)
      const reason = /does not parse \((.+?)\): /.exec(searched.notices[0]!.message)![1]!
      assert.doesNotMatch(reason, /\||broken|JSON Error/, reason)
    })
  })

  it('takes the file the search would have taken before a package.json that does not parse, and says nothing', async () => {
    const dir = await project({ 'ngrokd.yaml': 'log:\n  level: debug\n' })
    await writeFile(join(dir, 'package.json'), '{\n  "name": "x",\n}\n')
    await inWorkingDirectory(dir, async () => {
      const loaded = await loadConfig(isolated(dir))
      assert.equal(loaded.source, join(dir, 'ngrokd.yaml'))
      assert.equal(loaded.config.log.level, 'debug')
      assert.deepEqual(loaded.notices, [])
    })
  })

  it("passes over a project's package.json that does not parse at the project's root, said as a notice", async () => {
    const dir = await project({ 'sub/x': '' })
    await writeFile(join(dir, 'package.json'), '{ "name": "app", }')
    const fallback = join(dir, 'etc.yml')
    await writeFile(fallback, 'log:\n  level: error\n')
    const loaded = await loadConfig({ ...isolated(join(dir, 'sub')), defaultPath: fallback })
    assert.equal(loaded.source, fallback)
    assert.equal(loaded.config.log.level, 'error')
    assert.equal(loaded.notices.length, 1)
    assert.equal(loaded.notices[0]!.check, 'config.search')
    assert.ok(loaded.notices[0]!.message.startsWith(`${join(dir, 'package.json')} does not parse (`), loaded.notices[0]!.message)
  })

  it("names a bad key under package.json's ngrokd key as ngrokd.<key>, its suggestion too", async () => {
    const dir = await project()
    await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'app', ngrokd: { net: { subnett: '10.1.0.0/16' } } }))
    await assert.rejects(loadConfig(isolated(dir)), (e: unknown) => {
      assert.ok(isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID'))
      assert.match(e.message, /^invalid configuration in .*package\.json:\n  ngrokd\.net\.subnett: unknown key; valid keys in ngrokd\.net: /)
      assert.match(e.message, /did you mean ngrokd\.net\.subnet\?/)
      return true
    })
  })

  it('refuses an empty .json file the search finds, as --config does; passes over an empty YAML file', async () => {
    const dir = await project({ 'ngrokd.json': '' })
    const named = await loadConfig({ ...isolated(dir), configPath: 'ngrokd.json' }).then(() => undefined, (e: Error) => e.message)
    assert.equal(named, `config file ${join(dir, 'ngrokd.json')} is empty, which is not JSON`)
    await assert.rejects(loadConfig(isolated(dir)), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID') && e.message === named)
    // an empty ngrokd.yaml before it is passed over (no settings either way); a later one with settings is taken
    const yaml = await project({ 'ngrokd.yaml': '  \n', '.ngrokdrc.yml': 'log:\n  level: debug\n' })
    const loaded = await loadConfig(isolated(yaml))
    assert.equal(loaded.source, join(yaml, '.ngrokdrc.yml'))
    // a file with settings before an empty .json file wins, and the empty one is not judged
    const first = await project({ 'ngrokd.yaml': 'log:\n  level: debug\n', '.ngrokdrc.json': '' })
    assert.equal((await loadConfig(isolated(first))).source, join(first, 'ngrokd.yaml'))
  })

  it('says so when --config names a directory', async () => {
    const dir = await project()
    await assert.rejects(loadConfig({ ...isolated(dir), configPath: '.' }), (e: unknown) => {
      assert.ok(isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID'))
      assert.equal(e.message, `config file ${dir} is a directory`)
      return true
    })
    // as root too, for a folder others may write (/tmp): a folder, not an untrusted file
    if (process.getuid?.() === 0) {
      await assert.rejects(loadConfig({ ...isolated(dir), configPath: tmpdir(), asRoot: true }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID') && /is a directory$/.test(e.message))
    }
  })
})

describe('loadConfig as root: nothing another user could have written', { skip: localUserSkip() }, () => {
  it("reads neither the working directory's package.json nor cosmiconfig's meta config there (.config/config.yaml)", async () => {
    const dir = await brokenWorkingDirectory()
    await inWorkingDirectory(dir, async () => {
      assert.equal((await loadConfig({ cwd: dir, env: {}, configPath: 'etc/ngrokd.yml', asRoot: true })).config.log.level, 'warn')
      assert.equal((await loadConfig({ cwd: dir, env: {}, defaultPath: join(dir, 'etc/ngrokd.yml'), asRoot: true })).source, join(dir, 'etc/ngrokd.yml'))
    })
  })

  it('never searches the current directory: a planted ngrokd.yaml there is not read, /etc/ngrokd/config.yml is', async () => {
    const eve = localUser()!
    const dir = await project({ 'ngrokd.yaml': 'net:\n  driver: ./evil.mjs\n' })
    await chown(join(dir, 'ngrokd.yaml'), eve.uid, eve.gid)
    const none = await loadConfig({ cwd: dir, env: {}, defaultPath: join(dir, 'no-such-default.yml'), asRoot: true })
    assert.equal(none.source, undefined)
    assert.equal(none.config.net.driver, 'auto')
    const etc = join(root, 'etc-ngrokd.yml')
    await writeFile(etc, 'log:\n  level: warn\n', { mode: 0o644 })
    const fromEtc = await loadConfig({ cwd: dir, env: {}, defaultPath: etc, asRoot: true })
    assert.equal(fromEtc.source, etc)
  })

  it('refuses --config and the default file when another user owns them or may write them', async () => {
    const eve = localUser()!
    const dir = await project({ 'planted.yml': 'net:\n  driver: ./evil.mjs\n', 'shared.yml': 'log:\n  level: warn\n' })
    await chown(join(dir, 'planted.yml'), eve.uid, eve.gid)
    const refused = (path: string, pattern: RegExp) => (e: unknown) => {
      assert.ok(isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED'), String(e))
      assert.match(e.message, pattern)
      return true
    }
    await assert.rejects(loadConfig({ cwd: dir, env: {}, configPath: 'planted.yml', asRoot: true }), refused('planted.yml', new RegExp(`refusing config file ${join(dir, 'planted.yml')}: .* is owned by ${eve.name}`)))
    await chmod(join(dir, 'shared.yml'), 0o666)
    await assert.rejects(loadConfig({ cwd: dir, env: {}, defaultPath: join(dir, 'shared.yml'), asRoot: true }), refused('shared.yml', /writable by its group and everyone \(owner root \(uid 0\), mode 0666\)/))
    // the same files are read by their own user, who searches the current directory too
    assert.equal((await loadConfig({ cwd: dir, env: {}, configPath: 'shared.yml', asRoot: false })).config.log.level, 'warn')
  })

  it("refuses an ingress.ca_file (or a file in a ca directory) another user could have written: it decides who may answer for ngrok", async () => {
    const eve = localUser()!
    const dir = await project({ 'ca.pem': 'x', 'cas/a.pem': 'a', 'cas/b.pem': 'b' })
    await chown(join(dir, 'ca.pem'), eve.uid, eve.gid)
    await writeFile(join(dir, 'file.yml'), 'ingress:\n  ca_file: ca.pem\n', { mode: 0o644 })
    await assert.rejects(loadConfig({ cwd: dir, env: {}, configPath: 'file.yml', asRoot: true }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED') && e.message.includes(`refusing ingress.ca_file ${join(dir, 'ca.pem')}`))
    await writeFile(join(dir, 'dir.yml'), 'ingress:\n  ca_file: cas\n', { mode: 0o644 })
    assert.equal((await loadConfig({ cwd: dir, env: {}, configPath: 'dir.yml', asRoot: true })).config.ingress.caFile, join(dir, 'cas'))
    await chmod(join(dir, 'cas', 'b.pem'), 0o666)
    await assert.rejects(loadConfig({ cwd: dir, env: {}, configPath: 'dir.yml', asRoot: true }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED') && e.message.includes('b.pem'))
    // a user's own config and CA file are theirs to use
    assert.equal((await loadConfig({ cwd: dir, env: {}, configPath: 'file.yml', asRoot: false })).config.ingress.caFile, join(dir, 'ca.pem'))
  })

  it('refuses an ingress.ca_file that is not there yet where another user could create it (their folder, a link to nothing); one missing from root\'s folder is left to the trust loader', async () => {
    const eve = localUser()!
    const dir = await project({ 'eve/keep': '' })
    await chown(join(dir, 'eve'), eve.uid, eve.gid)
    const refusedWith = (pattern: RegExp) => (e: unknown) => {
      assert.ok(isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED'), String(e))
      assert.match(e.message, pattern)
      return true
    }
    await writeFile(join(dir, 'missing-in-eve.yml'), 'ingress:\n  ca_file: eve/sub/ca.pem\n', { mode: 0o644 })
    await assert.rejects(loadConfig({ cwd: dir, env: {}, configPath: 'missing-in-eve.yml', asRoot: true }), refusedWith(new RegExp(`refusing ingress.ca_file's directory \\(${join(dir, 'eve/sub/ca.pem')} is not there yet\\) ${join(dir, 'eve')}: .* is owned by ${eve.name}`)))
    await symlink(join(dir, 'eve', 'ca.pem'), join(dir, 'link.pem'))
    await writeFile(join(dir, 'dangling.yml'), 'ingress:\n  ca_file: link.pem\n', { mode: 0o644 })
    await assert.rejects(loadConfig({ cwd: dir, env: {}, configPath: 'dangling.yml', asRoot: true }), refusedWith(/a symbolic link to nothing/))
    // a folder on the way that is a link to nothing: its target another user might make
    await symlink(join(dir, 'eve', 'cadir'), join(dir, 'ca.d'))
    await writeFile(join(dir, 'dangling-dir.yml'), 'ingress:\n  ca_file: ca.d/ca.pem\n', { mode: 0o644 })
    await assert.rejects(loadConfig({ cwd: dir, env: {}, configPath: 'dangling-dir.yml', asRoot: true }), refusedWith(new RegExp(`${join(dir, 'ca.d')} is a symbolic link to nothing`)))
    await writeFile(join(dir, 'missing-in-root.yml'), 'ingress:\n  ca_file: ca.pem\n', { mode: 0o644 })
    assert.equal((await loadConfig({ cwd: dir, env: {}, configPath: 'missing-in-root.yml', asRoot: true })).config.ingress.caFile, join(dir, 'ca.pem'))
  })
})

describe('sameDaemonFlags', () => {
  it('names what another command needs to reach the same daemon, for hints', () => {
    assert.equal(sameDaemonFlags(undefined, undefined), '')
    assert.equal(sameDaemonFlags(undefined, DEFAULT_CONFIG_PATH), '')
    assert.equal(sameDaemonFlags('work', undefined), ' --instance work')
    assert.equal(sameDaemonFlags('work', '/etc/ngrokd/work.yml'), ' --instance work', "the instance's own default file")
    assert.equal(sameDaemonFlags(undefined, '/srv/ngrokd.json'), ' --config /srv/ngrokd.json')
    assert.equal(sameDaemonFlags('work', '/srv/ngrokd.json'), ' --config /srv/ngrokd.json --instance work', 'a file of its own need not name the instance')
    assert.equal(sameDaemonFlags(undefined, '/srv/my config.yml'), ' --config "/srv/my config.yml"')
  })

  it('refuses a named pipe or a device at once, and a file over 1 MiB, instead of waiting or reading on', async () => {
    const dir = await project()
    execFileSync('mkfifo', [join(dir, 'fifo.yaml')])
    await assert.rejects(loadConfig({ ...isolated(dir), configPath: 'fifo.yaml' }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID') && e.message === `config file ${join(dir, 'fifo.yaml')} is a named pipe, not a regular file`)
    await assert.rejects(loadConfig({ ...isolated(dir), configPath: '/dev/zero' }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID') && /is a device, not a regular file$/.test(e.message))
    // a named pipe that the search from the working directory finds, and a socket named by --config
    const searched = await project()
    execFileSync('mkfifo', [join(searched, '.ngrokdrc.yml')])
    await assert.rejects(loadConfig(isolated(searched)), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID') && e.message === `config file ${join(searched, '.ngrokdrc.yml')}, found by the search from ${searched}, is not a regular file`)
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(join(dir, 'socket.yaml'), resolve))
    try {
      await assert.rejects(loadConfig({ ...isolated(dir), configPath: 'socket.yaml' }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID') && /socket\.yaml is a socket or a device, not a regular file$/.test(e.message))
    } finally {
      server.close()
    }
    await writeFile(join(dir, 'huge.yaml'), `# ${'x'.repeat(1024 * 1024)}\n`)
    await assert.rejects(loadConfig({ ...isolated(dir), configPath: 'huge.yaml' }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID') && /over the 1 MiB a configuration may have$/.test(e.message))
  })
})
