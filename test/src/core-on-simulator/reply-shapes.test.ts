// The cloud simulator answers in the shapes of core's sample ngrok API replies
// (core/src/api/test-fixtures, written to ngrok's published types): every field a sample has, the
// simulator's reply has too, so what core's client is tested against offline is what it meets here.
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { generateKeyAndCsr, parseCertificate } from '@ngrokd/core'
import { CloudSimulator, type OperatorObject } from '@ngrokd/plugin-simulator'
import { REPO_ROOT } from '../helpers/workspaces.js'

interface Sample {
  status: number
  body: unknown
}

function sample(name: string): Sample {
  return JSON.parse(readFileSync(join(REPO_ROOT, 'core/src/api/test-fixtures', `${name}.json`), 'utf8')) as Sample
}

/** Every key path of a JSON value (`binding.cert.not_after`), arrays looked into at their first item. */
function shape(value: unknown, prefix = ''): string[] {
  if (Array.isArray(value)) return value.length ? shape(value[0], `${prefix}[]`) : [`${prefix}[]`]
  if (typeof value !== 'object' || value === null) return [prefix]
  return Object.entries(value).flatMap(([k, v]) => [`${prefix}${k}`, ...shape(v, `${prefix}${k}.`)].filter((p) => !p.endsWith('.')))
}

/** The key paths of the sample that the reply lacks. */
const missing = (reply: unknown, of: Sample): string[] => {
  const have = new Set(shape(reply))
  return shape(of.body).filter((p) => !have.has(p))
}

const KEY = 'k'

describe('the cloud simulator answers in the shapes of the sample replies', () => {
  let sim: CloudSimulator
  let op: OperatorObject
  let created: number
  const { csrPem, keyPem } = generateKeyAndCsr()
  const call = async (path: string, init: RequestInit = {}, key = KEY) => {
    const headers = { authorization: `Bearer ${key}`, 'ngrok-version': '2', ...(init.body ? { 'content-type': 'application/json' } : {}) }
    const res = await fetch(`${sim.apiUrl}${path}`, { ...init, headers })
    return { status: res.status, body: (await res.json()) as unknown }
  }

  before(async () => {
    sim = await CloudSimulator.start({ apiKey: KEY })
    const reply = await call('/kubernetes_operators', {
      method: 'POST',
      body: JSON.stringify({
        description: 'ngrokd on build-07',
        metadata: '{"ngrokd_machine_id":"m","hostname":"build-07"}',
        enabled_features: ['bindings'],
        region: 'global',
        binding: { endpoint_selectors: ['true'], csr: csrPem },
      }),
    })
    created = reply.status
    op = reply.body as OperatorObject
  })
  after(async () => {
    await sim.stop()
  })

  it('create: the status and every field of the sample create, and a certificate for our key', () => {
    assert.equal(created, sample('operator-create').status)
    assert.deepEqual(missing(op, sample('operator-create')), [])
    assert.ok(parseCertificate(op.binding!.cert.cert).matchesKey(keyPem))
  })

  it('get and list operators: every field of the samples', async () => {
    assert.deepEqual(missing((await call(`/kubernetes_operators/${op.id}`)).body, sample('operator-get')), [])
    assert.deepEqual(missing((await call('/kubernetes_operators')).body, sample('operators-list')), [])
  })

  it('bound endpoints: the sample page, with an absolute next_page_uri', async () => {
    for (let i = 0; i < 3; i++) sim.addEndpoint({ url: `http://svc${i}.prod` })
    const reply = await call(`/kubernetes_operators/${op.id}/bound_endpoints?limit=2`)
    assert.deepEqual(missing(reply.body, sample('bound-endpoints-page-1')), [])
    const body = reply.body as { endpoints: unknown[]; next_page_uri: string }
    assert.equal(body.endpoints.length, 2)
    assert.equal(body.next_page_uri.startsWith(`${sim.apiUrl}/kubernetes_operators/${op.id}/bound_endpoints?`), true, body.next_page_uri)
    const next = new URL(body.next_page_uri).searchParams
    assert.match(next.get('before_id') ?? '', /^ep_\w+$/)
    assert.equal(next.get('limit'), '2')
  })

  it('errors: every field of the sample 404 and invalid-key bodies', async () => {
    const gone = await call('/kubernetes_operators/k8sop_nope')
    assert.equal(gone.status, 404)
    assert.deepEqual(missing(gone.body, sample('error-not-found')), [])
    const denied = await call('/kubernetes_operators', {}, 'wrong')
    assert.equal(denied.status >= 400 && denied.status < 500, true, String(denied.status))
    assert.deepEqual(missing(denied.body, sample('error-invalid-key')), [])
  })
})
