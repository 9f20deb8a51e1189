import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { validateHostname, parseEndpointUrl, groupEndpoints, hostsOf, formatEndpointUrl, assertValidHostname } from './endpoints.js'
import { isNgrokdError } from '../errors/ngrokd-error.js'

describe('validateHostname', () => {
  it('accepts name.namespace and public-looking hostnames', () => {
    for (const h of [
      'api.prod',
      'a.b',
      'db-1.team-a',
      'api-.prod', // ngrok's binding rule allows a trailing "-"
      `${'a'.repeat(63)}.${'b'.repeat(63)}`,
      'my-api.ngrok.app',
      '1password.example.com',
      'x.y.z.w.v',
      'xn--bcher-kva.example',
    ]) {
      assert.equal(validateHostname(h), undefined, h)
    }
  })

  it('accepts up to 253 characters and refuses 254', () => {
    const label = 'a'.repeat(49)
    const h253 = [label, label, label, label, label].join('.') + '.abc' // 5*49 + 4 dots + 4
    assert.equal(h253.length, 253)
    assert.equal(validateHostname(h253), undefined)
    assert.match(validateHostname(h253 + 'd') ?? '', /longer than 253/)
  })

  it('refuses injections and malformed names', () => {
    const cases: Array<[string, RegExp]> = [
      ['', /empty/],
      ['api.prod\n1.2.3.4 evil.com', /whitespace or a control/],
      ['api.prod evil.com', /whitespace/],
      ['api.prod\tevil', /whitespace/],
      ['api.prod\r', /whitespace|control/],
      ['api.prod\u0000', /control/],
      ['api.prod\u2028x', /control/],
      ['api.prod#comment', /"#"/],
      ['api.prod:80', /":"/],
      ['api.prod/x', /"\/"/],
      ['*.prod', /wildcard/],
      ['API.prod', /lower-case/],
      ['api..prod', /empty label/],
      ['.api.prod', /empty label/],
      ['api.prod.', /empty label/],
      ['localhost', /single label/],
      ['127.0.0.1', /ip address/],
      ['api.0x7f', /ip address|number/],
      ['api.123', /number/],
      ['-api.prod.example', /starts or ends with "-"/],
      ['a.b.c-', /starts or ends with "-"/],
      [`${'a'.repeat(64)}.prod`, /longer than 63/],
      ['api_x.prod', /character other than/],
      ['ápi.prod', /character other than/],
      ['api%2eprod.x', /character other than/],
    ]
    for (const [h, re] of cases) {
      const reason = validateHostname(h)
      assert.ok(reason !== undefined, `${JSON.stringify(h)} should be refused`)
      assert.match(reason, re, JSON.stringify(h))
    }
    // Digit-first labels are legal RFC 1123 labels (public-looking names such as 1password.com).
    assert.equal(validateHostname('1api.prod'), undefined)
  })

  it('assertValidHostname throws NGROKD_ERR_HOSTNAME_INVALID with a hint', () => {
    assert.throws(
      () => assertValidHostname('a b.c'),
      (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_HOSTNAME_INVALID') && typeof e.hint === 'string' && /"a b\.c"/.test(e.message),
    )
    assert.equal(assertValidHostname('api.prod'), 'api.prod')
  })
})

describe('parseEndpointUrl', () => {
  it('parses the four schemes with their default ports', () => {
    assert.deepEqual(parseEndpointUrl('http://api.prod'), { scheme: 'http', hostname: 'api.prod', port: 80 })
    assert.deepEqual(parseEndpointUrl('http://api.prod:8080/'), { scheme: 'http', hostname: 'api.prod', port: 8080 })
    assert.deepEqual(parseEndpointUrl('https://my-api.ngrok.app'), { scheme: 'https', hostname: 'my-api.ngrok.app', port: 443 })
    assert.deepEqual(parseEndpointUrl('tcp://db.prod:5432'), { scheme: 'tcp', hostname: 'db.prod', port: 5432 })
    assert.deepEqual(parseEndpointUrl('tls://x.prod'), { scheme: 'tls', hostname: 'x.prod', port: 443 })
    assert.deepEqual(parseEndpointUrl('TCP://DB.Prod:1'), { scheme: 'tcp', hostname: 'db.prod', port: 1 })
    assert.deepEqual(parseEndpointUrl('http://api.prod:65535'), { scheme: 'http', hostname: 'api.prod', port: 65535 })
  })

  it('formats a normalised url with the default port left out', () => {
    assert.equal(formatEndpointUrl(parseEndpointUrl('HTTP://Api.Prod:80/')), 'http://api.prod')
    assert.equal(formatEndpointUrl(parseEndpointUrl('https://a.b:443')), 'https://a.b')
    assert.equal(formatEndpointUrl(parseEndpointUrl('https://a.b:8443')), 'https://a.b:8443')
    assert.equal(formatEndpointUrl(parseEndpointUrl('tcp://db.prod:5432')), 'tcp://db.prod:5432')
  })

  it('refuses bad urls with coded errors', () => {
    const cases: Array<[string, string, RegExp]> = [
      ['tcp://db.prod', 'NGROKD_ERR_ENDPOINT_INVALID', /must give a port/],
      ['http://api.prod:0', 'NGROKD_ERR_ENDPOINT_INVALID', /outside 1-65535/],
      ['http://api.prod:65536', 'NGROKD_ERR_ENDPOINT_INVALID', /outside/],
      ['http://api.prod:-1', 'NGROKD_ERR_ENDPOINT_INVALID', /not a number/],
      ['http://api.prod:80x', 'NGROKD_ERR_ENDPOINT_INVALID', /not a number/],
      ['http://api.prod:', 'NGROKD_ERR_ENDPOINT_INVALID', /not a number/],
      ['ftp://api.prod', 'NGROKD_ERR_ENDPOINT_INVALID', /scheme/],
      ['api.prod', 'NGROKD_ERR_ENDPOINT_INVALID', /scheme:\/\//],
      ['http://api.prod/path', 'NGROKD_ERR_ENDPOINT_INVALID', /path/],
      ['http://api.prod?x=1', 'NGROKD_ERR_ENDPOINT_INVALID', /path, query/],
      ['http://api.prod\\evil', 'NGROKD_ERR_ENDPOINT_INVALID', /path/],
      ['http://user@api.prod', 'NGROKD_ERR_ENDPOINT_INVALID', /user information/],
      ['http://[::1]:80', 'NGROKD_ERR_ENDPOINT_INVALID', /ipv6/],
      ['http://api.prod\n1.2.3.4', 'NGROKD_ERR_ENDPOINT_INVALID', /whitespace/],
      [' http://api.prod', 'NGROKD_ERR_ENDPOINT_INVALID', /whitespace/],
      ['', 'NGROKD_ERR_ENDPOINT_INVALID', /empty/],
      ['http://127.0.0.1', 'NGROKD_ERR_HOSTNAME_INVALID', /ip address/],
      ['http://api%0a.prod', 'NGROKD_ERR_HOSTNAME_INVALID', /character/],
      ['http://api%2Eprod.x', 'NGROKD_ERR_HOSTNAME_INVALID', /character/],
      ['http://*.prod', 'NGROKD_ERR_HOSTNAME_INVALID', /wildcard/],
      ['http://localhost', 'NGROKD_ERR_HOSTNAME_INVALID', /single label/],
      ['http://\u212Aube.prod', 'NGROKD_ERR_HOSTNAME_INVALID', /not ASCII/], // KELVIN SIGN: "kube.prod" once lower-cased
      ['http://api.pr\u00F6d', 'NGROKD_ERR_HOSTNAME_INVALID', /not ASCII/],
    ]
    for (const [url, code, re] of cases) {
      assert.throws(
        () => parseEndpointUrl(url),
        (e: unknown) => isNgrokdError(e) && e.code === code && re.test(e.message) && e.message.startsWith('endpoint url '),
        JSON.stringify(url),
      )
    }
  })

  it('never lets a newline through into the message unescaped', () => {
    try {
      parseEndpointUrl('http://a.b\n# x')
      assert.fail('should throw')
    } catch (e) {
      assert.ok(e instanceof Error)
      assert.doesNotMatch(e.message, /\n/)
    }
  })
})

describe('groupEndpoints', () => {
  it('skips an id or url far longer than any of ngrok\'s as malformed, and carries only the start of what it skips', () => {
    const longUrl = `http://${'a'.repeat(2_000_000)}.prod`
    const { services, rejected } = groupEndpoints([
      { id: 'ep_ok', url: 'http://ok.prod' },
      { id: 'ep_long_url', url: longUrl },
      { id: `ep_${'x'.repeat(5_000_000)}`, url: 'http://id.prod' },
      { id: 'ep_bad_host', url: `http://${'b'.repeat(900)}.prod` },
    ])
    assert.deepEqual(services.map((s) => s.url), ['http://ok.prod'])
    assert.equal(rejected.length, 3)
    for (const r of rejected) assert.ok(r.id.length < 400 && r.url.length < 400 && r.reason.length < 400, JSON.stringify(r).slice(0, 200))
    assert.match(rejected.find((r) => r.id === 'ep_long_url')!.reason, /is malformed: its url has 2000012 characters/)
    assert.match(rejected.find((r) => r.id.startsWith('ep_xxx'))!.reason, /has an id of 5000003 characters/)
    assert.match(rejected.find((r) => r.id.startsWith('ep_xxx'))!.id, /… \(5000003 characters\)$/)
    assert.match(rejected.find((r) => r.id === 'ep_bad_host')!.reason, /… \(\d+ characters\)$/)
  })

  it('groups pooled endpoints by normalised url and sorts the result', () => {
    const { services, rejected } = groupEndpoints([
      { id: 'ep_3', url: 'tcp://db.prod:5432', bindings: ['kubernetes'] },
      { id: 'ep_2', url: 'http://api.prod:80', bindings: ['kubernetes'] },
      { id: 'ep_1', url: 'HTTP://API.PROD/', bindings: ['kubernetes'] },
      { id: 'ep_4', public_url: 'http://db.prod' },
      { id: 'ep_5', url: 'https://my-api.ngrok.app' },
    ])
    assert.deepEqual(rejected, [])
    assert.deepEqual(services, [
      { key: 'http://api.prod', url: 'HTTP://API.PROD/', hostname: 'api.prod', port: 80, proto: 'http', endpointIds: ['ep_1', 'ep_2'] },
      { key: 'http://db.prod', url: 'http://db.prod', hostname: 'db.prod', port: 80, proto: 'http', endpointIds: ['ep_4'] },
      { key: 'tcp://db.prod:5432', url: 'tcp://db.prod:5432', hostname: 'db.prod', port: 5432, proto: 'tcp', endpointIds: ['ep_3'] },
      { key: 'https://my-api.ngrok.app', url: 'https://my-api.ngrok.app', hostname: 'my-api.ngrok.app', port: 443, proto: 'https', endpointIds: ['ep_5'] },
    ])
    assert.deepEqual(hostsOf(services), ['api.prod', 'db.prod', 'my-api.ngrok.app'])
  })

  it('does not depend on input order', () => {
    const eps = [
      { id: 'ep_a', url: 'tcp://b.prod:1' },
      { id: 'ep_b', url: 'http://a.prod' },
      { id: 'ep_c', url: 'tcp://b.prod:1' },
      { id: 'ep_d', url: 'bad' },
      { id: 'ep_e', url: 'http://c.prod', bindings: ['public'] },
    ]
    const forward = groupEndpoints(eps)
    const backward = groupEndpoints([...eps].reverse())
    assert.deepEqual(backward, forward)
    assert.deepEqual(forward.rejected.map((r) => r.id), ['ep_d', 'ep_e'])
  })

  it('prefers url over public_url and falls back to proto + hostport', () => {
    const { services } = groupEndpoints([
      { id: 'ep_1', url: 'http://new.prod', public_url: 'http://old.prod' },
      { id: 'ep_2', proto: 'tcp', hostport: 'db.prod:5432' },
    ])
    assert.deepEqual(services.map((s) => s.key), ['tcp://db.prod:5432', 'http://new.prod'])
  })

  it('reads a URL without a scheme as ngrok\'s operator does: proto\'s scheme, else https', () => {
    const { services, rejected } = groupEndpoints([
      { id: 'ep_300', public_url: 'service3.namespace3' },
      { id: 'ep_301', public_url: 'db.prod:5432', proto: 'tcp', hostport: 'db.prod:5432' },
      { id: 'ep_302', url: '', public_url: 'api.prod', proto: 'http', hostport: 'api.prod:80' },
    ])
    assert.deepEqual(rejected, [])
    assert.deepEqual(services.map((s) => [s.key, s.port]), [['http://api.prod', 80], ['tcp://db.prod:5432', 5432], ['https://service3.namespace3', 443]])
  })

  it('skips an endpoint whose URL scheme is not its proto, as ngrok\'s operator does (parseHostport: "mismatched scheme")', () => {
    const { services, rejected } = groupEndpoints([
      { id: 'ep_1', url: 'https://mm.prod', proto: 'http' },
      { id: 'ep_2', url: 'HTTP://ok.prod', proto: 'http' },
      { id: 'ep_3', url: 'tcp://db.prod:5432', proto: 'tcp' },
    ])
    assert.deepEqual(services.map((s) => s.key), ['tcp://db.prod:5432', 'http://ok.prod'])
    assert.equal(rejected.length, 1)
    assert.equal(rejected[0]!.id, 'ep_1')
    assert.match(rejected[0]!.reason, /scheme "https" is not its proto "http"/)
  })

  it('reports endpoints that are not kubernetes-bound, malformed or unsafe', () => {
    const { services, rejected } = groupEndpoints([
      { id: 'ep_1', url: 'https://pub.ngrok.app', bindings: ['public'] },
      { id: 'ep_2', url: 'http://in.prod', bindings: [] },
      { id: 'ep_3', url: 'http://evil.prod\n6.6.6.6 bank.com' },
      { id: 'ep_4' },
      { id: 'ep_5', url: 'tcp://db.prod' },
      { id: 'ep_6', url: 'http://ok.prod', bindings: ['kubernetes', 'public'] },
    ])
    assert.deepEqual(services.map((s) => s.key), ['http://ok.prod'])
    assert.deepEqual(
      rejected.map((r) => [r.id, r.url]),
      [
        ['ep_1', 'https://pub.ngrok.app'],
        ['ep_2', 'http://in.prod'],
        ['ep_3', 'http://evil.prod\n6.6.6.6 bank.com'],
        ['ep_4', ''],
        ['ep_5', 'tcp://db.prod'],
      ],
    )
    assert.match(rejected[0]!.reason, /not bound to kubernetes \(bindings: public\)/)
    assert.match(rejected[1]!.reason, /bindings: none/)
    assert.match(rejected[2]!.reason, /whitespace/)
    assert.match(rejected[3]!.reason, /no url/)
    assert.match(rejected[4]!.reason, /must give a port/)
  })

  it('refuses a second scheme on the same hostname and port', () => {
    const { services, rejected } = groupEndpoints([
      { id: 'ep_1', url: 'tcp://api.prod:80' },
      { id: 'ep_2', url: 'http://api.prod' },
    ])
    assert.deepEqual(services.map((s) => s.key), ['http://api.prod'])
    assert.deepEqual(rejected, [{ id: 'ep_1', url: 'tcp://api.prod:80', reason: 'api.prod:80 is already served by http://api.prod' }])
  })

  it('hostsOf gives one entry per hostname', () => {
    assert.deepEqual(hostsOf([{ hostname: 'b.x' }, { hostname: 'a.x' }, { hostname: 'b.x' }]), ['a.x', 'b.x'])
    assert.deepEqual(hostsOf([]), [])
  })
})
