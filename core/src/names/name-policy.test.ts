import { before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import type { DesiredService } from '../protocol/endpoints.js'
import { recordingLogger } from '../testing/recording-logger.js'
import { localUser, localUserSkip } from '../util/local-user.test-helper.js'
import { configuredRegistryHosts, machineProtectedHosts, matchesNamePattern, NamePolicy, proxyHosts } from './name-policy.js'

const service = (hostname: string, id = `ep_${hostname}`): DesiredService => ({ key: `http://${hostname}`, url: `http://${hostname}`, hostname, port: 80, proto: 'http', endpointIds: [id] })
const config = { api: { url: 'https://api.ngrok.com' }, ingress: {} }

describe('names.allow / names.deny patterns', () => {
  it('a bare suffix matches itself and every name under it; *. only names under it; * everything', () => {
    assert.ok(matchesNamePattern('api.prod', 'prod'))
    assert.ok(matchesNamePattern('prod', 'prod'))
    assert.ok(!matchesNamePattern('api.preprod', 'prod'), 'labels, not characters')
    assert.ok(matchesNamePattern('a.b.prod', '*.prod'))
    assert.ok(!matchesNamePattern('prod', '*.prod'))
    assert.ok(matchesNamePattern('anything.at.all', '*'))
  })
})

describe('NamePolicy', () => {
  let machine: Array<[string, string]> = []
  before(async () => {
    machine = await machineProtectedHosts(config)
  })
  const policy = (allow: string[] = [], deny: string[] = [], extra: Array<[string, string]> = []) =>
    new NamePolicy({ allow, deny, protectedHosts: () => [...machine, ...extra] })

  it('never publishes what the machine itself needs, whatever names.allow says', () => {
    const p = policy(['*'], [], [['ingress.example.net', 'the binding ingress host (from the ngrok API)']])
    assert.match(p.judge('api.ngrok.com')!, /is the ngrok API host \(api\.url\), which ngrokd never publishes/)
    assert.match(p.judge('kubernetes-binding-ingress.ngrok.io')!, /one of ngrok's own hosts/)
    assert.match(p.judge('ingress.example.net')!, /binding ingress host \(from the ngrok API\)/)
    assert.match(p.judge('registry.npmjs.org')!, /a package registry/)
    assert.match(p.judge('REGISTRY.NPMJS.ORG.')!, /a package registry/, 'case and a trailing dot do not get around it')
    assert.match(p.judge(hostname())!, /this machine's own hostname/)
    assert.match(p.judge('localhost')!, /loopback name/)
    assert.match(p.judge('app.localhost')!, /loopback name/)
    for (const name of ['localhost.localdomain', 'LOCALHOST.localdomain', 'localhost6.localdomain6', 'ip6-localhost']) assert.match(p.judge(name)!, /loopback names systems' own hosts files define/, name)
    assert.equal(p.judge('api.prod'), undefined)
  })

  it('deny refuses, a non-empty allow admits only its suffixes, deny wins', () => {
    assert.match(policy([], ['github.com']).judge('github.com')!, /matches names\.deny "github\.com"/)
    assert.match(policy([], ['com']).judge('api.github.com')!, /matches names\.deny "com"/)
    const allowProd = policy(['prod', '*.staging'], ['secret.prod'])
    assert.equal(allowProd.judge('db.prod'), undefined)
    assert.equal(allowProd.judge('web.staging'), undefined)
    assert.match(allowProd.judge('github.com')!, /matches no names\.allow pattern \(prod, \*\.staging\)/)
    assert.match(allowProd.judge('secret.prod')!, /matches names\.deny/)
    assert.equal(policy().judge('github.com'), undefined, 'by default only the machine\'s own names are refused')
  })

  it('filter keeps the safe services and reports each endpoint of a refused one as skipped as unsafe, with its code', () => {
    const { services, rejected } = policy([], ['github.com']).filter([service('api.prod'), service('github.com'), { ...service('registry.npmjs.org'), endpointIds: ['ep_a', 'ep_b'] }])
    assert.deepEqual(services.map((s) => s.hostname), ['api.prod'])
    assert.deepEqual(rejected.map((r) => [r.id, r.code]), [['ep_github.com', 'NGROKD_ERR_NAME_UNSAFE'], ['ep_a', 'NGROKD_ERR_NAME_UNSAFE'], ['ep_b', 'NGROKD_ERR_NAME_UNSAFE']])
    assert.match(rejected[0]!.reason, /^skipped as unsafe: github\.com matches names\.deny "github\.com"$/)
    assert.equal(rejected[1]!.url, 'http://registry.npmjs.org')
  })

  it('never publishes a proxy the environment names: ngrokd reaches the API through it (HTTPS_PROXY), other programs too', async () => {
    const env = { HTTPS_PROXY: 'http://proxy.corp:3128', http_proxy: 'cache.corp:8080', ALL_PROXY: 'socks5://socks.corp:1080', HTTP_PROXY: ' ', NO_PROXY: 'api.prod' }
    assert.deepEqual(proxyHosts(env).sort(), ['cache.corp', 'proxy.corp', 'socks.corp'])
    const saved = { ...process.env }
    try {
      Object.assign(process.env, { HTTPS_PROXY: 'http://proxy.corp:3128' })
      const p = new NamePolicy({ allow: ['*'], deny: [], protectedHosts: () => [] })
      const hosts = await machineProtectedHosts(config)
      const withProxy = new NamePolicy({ allow: ['*'], deny: [], protectedHosts: () => hosts })
      assert.equal(p.judge('proxy.corp'), undefined, 'a name like any other to a policy that is not told')
      assert.match(withProxy.judge('proxy.corp')!, /a proxy this machine is configured to use \(HTTPS_PROXY, HTTP_PROXY, ALL_PROXY\)/)
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k]
      Object.assign(process.env, saved)
    }
  })

  it("reads the registries the machine is configured to use: npm's environment and npmrc files", async () => {
    const home = mkdtempSync(join(tmpdir(), 'ngrokd-home-'))
    try {
      writeFileSync(join(home, '.npmrc'), 'registry=https://npm.corp.example/\n@acme:registry=https://npm.acme.example/repo/\n//npm.corp.example/:_authToken=x\n')
      const hosts = await configuredRegistryHosts({ npm_config_registry: 'https://mirror.example:4873/' }, home)
      for (const h of ['mirror.example', 'npm.corp.example', 'npm.acme.example']) assert.ok(hosts.includes(h), `${h} in ${hosts.join(', ')}`)
    } finally {
      rmSync(home, { recursive: true, force: true })
    }
  })

  it('reads only a regular file: a FIFO at ~/.npmrc, or a directory, is skipped with a warning instead of holding the start', { skip: process.platform === 'win32' && 'no FIFOs' }, () => {
    const home = mkdtempSync(join(tmpdir(), 'ngrokd-home-'))
    try {
      execFileSync('mkfifo', [join(home, '.npmrc')])
      mkdirSync(join(home, '.config', 'pip', 'pip.conf'), { recursive: true })
      // in a child: a read that waits for the FIFO's writer would hold this process for good
      const module = new URL('./name-policy.js', import.meta.url).href
      const script = `import(${JSON.stringify(module)}).then(async (m) => {
        const warnings = []
        const logger = { warn: (o, msg) => warnings.push(msg), debug() {}, info() {}, error() {}, trace() {}, fatal() {}, child() { return logger } }
        const hosts = await m.configuredRegistryHosts({}, ${JSON.stringify(home)}, logger)
        console.log(JSON.stringify({ hosts, warnings }))
      })`
      const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 120_000 })) as { hosts: string[]; warnings: string[] }
      assert.ok(out.warnings.some((w) => w.includes(`${join(home, '.npmrc')} is not a regular file`)), out.warnings.join('\n'))
      assert.ok(out.warnings.some((w) => w.includes(`${join(home, '.config', 'pip', 'pip.conf')} is not a regular file`)), out.warnings.join('\n'))
    } finally {
      rmSync(home, { recursive: true, force: true })
    }
  })

  it('skips a file over 1 MiB with a warning', async () => {
    const home = mkdtempSync(join(tmpdir(), 'ngrokd-home-'))
    try {
      writeFileSync(join(home, '.npmrc'), `registry=https://npm.big.example/\n${'#'.repeat(1024 * 1024)}\n`)
      const logger = recordingLogger()
      assert.ok(!(await configuredRegistryHosts({}, home, logger)).includes('npm.big.example'))
      assert.match(logger.at('warn').map((r) => r.msg).join('\n'), /\.npmrc is \d+ bytes, over the 1 MiB such a file may have/)
    } finally {
      rmSync(home, { recursive: true, force: true })
    }
  })
})

