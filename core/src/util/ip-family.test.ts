import assert from 'node:assert/strict'
import { isIP } from 'node:net'
import { test } from 'node:test'
import { ipFamily } from './ip-family.js'

test('ipFamily answers as net.isIP does, for addresses, host:port and names', () => {
  const texts = [
    '127.0.0.1', '10.107.0.2', '255.255.255.255', '256.1.1.1', '1.2.3', '01.2.3.4',
    '::', '::1', '1::', 'fe80::1', 'fe80::1%eth0', '2001:db8:0:0:0:0:2:1', '2001:db8::2:1', '::ffff:192.0.2.1',
    '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7', ':1', '1:', '[::1]', '[::1]:443', '::1:443x',
    '127.0.0.1:443', 'localhost:443', 'kubernetes-binding-ingress.ngrok.io', 'kubernetes-binding-ingress.ngrok.io:443',
    'api.prod', '', ' ', 'a:b', 'a::b', 'g::1',
  ]
  for (const text of texts) assert.equal(ipFamily(text), isIP(text), JSON.stringify(text))
})
