import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** A certificate and its private key, PEM. */
export interface TestKeyPair {
  certPem: string
  keyPem: string
}

/** Throwaway PKI for the forwarder tests: one CA per role, so each trust decision can fail on its own. */
export interface TestPki {
  /** Signs the fake ingress's server certificate. */
  ingressCaPem: string
  /** The fake ingress: SAN `DNS:ingress.test`, `IP:127.0.0.1`. */
  ingress: TestKeyPair
  /** Signs the client certificates the fake ingress accepts. */
  clientCaPem: string
  /** Two client certificates from `clientCaPem` (serials differ): rotation tests switch between them. */
  clientA: TestKeyPair
  clientB: TestKeyPair
  /**
   * ngrok's shape: a root that clients never get, an intermediate CA it signed, and an ingress
   * certificate from the intermediate (`certPem` holds leaf + intermediate, as the server sends them).
   */
  chainRootPem: string
  chainIntermediatePem: string
  chainedIngress: TestKeyPair
  /** A CA nobody trusts, and a client certificate and server certificate signed by it. */
  otherCaPem: string
  otherClient: TestKeyPair
  otherIngress: TestKeyPair
}

/** Whether `openssl` can be run (Debian ships it; the tests skip with a reason without it). */
export async function hasOpenssl(): Promise<boolean> {
  try {
    await run('openssl', ['version'])
    return true
  } catch {
    return false
  }
}

/**
 * Makes {@link TestPki} with the `openssl` binary in a temp dir that is removed before returning.
 * ECDSA P-256 keys (the kind ngrok's operator uses, PROTOCOL.md §3), valid for one day.
 *
 * ```ts
 * const pki = await createTestPki()
 * tls.createServer({ cert: pki.ingress.certPem, key: pki.ingress.keyPem, ca: pki.clientCaPem, requestCert: true })
 * ```
 */
export async function createTestPki(): Promise<TestPki> {
  const dir = await mkdtemp(join(tmpdir(), 'ngrokd-test-pki-'))
  const openssl = async (...args: string[]): Promise<void> => {
    await run('openssl', args, { cwd: dir })
  }
  const read = (name: string): Promise<string> => readFile(join(dir, name), 'utf8')
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']

  async function ca(name: string): Promise<string> {
    await openssl('req', '-x509', ...ec, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-subj', `/CN=${name}`, '-days', '1')
    return read(`${name}.crt`)
  }
  async function leaf(caName: string, name: string, ext: string): Promise<TestKeyPair> {
    await writeFile(join(dir, `${name}.ext`), ext)
    await openssl('req', '-new', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`)
    await openssl(
      'x509', '-req', '-in', `${name}.csr`, '-CA', `${caName}.crt`, '-CAkey', `${caName}.key`,
      '-set_serial', `0x${Buffer.from(name).toString('hex')}`, '-days', '1', '-extfile', `${name}.ext`, '-out', `${name}.crt`,
    )
    return { certPem: await read(`${name}.crt`), keyPem: await read(`${name}.key`) }
  }
  async function intermediate(rootName: string, name: string): Promise<string> {
    await writeFile(join(dir, `${name}.ext`), 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n')
    await openssl('req', '-new', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/O=test/OU=prod/CN=${name}`)
    await openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${rootName}.crt`, '-CAkey', `${rootName}.key`, '-set_serial', '0x1a', '-days', '1', '-extfile', `${name}.ext`, '-out', `${name}.crt`)
    return read(`${name}.crt`)
  }
  const serverExt = 'subjectAltName=DNS:ingress.test,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n'
  const clientExt = 'extendedKeyUsage=clientAuth\n'
  try {
    const ingressCaPem = await ca('ingress-ca')
    const clientCaPem = await ca('client-ca')
    const otherCaPem = await ca('other-ca')
    const chainRootPem = await ca('chain-root')
    const chainIntermediatePem = await intermediate('chain-root', 'chain-intermediate')
    const chainedLeaf = await leaf('chain-intermediate', 'chained-ingress', serverExt)
    return {
      chainRootPem,
      chainIntermediatePem,
      chainedIngress: { certPem: chainedLeaf.certPem + chainIntermediatePem, keyPem: chainedLeaf.keyPem },
      ingressCaPem,
      ingress: await leaf('ingress-ca', 'ingress', serverExt),
      clientCaPem,
      clientA: await leaf('client-ca', 'client-a', clientExt),
      clientB: await leaf('client-ca', 'client-b', clientExt),
      otherCaPem,
      otherClient: await leaf('other-ca', 'other-client', clientExt),
      otherIngress: await leaf('other-ca', 'other-ingress', serverExt),
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
