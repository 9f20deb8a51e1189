import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { chooseIngressEndpoint, normalizeIngressEndpoint, splitIngressEndpoint, DEFAULT_INGRESS_ENDPOINT } from './ingress-endpoint.js'
import { isNgrokdError } from '../errors/index.js'

describe('normalizeIngressEndpoint', () => {
  it('keeps host:port and appends :443 when there is no port', () => {
    assert.equal(normalizeIngressEndpoint('kubernetes-binding-ingress.ngrok.io:443'), 'kubernetes-binding-ingress.ngrok.io:443')
    assert.equal(normalizeIngressEndpoint('ingress.example.test'), 'ingress.example.test:443')
    assert.equal(normalizeIngressEndpoint('127.0.0.1:8443'), '127.0.0.1:8443')
  })

  it('uses the default ingress when the API names none', () => {
    assert.equal(normalizeIngressEndpoint(undefined), DEFAULT_INGRESS_ENDPOINT)
    assert.equal(normalizeIngressEndpoint(''), DEFAULT_INGRESS_ENDPOINT)
  })

  it('brackets IPv6 and accepts a URL form', () => {
    assert.equal(normalizeIngressEndpoint('::1'), '[::1]:443')
    assert.equal(normalizeIngressEndpoint('[::1]:9443'), '[::1]:9443')
    assert.equal(normalizeIngressEndpoint('tls://ingress.example.test:9443'), 'ingress.example.test:9443')
    assert.deepEqual(splitIngressEndpoint('[::1]:9443'), { host: '::1', port: 9443 })
    assert.equal(normalizeIngressEndpoint('http://ingress.example.test:80'), 'ingress.example.test:80', 'the port as written, a default one too')
    assert.equal(normalizeIngressEndpoint('tls://ingress.example.test/'), 'ingress.example.test:443')
  })

  it('rejects what cannot be dialled', () => {
    for (const bad of ['host:0', 'host:70000', 'bad host:443', 'a:b:c', 'host\n:443', '[not-ip]:443', 'https://user:pw@host:8443', 'https://host:8443/path', 'tls://host?x']) {
      assert.throws(() => normalizeIngressEndpoint(bad), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_API'), bad)
    }
  })
})

describe('chooseIngressEndpoint: config, else the registration, else the default', () => {
  it('prefers ingress.endpoint, normalised', () => {
    assert.deepEqual(chooseIngressEndpoint('ingress.example:8443', 'api.example:443'), { endpoint: 'ingress.example:8443', source: 'config' })
    assert.deepEqual(chooseIngressEndpoint('ingress.example', undefined), { endpoint: 'ingress.example:443', source: 'config' })
  })
  it('takes the endpoint the API named at registration, normalised', () => {
    assert.deepEqual(chooseIngressEndpoint(undefined, 'api.example'), { endpoint: 'api.example:443', source: 'api' })
  })
  it('falls back to the documented default', () => {
    assert.deepEqual(chooseIngressEndpoint(undefined, undefined), { endpoint: DEFAULT_INGRESS_ENDPOINT, source: 'default' })
    assert.deepEqual(chooseIngressEndpoint('', ''), { endpoint: DEFAULT_INGRESS_ENDPOINT, source: 'default' })
  })
})
