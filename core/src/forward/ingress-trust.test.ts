import assert from 'node:assert/strict'
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { X509Certificate } from 'node:crypto'
import tls from 'node:tls'
import { loadIngressTrust, loadTrustRoots, ngrokIntermediateCa, verifyingAnchor } from './ingress-trust.js'
import { createTestPki, type TestPki } from '../testing/test-pki.js'


describe('loadTrustRoots', () => {
  let pki: TestPki
  let dir: string
  before(async () => {
    pki = await createTestPki()
    dir = await mkdtemp(join(tmpdir(), 'ngrokd-trust-roots-'))
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  const configInvalid = (path: string) => (e: unknown) => {
    assert.ok(isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID'), String(e))
    assert.ok(e.message.includes(path), `${e.message} names ${path}`)
    assert.match(e.hint!, /ingress\.ca_file/)
    return true
  }

  it('reads every certificate of a PEM bundle file', async () => {
    const file = join(dir, 'bundle.pem')
    await writeFile(file, `# comment\n${pki.ingressCaPem}\n${pki.otherCaPem}`)
    const roots = await loadTrustRoots(file)
    assert.equal(roots.length, 2)
    assert.equal(roots[0]!.trim(), pki.ingressCaPem.trim())
    assert.equal(roots[1]!.trim(), pki.otherCaPem.trim())
  })

  it('reads *.pem and *.crt of a directory in name order, and nothing else', async () => {
    const d = join(dir, 'certs')
    await mkdir(d)
    await writeFile(join(d, 'b.crt'), pki.otherCaPem)
    await writeFile(join(d, 'a.pem'), pki.ingressCaPem)
    await writeFile(join(d, 'c.txt'), pki.clientCaPem)
    const roots = await loadTrustRoots(d)
    assert.deepEqual(
      roots.map((r) => r.trim()),
      [pki.ingressCaPem.trim(), pki.otherCaPem.trim()],
    )
  })

  it('fails naming the path when it is missing, holds no certificate, or a certificate does not parse', async () => {
    const missing = join(dir, 'missing.pem')
    await assert.rejects(loadTrustRoots(missing), configInvalid(missing))
    const empty = join(dir, 'empty.pem')
    await writeFile(empty, 'not a certificate\n')
    await assert.rejects(loadTrustRoots(empty), configInvalid(empty))
    const broken = join(dir, 'broken.pem')
    await writeFile(broken, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')
    await assert.rejects(loadTrustRoots(broken), configInvalid(broken))
    const emptyDir = join(dir, 'empty-dir')
    await mkdir(emptyDir)
    await assert.rejects(loadTrustRoots(emptyDir), configInvalid(emptyDir))
  })

  it('trusts by default Node\'s roots and ngrok\'s bundled intermediate CA, plus ca_file in add mode', async () => {
    const file = join(dir, 'extra.pem')
    await writeFile(file, pki.chainIntermediatePem)
    const defaults = await loadIngressTrust({})
    // Node's default store: its bundled roots, plus NODE_EXTRA_CA_CERTS where Node can list that store (22.15+)
    const getDefault = (tls as { getCACertificates?: (type: 'default') => string[] }).getCACertificates
    assert.equal(defaults.anchors.filter((a) => a.source === 'node').length, getDefault ? getDefault('default').length : tls.rootCertificates.length)
    assert.deepEqual(defaults.anchors.filter((a) => a.source === 'ngrok').map((a) => a.label), ['ngrok Intermediate CA (bundled with ngrokd)'])
    // the roots stay Node's own store (IngressDialer's caBesideNodeRoots): `ca` holds what is added to them
    assert.equal(defaults.caBesideNodeRoots, true)
    assert.equal(defaults.ca.length, defaults.anchors.filter((a) => a.source !== 'node').length)
    const added = await loadIngressTrust({ caFile: file })
    assert.equal(added.anchors.length, defaults.anchors.length + 1)
    assert.match(added.summary, /Node's \d+ roots \+ ngrok's intermediate CA \+ 1 from ingress\.ca_file/)
    const replaced = await loadIngressTrust({ caFile: file, caMode: 'replace' })
    assert.deepEqual(replaced.anchors.map((a) => a.source), ['ca_file'])
    assert.equal(replaced.caBesideNodeRoots, false)
    assert.equal(replaced.ca.length, 1)
    assert.match(replaced.anchors[0]!.label, /ingress\.ca_file .*extra\.pem: chain-intermediate/)
  })

  it('refuses ca_mode replace without a ca_file', async () => {
    await assert.rejects(loadIngressTrust({ caMode: 'replace' }), (e: unknown) => {
      assert.ok(isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID'))
      assert.match(e.message, /ca_mode is replace but ingress\.ca_file is not set/)
      return true
    })
  })

  it('ships ngrok\'s published intermediate CA (O=ngrok Inc, OU=prod), not self-signed', () => {
    const [pem] = ngrokIntermediateCa()
    const cert = new X509Certificate(pem!)
    assert.equal(cert.fingerprint256, 'CF:CE:8A:27:B7:4E:0C:51:C6:54:73:9A:35:3E:51:C1:35:26:0B:5B:97:7D:29:DF:67:03:8B:E7:EF:6F:F8:47')
    assert.match(cert.subject, /O=ngrok Inc\nOU=prod\nCN=Intermediate CA/)
    assert.match(cert.issuer, /CN=Root CA/)
    assert.equal(cert.ca, true)
  })

  it('names the anchor that verified a chain: the intermediate that issued the leaf, not a root', async () => {
    const file = join(dir, 'anchor.pem')
    await writeFile(file, pki.chainIntermediatePem)
    const trust = await loadIngressTrust({ caFile: file })
    const [leaf, intermediate] = pki.chainedIngress.certPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)!.map((p) => new X509Certificate(p))
    assert.equal(verifyingAnchor([leaf!, intermediate!], trust.anchors)?.source, 'ca_file')
    assert.equal(verifyingAnchor([leaf!], trust.anchors)?.label, `ingress.ca_file ${file}: chain-intermediate`)
    assert.equal(verifyingAnchor([new X509Certificate(pki.otherIngress.certPem)], trust.anchors), undefined)
  })
})
