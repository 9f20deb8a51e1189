import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { hostInSubnet } from './ipv4.js'

describe('hostInSubnet', () => {
  it('reads an IPv4 address in every form a connect takes, and an IPv4-mapped IPv6 address, as that address', () => {
    for (const host of ['127.107.0.2', '2137718786', '0x7f6b0002', '0177.0153.0.2', '127.107.2', '[::ffff:127.107.0.2]', '::ffff:127.107.0.2', '::ffff:7f6b:2']) {
      assert.equal(hostInSubnet(host, '127.107.0.0/16'), true, host)
    }
  })

  it('is false for another address, an IPv6 address and a name (names are not resolved)', () => {
    for (const host of ['127.0.0.1', '10.108.0.2', '::1', '[2001:db8::1]', 'kubernetes-binding-ingress.ngrok.io', 'api.prod', '']) {
      assert.equal(hostInSubnet(host, '127.107.0.0/16'), false, host)
    }
  })
})