describe('configuredRegistryHosts as root: only files root alone can change decide', { skip: localUserSkip() }, () => {
  it("skips another user's ~/.npmrc (HOME kept by sudo -E) and npm_config_userconfig with a warning naming the file and why; root's own are read", async () => {
    const eve = localUser()!
    const dir = mkdtempSync(join(tmpdir(), 'ngrokd-home-'))
    try {
      chmodSync(dir, 0o755)
      const eveHome = join(dir, 'eve')
      mkdirSync(eveHome, { mode: 0o755 })
      writeFileSync(join(eveHome, '.npmrc'), 'registry=http://db.prod/\n')
      chownSync(eveHome, eve.uid, eve.gid)
      chownSync(join(eveHome, '.npmrc'), eve.uid, eve.gid)
      const rootsFileInEvesHome = join(eveHome, 'root-owned.npmrc')
      writeFileSync(rootsFileInEvesHome, 'registry=http://api.prod/\n')
      const rootHome = join(dir, 'root')
      mkdirSync(rootHome, { mode: 0o700 })
      writeFileSync(join(rootHome, '.npmrc'), 'registry=https://npm.root.example/\n')

      const logger = recordingLogger()
      const hosts = await configuredRegistryHosts({ npm_config_userconfig: rootsFileInEvesHome }, eveHome, logger)
      assert.ok(!hosts.includes('db.prod'), hosts.join(', '))
      assert.ok(!hosts.includes('api.prod'), 'a root-owned file in a folder eve may change: she could have swapped it')
      const warned = (path: string) => logger.at('warn').filter((r) => r.obj.path === path)
      assert.equal(warned(join(eveHome, '.npmrc')).length, 1, 'one warning for the file')
      assert.match(warned(join(eveHome, '.npmrc'))[0]!.msg, new RegExp(`${join(eveHome, '.npmrc')} is owned by .*uid ${eve.uid}`))
      assert.match(warned(rootsFileInEvesHome)[0]!.msg, new RegExp(`its directory ${eveHome} is owned by`))
      for (const path of [join(eveHome, '.npmrc'), rootsFileInEvesHome]) assert.equal(warned(path)[0]!.obj.code, 'NGROKD_ERR_PATH_UNTRUSTED')

      assert.ok((await configuredRegistryHosts({}, rootHome, logger)).includes('npm.root.example'), "root's own ~/.npmrc is read")
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
