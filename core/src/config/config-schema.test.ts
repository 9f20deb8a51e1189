import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { buildConfigModel, CONFIG_SCHEMA_URL, getConfigModel, listConfigKeys, type SchemaNode } from './config-schema.js'
import { validate as precompiledValidate } from './config-validator.js'
import { compileConfigSchema } from './schema-compiler.js'

const schemaText = readFileSync(CONFIG_SCHEMA_URL, 'utf8')

describe('config.schema.json', () => {
  it('is a draft-07 schema that ajv compiles in strict mode', () => {
    const schema = JSON.parse(schemaText) as SchemaNode & { $schema: string }
    assert.equal(schema.$schema, 'http://json-schema.org/draft-07/schema#')
    assert.equal(typeof getConfigModel().validate, 'function')
  })

  it('is validated by the build\'s precompiled validator, which judges as Ajv compiling the schema now does', () => {
    assert.equal(getConfigModel().validate, precompiledValidate, 'a start does not compile the schema')
    const now = compileConfigSchema(JSON.parse(schemaText) as object)
    const documents: unknown[] = [
      {},
      { api: { url: 'https://api.ngrok.com', key: 'k', timeout: '10s' }, net: { subnet: '10.107.0.0/16' }, plugins: ['dns', { name: 'prometheus', options: { listen: '127.0.0.1:9100' } }] },
      { api: { timeout: -1 } },
      { net: { subnet: 42, driver: '' }, unknown_key: true },
      { forwarder: { workers: 'many' }, log: { level: 'loud' } },
      { bound_endpoints: { selectors: [] }, instance: 'x'.repeat(300) },
      [],
      'config',
    ]
    assert.ok(documents.filter((d) => !precompiledValidate(d)).length >= 5, 'the invalid documents are refused')
    for (const doc of documents) {
      const shipped = precompiledValidate(doc)
      assert.equal(shipped, now(doc), JSON.stringify(doc))
      assert.deepEqual(precompiledValidate.errors ?? null, now.errors ?? null, JSON.stringify(doc))
    }
  })

  it('documents every section and key with a title and a description', () => {
    const walk = (node: SchemaNode, path: string) => {
      assert.ok(node.title, `${path} has no title`)
      assert.ok(node.description, `${path} has no description`)
      for (const [name, child] of Object.entries(node.properties ?? {})) walk(child, path ? `${path}.${name}` : name)
    }
    walk(JSON.parse(schemaText) as SchemaNode, '')
  })

  it('gives a default to every key except the ones that are optional by nature', () => {
    const withoutDefault = listConfigKeys().filter((k) => !('default' in k)).map((k) => k.path)
    assert.deepEqual(withoutDefault.sort(), [
      'api.key', 'control.group', 'ingress.ca_file', 'ingress.endpoint',
      'ingress.pod_identity.name', 'ingress.pod_identity.namespace', 'ingress.pod_identity.uid', // sent only when set
      'instance', // unset: the default daemon
      'metrics.prometheus_listen', 'net.network.listen', 'registration.description', // default: ngrokd on <hostname>
    ])
  })

  it('names an environment variable for every key', () => {
    const env = new Map(listConfigKeys().map((k) => [k.path, k.env]))
    assert.equal(env.get('bound_endpoints.poll_interval'), 'NGROKD_BOUND_ENDPOINTS_POLL_INTERVAL')
    assert.equal(env.get('ingress.insecure_skip_verify'), 'NGROKD_INGRESS_INSECURE_SKIP_VERIFY')
    assert.equal(env.get('state_dir'), 'NGROKD_STATE_DIR')
    assert.equal(env.get('net.driver_options'), 'NGROKD_NET_DRIVER_OPTIONS')
    assert.equal(new Set(env.values()).size, env.size)
  })

  it('takes a new section or key with one edit of the schema', () => {
    const schema = JSON.parse(schemaText) as SchemaNode
    schema.properties!.metrics = {
      title: 'Metrics',
      description: 'x',
      type: 'object',
      additionalProperties: false,
      properties: { listen_address: { title: 'a', description: 'b', type: 'string', default: '127.0.0.1:9464' } },
    } as SchemaNode
    schema.properties!.net!.properties!.network = {
      title: 'Network',
      description: 'x',
      type: 'object',
      properties: { drain_timeout: { title: 'a', description: 'b', type: ['string', 'number'], default: '5s', 'x-ngrokd': { kind: 'duration' } } },
    } as SchemaNode
    const model = buildConfigModel(schema)
    const listen = model.byPath.get('metrics.listen_address')!
    assert.equal(listen.env, 'NGROKD_METRICS_LISTEN_ADDRESS')
    assert.deepEqual(listen.outputSegments, ['metrics', 'listenAddress'])
    const drain = model.byPath.get('net.network.drain_timeout')!
    assert.equal(drain.env, 'NGROKD_NET_NETWORK_DRAIN_TIMEOUT')
    assert.deepEqual(drain.outputSegments, ['net', 'network', 'drainTimeoutMs'])
    assert.ok(model.sections.get('')!.names.includes('metrics'))
    assert.equal(model.validate({ metrics: { listen_addres: 'x' } }), false)
  })

  it('refuses a schema where two keys share an environment variable', () => {
    const schema = JSON.parse(schemaText) as SchemaNode
    schema.properties!.net_subnet = { title: 'a', description: 'b', type: 'string' }
    assert.throws(() => buildConfigModel(schema), /net\.subnet and net_subnet both map to NGROKD_NET_SUBNET/)
  })
})
