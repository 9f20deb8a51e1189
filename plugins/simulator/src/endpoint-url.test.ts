import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isNgrokdError } from '@ngrokd/core'
import { parseEndpointUrl } from './endpoint-url.js'

describe('parseEndpointUrl', () => {
  it('applies default ports and canonical form', () => {
    assert.deepEqual(parseEndpointUrl('http://api.prod'), { url: 'http://api.prod', proto: 'http', host: 'api.prod', port: 80, hostport: 'api.prod:80' })
    assert.deepEqual(parseEndpointUrl('http://Api.Prod:80').url, 'http://api.prod')
    assert.deepEqual(parseEndpointUrl('http://api.prod:8080').hostport, 'api.prod:8080')
    assert.deepEqual(parseEndpointUrl('tcp://db.prod:5432').url, 'tcp://db.prod:5432')
    assert.deepEqual(parseEndpointUrl('https://my-api.ngrok.app').port, 443)
  })

  it('enforces ngrok rules for kubernetes-bound URLs', () => {
    for (const bad of ['ftp://a.b', 'http://api', 'http://a.b.c', 'http://*.prod', 'http://1api.prod', 'tcp://db.prod', 'tcp://db.prod:0', 'http://api.prod:70000', 'http://api.prod/path', 'api.prod']) {
      assert.throws(() => parseEndpointUrl(bad), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_ENDPOINT_INVALID'), bad)
    }
  })

  it('serves malformed hostnames verbatim when validation is skipped', () => {
    const a = parseEndpointUrl('http://evil.prod\n1.2.3.4 bank.com', { strict: false })
    assert.equal(a.host, 'evil.prod\n1.2.3.4 bank.com')
    assert.equal(a.port, 80)
    assert.equal(parseEndpointUrl('tcp://x.y.z:99', { strict: false }).hostport, 'x.y.z:99')
  })
})
