import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { SelectorError, compileSelector, compileSelectors } from './selectors.js'

const api = { id: 'ep_1', url: 'http://api.prod', host: 'api.prod', port: 80, proto: 'http', hostport: 'api.prod:80', type: 'agent', metadata: '{"team":"a"}', description: '' }
const db = { ...api, id: 'ep_2', url: 'tcp://db.staging:5432', host: 'db.staging', port: 5432, proto: 'tcp', hostport: 'db.staging:5432' }

describe('endpoint selectors', () => {
  it('evaluates literals, comparisons and string methods', () => {
    assert.equal(compileSelector('true')(api), true)
    assert.equal(compileSelector('false')(api), false)
    assert.equal(compileSelector("endpoint.host == 'api.prod'")(api), true)
    assert.equal(compileSelector('endpoint.port == 5432')(db), true)
    assert.equal(compileSelector('endpoint.port != 5432')(api), true)
    assert.equal(compileSelector("endpoint.host.endsWith('.prod')")(db), false)
    assert.equal(compileSelector('endpoint.url.startsWith("tcp://")')(db), true)
    assert.equal(compileSelector("endpoint.metadata.contains('team')")(api), true)
  })

  it('combines with !, &&, || and parentheses, && binding tighter', () => {
    const s = compileSelector("endpoint.proto == 'tcp' || endpoint.port == 80 && !(endpoint.host == 'api.prod')")
    assert.equal(s(db), true)
    assert.equal(s(api), false)
  })

  it('a list binds an endpoint when any selector is true; an empty list binds nothing', () => {
    const s = compileSelectors(["endpoint.host == 'nope.x'", "endpoint.proto == 'tcp'"])
    assert.equal(s(db), true)
    assert.equal(s(api), false)
    assert.equal(compileSelectors([])(api), false)
  })

  it('rejects what it does not understand', () => {
    for (const bad of ['', 'endpoint.nope == 1', 'endpoint.host ~ 1', "endpoint.host.matches('x')", '(true', 'true false', "'unterminated", 'endpoint.host =='])
      assert.throws(() => compileSelector(bad), SelectorError, bad)
  })
})
