import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { readFile, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import tls from 'node:tls'
import { fileURLToPath } from 'node:url'
import { NgrokdError } from '../errors/ngrokd-error.js'

/**
 * ngrok's binding-ingress intermediate CA (`O=ngrok Inc, OU=prod, CN=Intermediate CA`), shipped with
 * ngrokd: core/certs/ (package.json "imports"). ngrok does not
 * publish the root above it, so it is an anchor with partial chains allowed (PROTOCOL.md §4.1).
 */
export const NGROK_INTERMEDIATE_CA_FILE = fileURLToPath(import.meta.resolve('#ngrok-intermediate-ca'))

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g

/** True when `text` holds at least one PEM certificate block (its contents are not parsed). */
export function hasPemCertificate(text: string): boolean {
  return new RegExp(PEM_CERT.source).test(text) // PEM_CERT is global: a fresh one keeps no lastIndex
}

/** The PEM certificate blocks in `text`, each checked to parse; throws the X509Certificate error otherwise. */
export function pemCertificates(text: string): string[] {
  const out: string[] = []
  for (const pem of text.match(PEM_CERT) ?? []) {
    new X509Certificate(pem)
    out.push(`${pem}\n`)
  }
  return out
}
const CA_FILE_HINT = 'ingress.ca_file must name a PEM file with one or more CA certificates, or a directory of *.pem / *.crt files'

/**
 * Reads the trust roots for the binding ingress (`ingress.ca_file`): a file with one or more PEM
 * certificates, or a directory whose `*.pem` and `*.crt` files are read in name order. Every
 * certificate must parse. Returns one PEM string per certificate, for {@link IngressDialer}'s `ca`.
 *
 * ```ts
 * const ca = config.ingress.caFile ? await loadTrustRoots(config.ingress.caFile) : undefined
 * ```
 */
export async function loadTrustRoots(caFileOrDir: string): Promise<string[]> {
  let files: string[]
  try {
    const st = await stat(caFileOrDir)
    files = st.isDirectory()
      ? (await readdir(caFileOrDir))
          .filter((n) => /\.(pem|crt)$/i.test(n))
          .sort()
          .map((n) => join(caFileOrDir, n))
      : [caFileOrDir]
  } catch (cause) {
    throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `ingress CA ${caFileOrDir} cannot be read: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`, {
      cause,
      hint: CA_FILE_HINT,
    })
  }
  const roots: string[] = []
  for (const file of files) {
    let text: string
    try {
      text = await readFile(file, 'utf8')
    } catch (cause) {
      throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `ingress CA ${file} cannot be read: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`, {
        cause,
        hint: CA_FILE_HINT,
      })
    }
    try {
      roots.push(...pemCertificates(text))
    } catch (cause) {
      throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `ingress CA ${file} holds a certificate that does not parse: ${(cause as Error).message}`, {
        cause,
        hint: CA_FILE_HINT,
      })
    }
  }
  if (roots.length === 0) {
    throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `ingress CA ${caFileOrDir} holds no PEM certificate`, { hint: CA_FILE_HINT })
  }
  return roots
}

/** Where a trust anchor comes from. */
export type TrustAnchorSource = 'node' | 'ngrok' | 'ca_file'

/** One certificate trusted to verify the ingress, and how to name it in logs, status and doctor. */
export interface TrustAnchor {
  source: TrustAnchorSource
  /** `ngrok Intermediate CA (bundled)`, `Node's root store: ISRG Root X1`, `ingress.ca_file /etc/…: My CA`. */
  label: string
  certificate: X509Certificate
}

/** `ingress.ca_mode`: `add` trusts ca_file beside the defaults, `replace` trusts ca_file alone. */
export type CaMode = 'add' | 'replace'

/** What the ingress's certificate is verified against: PEMs for `tls` and the anchors they are. */
export interface IngressTrust {
  /** PEM certificates for `tls.createSecureContext({ ca, allowPartialTrustChain: true })`: with `caBesideNodeRoots`, those beside Node's roots. */
  ca: string[]
  /** `add`: `ca` is trusted beside Node's default roots (IngressDialer's option of that name), which it does not list. */
  caBesideNodeRoots: boolean
  /** Each certificate of `ca`, parsed and named (on first read). */
  readonly anchors: TrustAnchor[]
  /** One line for logs and doctor: `Node's 146 roots + ngrok's intermediate CA + 1 from ingress.ca_file (/etc/x.pem)`. */
  summary: string
}

/**
 * Node's default CA list: `tls.getCACertificates('default')` where it exists (Node ≥ 22.15 / 23.10;
 * it honours NODE_EXTRA_CA_CERTS and --use-system-ca), else the bundled `tls.rootCertificates`.
 */
