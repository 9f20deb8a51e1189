import { X509Certificate } from 'node:crypto'
import { readFile, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { NgrokdError } from '../errors/ngrokd-error.js'

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g

/** The PEM certificate blocks in `text`, each checked to parse; throws the X509Certificate error otherwise. */
export function pemCertificates(text: string): string[] {
  const out: string[] = []
  for (const pem of text.match(PEM_CERT) ?? []) {
    new X509Certificate(pem)
    out.push(`${pem}\n`)
  }
  return out
}
const HINT = 'ingress.ca_file must name a PEM file with one or more CA certificates, or a directory of *.pem / *.crt files'

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
      hint: HINT,
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
        hint: HINT,
      })
    }
    try {
      roots.push(...pemCertificates(text))
    } catch (cause) {
      throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `ingress CA ${file} holds a certificate that does not parse: ${(cause as Error).message}`, {
        cause,
        hint: HINT,
      })
    }
  }
  if (roots.length === 0) {
    throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `ingress CA ${caFileOrDir} holds no PEM certificate`, { hint: HINT })
  }
  return roots
}
