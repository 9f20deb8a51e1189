import assert from 'node:assert/strict'
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { loadTrustRoots } from './load-trust-roots.js'
import { createTestPki, hasOpenssl, type TestPki } from './test-pki.js'

const skip = (await hasOpenssl()) ? false : 'openssl is not installed (needed to make the test certificates)'

describe('loadTrustRoots', { skip }, () => {
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
})