function nodeDefaultRoots(): readonly string[] {
  const get = (tls as { getCACertificates?: (type: 'default') => string[] }).getCACertificates
  return typeof get === 'function' ? get('default') : tls.rootCertificates
}

let bundledNgrokCa: string[] | undefined
/** The bundled ngrok intermediate, read once. A damaged install is a bug to report, not a config error. */
export function ngrokIntermediateCa(): string[] {
  bundledNgrokCa ??= pemCertificates(readFileSync(NGROK_INTERMEDIATE_CA_FILE, 'utf8'))
  if (bundledNgrokCa.length === 0) throw new Error(`${NGROK_INTERMEDIATE_CA_FILE} holds no certificate: the ngrokd install is damaged`)
  return bundledNgrokCa
}

function nameOf(cert: X509Certificate): string {
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1]
  return cn ?? cert.subject.replace(/\n/g, ', ')
}

/**
 * The ingress's trust anchors from configuration (`ingress.ca_file`, `ingress.ca_mode`):
 * by default Node's roots and ngrok's bundled intermediate CA, plus ca_file's certificates;
 * with `replace`, ca_file's alone. Throws NGROKD_ERR_CONFIG_INVALID for an unreadable ca_file, or
 * `replace` without one.
 *
 * ```ts
 * const trust = await loadIngressTrust({ caFile: config.ingress.caFile, caMode: config.ingress.caMode })
 * new IngressDialer({ ..., ca: trust.ca, caBesideNodeRoots: trust.caBesideNodeRoots })
 * ```
 */
export async function loadIngressTrust({ caFile, caMode = 'add' }: { caFile?: string; caMode?: CaMode }): Promise<IngressTrust> {
  if (caMode === 'replace' && !caFile) {
    throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', 'ingress.ca_mode is replace but ingress.ca_file is not set: nothing would be trusted', {
      hint: 'set ingress.ca_file to the CA that signs the ingress certificate, or set ingress.ca_mode to add',
    })
  }
  const groups: { source: TrustAnchorSource; pems: readonly string[]; label: (cert: X509Certificate) => string }[] = []
  const parts: string[] = []
  if (caMode === 'add') {
    const roots = nodeDefaultRoots()
    groups.push({ source: 'node', pems: roots, label: (c) => `Node's root store: ${nameOf(c)}` })
    groups.push({ source: 'ngrok', pems: ngrokIntermediateCa(), label: () => `ngrok Intermediate CA (bundled with ngrokd)` })
    parts.push(`Node's ${roots.length} roots`, `ngrok's intermediate CA`)
  }
  if (caFile) {
    const fromFile = await loadTrustRoots(caFile)
    groups.push({ source: 'ca_file', pems: fromFile, label: (c) => `ingress.ca_file ${caFile}: ${nameOf(c)}` })
    parts.push(`${fromFile.length} from ingress.ca_file (${caFile})`)
  }
  // Parsing Node's ~145 roots into X509Certificates took ~20 ms of every start: only doctor reads the anchors.
  let anchors: TrustAnchor[] | undefined
  return {
    ca: groups.filter((g) => g.source !== 'node').flatMap((g) => g.pems),
    caBesideNodeRoots: caMode === 'add',
    get anchors() {
      anchors ??= groups.flatMap(({ source, pems, label }) =>
        pems.map((pem) => {
          const certificate = new X509Certificate(pem)
          return { source, label: label(certificate), certificate }
        }),
      )
      return anchors
    },
    summary: parts.join(' + '),
  }
}

/**
 * The anchor that verified a peer's chain (`socket.getPeerX509Certificate()` and what it sent):
 * the first certificate of the chain that is an anchor itself, or that an anchor issued.
 * Undefined when none is (the connection was not verified, or skipped verification).
 */
export function verifyingAnchor(chain: readonly X509Certificate[], anchors: readonly TrustAnchor[]): TrustAnchor | undefined {
  for (const cert of chain) {
    const same = anchors.find((a) => a.certificate.fingerprint256 === cert.fingerprint256)
    if (same) return same
    const issuer = anchors.find((a) => cert.checkIssued(a.certificate) && cert.verify(a.certificate.publicKey))
    if (issuer) return issuer
  }
  return undefined
}

/** The certificates a TLS peer presented, leaf first, as Node exposes them (`getPeerCertificate(true)`). */
export function peerChain(socket: tls.TLSSocket): X509Certificate[] {
  const chain: X509Certificate[] = []
  const seen = new Set<string>()
  for (let c: tls.DetailedPeerCertificate | undefined = socket.getPeerCertificate(true); c?.raw && !seen.has(c.fingerprint256); c = c.issuerCertificate) {
    seen.add(c.fingerprint256)
    chain.push(new X509Certificate(c.raw))
  }
  return chain
}
