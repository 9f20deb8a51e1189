import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import type { DesiredService } from '../protocol/endpoints.js'
import { configuredRegistryHosts, machineProtectedHosts, matchesNamePattern, NamePolicy } from './name-policy.js'

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
  const policy = (allow: string[] = [], deny: string[] = [], extra: Array<[string, string]> = []) =>
    new NamePolicy({ allow, deny, protectedHosts: () => [...machineProtectedHosts(config), ...extra] })

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

  it("reads the registries the machine is configured to use: npm's environment and npmrc files", () => {
    const home = mkdtempSync(join(tmpdir(), 'ngrokd-home-'))
    try {
      writeFileSync(join(home, '.npmrc'), 'registry=https://npm.corp.example/\n@acme:registry=https://npm.acme.example/repo/\n//npm.corp.example/:_authToken=x\n')
      const hosts = configuredRegistryHosts({ npm_config_registry: 'https://mirror.example:4873/' }, home)
      for (const h of ['mirror.example', 'npm.corp.example', 'npm.acme.example']) assert.ok(hosts.includes(h), `${h} in ${hosts.join(', ')}`)
    } finally {
      rmSync(home, { recursive: true, force: true })
    }
  })
})
