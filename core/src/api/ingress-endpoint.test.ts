import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { normalizeIngressEndpoint, splitIngressEndpoint, DEFAULT_INGRESS_ENDPOINT } from './ingress-endpoint.js'
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
  })

  it('rejects what cannot be dialled', () => {
    for (const bad of ['host:0', 'host:70000', 'bad host:443', 'a:b:c', 'host\n:443', '[not-ip]:443']) {
      assert.throws(() => normalizeIngressEndpoint(bad), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_API'), bad)
    }
  })
})
