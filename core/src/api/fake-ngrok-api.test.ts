import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { FakeNgrokApi, type RecordedReply } from './fake-ngrok-api.test-helper.js'
import { generateKeyAndCsr } from '../cert/csr.js'
import { parseCertificate } from '../cert/parse-certificate.js'
import type { Operator } from './types.js'

function fixture(name: string): RecordedReply {
  return JSON.parse(readFileSync(new URL(`./test-fixtures/${name}.json`, import.meta.url), 'utf8')) as RecordedReply
}

/** Every key path of a JSON value (`binding.cert.not_after`), arrays looked into at their first item. */
function shape(value: unknown, prefix = ''): string[] {
  if (Array.isArray(value)) return value.length ? shape(value[0], `${prefix}[]`) : [`${prefix}[]`]
  if (typeof value !== 'object' || value === null) return [prefix]
  return Object.entries(value).flatMap(([k, v]) => [`${prefix}${k}`, ...shape(v, `${prefix}${k}.`)].filter((p) => !p.endsWith('.')))
}

const KEY = 'k'
const headers = { authorization: `Bearer ${KEY}`, 'ngrok-version': '2' }

describe('FakeNgrokApi answers in the shapes of the sample replies', () => {
  const fake = new FakeNgrokApi({ apiKey: KEY })
  const base = new URL('https://api.ngrok.com/')
  const { csrPem, keyPem } = generateKeyAndCsr()
  const created = fake.handle('POST', new URL('/kubernetes_operators', base), headers, JSON.stringify({
    description: 'ngrokd on build-07',
    metadata: '{"ngrokd_machine_id":"m","hostname":"build-07"}',
    enabled_features: ['bindings'],
    region: 'global',
    binding: { endpoint_selectors: ['true'], csr: csrPem },
  }))
  const op = created.body as Operator

  it('create: 201 with the fields of the sample create, and a certificate for our key', () => {
    const recorded = fixture('operator-create')
    assert.equal(created.status, recorded.status)
    assert.deepEqual(shape(op).sort(), shape(recorded.body).sort())
    assert.ok(parseCertificate(op.binding!.cert!.cert!).matchesKey(keyPem))
  })

  it('list: the sample page shape with next_page_uri', () => {
    fake.endpoints = (fixture('bound-endpoints-page-1').body as { endpoints: [] }).endpoints
    const reply = fake.handle('GET', new URL(`/kubernetes_operators/${op.id}/bound_endpoints?limit=2`, base), headers, '')
    const body = reply.body as { endpoints: unknown[]; next_page_uri: string }
    assert.deepEqual(Object.keys(body).sort(), Object.keys(fixture('bound-endpoints-page-1').body as object).sort())
    assert.equal(body.endpoints.length, 2)
    assert.match(body.next_page_uri, /^https:\/\/api\.ngrok\.com\/kubernetes_operators\/k8sop_\w+\/bound_endpoints\?before_id=ep_\w+&limit=2$/)
  })

  it('errors: the sample 404 and 403 shapes', () => {
    const missing = fake.handle('GET', new URL('/kubernetes_operators/k8sop_nope', base), headers, '')
    assert.equal(missing.status, 404)
    assert.deepEqual(shape(missing.body).sort(), shape(fixture('error-not-found').body).sort())
    const denied = fake.handle('GET', new URL('/kubernetes_operators', base), { ...headers, authorization: 'Bearer wrong' }, '')
    assert.equal(denied.status, 403)
    assert.deepEqual(shape(denied.body).sort(), shape(fixture('error-invalid-key').body).sort())
  })

  it('injected replies come first, once each', () => {
    fake.inject({ method: 'GET', path: '/kubernetes_operators' }, fixture('error-rate-limit'))
    assert.equal(fake.handle('GET', new URL('/kubernetes_operators', base), headers, '').status, 429)
    assert.equal(fake.handle('GET', new URL('/kubernetes_operators', base), headers, '').status, 200)
  })
})
