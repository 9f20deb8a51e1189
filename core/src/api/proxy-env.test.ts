import { test } from 'node:test'
import assert from 'node:assert/strict'
import { proxyFromEnvironment } from './proxy-env.js'

const via = (url: string, env: NodeJS.ProcessEnv) => proxyFromEnvironment(new URL(url), env)?.href

test('HTTPS_PROXY for https, HTTP_PROXY for http, upper case first, a bare host:port as http; ALL_PROXY is not read (as Go)', () => {
  assert.equal(via('https://api.ngrok.com/x', { HTTPS_PROXY: 'http://proxy:3128', https_proxy: 'http://other:1' }), 'http://proxy:3128/')
  assert.equal(via('https://api.ngrok.com/x', { https_proxy: 'proxy.corp:8080' }), 'http://proxy.corp:8080/')
  assert.equal(via('https://api.ngrok.com/x', { HTTP_PROXY: 'http://proxy:3128' }), undefined, 'an https URL does not fall back to HTTP_PROXY')
  assert.equal(via('http://api.example/x', { HTTP_PROXY: 'http://proxy:3128' }), 'http://proxy:3128/')
  assert.equal(via('https://api.ngrok.com/x', { ALL_PROXY: 'socks5://127.0.0.1:1080' }), undefined)
  assert.equal(via('https://api.ngrok.com/x', { HTTPS_PROXY: 'socks5://127.0.0.1:1080' }), 'socks5://127.0.0.1:1080', 'named as given; the fetch refuses it')
})

test('loopback and localhost go direct', () => {
  const env = { HTTPS_PROXY: 'http://proxy:3128', HTTP_PROXY: 'http://proxy:3128' }
  for (const url of ['http://127.0.0.1:8080/', 'http://127.9.9.9/', 'http://localhost:4040/', 'https://[::1]:8443/']) assert.equal(via(url, env), undefined, url)
})

test("NO_PROXY as Go reads it: *, IPs and CIDRs (v4 and v6), a domain with the names under it, .domain and *.domain only under it, :port", () => {
  const direct = (url: string, noProxy: string) => via(url, { HTTPS_PROXY: 'http://proxy:3128', HTTP_PROXY: 'http://proxy:3128', NO_PROXY: noProxy }) === undefined
  assert.ok(direct('https://api.ngrok.com/', '*'))
  assert.ok(direct('https://api.ngrok.com/', 'ngrok.com'), 'a domain covers the names under it')
  assert.ok(direct('https://ngrok.com/', 'ngrok.com'))
  assert.ok(direct('https://api.ngrok.com/', '.ngrok.com'))
  assert.ok(!direct('https://ngrok.com/', '.ngrok.com'), '.domain: only names under it')
  assert.ok(direct('https://api.ngrok.com/', '*.ngrok.com'))
  assert.ok(!direct('https://xngrok.com/', 'ngrok.com'), 'a label boundary, not a string suffix')
  assert.ok(direct('https://API.NGROK.COM/', ' other.example , NGROK.com '), 'case and spaces')
  assert.ok(direct('http://10.1.2.3:8080/', '10.0.0.0/8'))
  assert.ok(!direct('http://11.1.2.3:8080/', '10.0.0.0/8'))
  assert.ok(direct('http://10.1.2.3:8080/', '10.1.2.3'))
  assert.ok(direct('http://[fd00::1]:8080/', 'fd00::1'))
  assert.ok(direct('http://[fd00::1]:8080/', 'fd00::/8'))
  assert.ok(direct('https://api.ngrok.com/', 'api.ngrok.com:443'))
  assert.ok(!direct('https://api.ngrok.com/', 'api.ngrok.com:8443'), 'another port')
  assert.ok(direct('http://[fd00::1]:8080/', '[fd00::1]:8080'))
  assert.ok(!direct('https://api.ngrok.com/', 'example.com,10.0.0.0/33'))
  assert.equal(via('https://api.ngrok.com/', { HTTPS_PROXY: 'http://proxy:3128', NO_PROXY: '', no_proxy: 'ngrok.com' }), 'http://proxy:3128/', 'NO_PROXY set (even empty) wins over no_proxy')
})
