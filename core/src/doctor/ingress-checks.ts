import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { chooseIngressEndpoint, type IngressTarget } from '../api/ingress-endpoint.js'
import { DEFAULT_API_BASE_URL } from '../api/ngrok-api-client.js'
import { REGISTRATION_FILES, notYetValidError } from '../registration/registration.js'
import { parseCertificate } from '../cert/parse-certificate.js'
import type { DaemonConfig } from '../config/daemon-config.js'
import type { Check } from '../contracts/check.js'
import { silentLogger } from '../contracts/logger.js'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { IngressDialer, type IngressCredentials } from '../forward/ingress-dialer.js'
import { loadIngressTrust, verifyingAnchor, type IngressTrust } from '../forward/ingress-trust.js'
import { ENDPOINT_CACHE_FILE } from '../daemon/endpoint-poller.js'

/** A doctor check for a failure, with the error's code and hint when it is an NgrokdError. */
export function failedCheck(id: string, e: unknown, summary?: string): Check {
  return {
    id,
    status: 'fail',
    summary: summary ?? (e instanceof Error ? e.message : String(e)).split('\n')[0]!,
    ...(isNgrokdError(e) ? { code: e.code, ...(e.hint ? { hint: e.hint } : {}) } : {}),
  }
}

const TARGET_FROM: Record<IngressTarget['source'], string> = {
  config: 'ingress.endpoint',
  api: 'the saved registration',
  default: 'the documented default (not registered yet)',
}

/** Where doctor dials: the daemon's rule ({@link chooseIngressEndpoint}) over the saved registration. */
async function ingressTarget(config: DaemonConfig): Promise<{ endpoint: string; from: string; source: IngressTarget['source'] }> {
  let saved: string | undefined
  if (!config.ingress.endpoint) {
    try {
      const operator = JSON.parse(await readFile(join(config.stateDir, REGISTRATION_FILES.operator), 'utf8')) as { ingressEndpoint?: unknown }
      if (typeof operator.ingressEndpoint === 'string') saved = operator.ingressEndpoint
    } catch {
      // not registered yet, or not readable: the default
    }
  }
  const { endpoint, source } = chooseIngressEndpoint(config.ingress.endpoint, saved)
  return { endpoint, from: TARGET_FROM[source], source }
}

/** The saved client certificate and key, when this user can read them; else none (the handshake still shows the server's chain). */
async function savedCredentials(stateDir: string): Promise<IngressCredentials> {
  try {
    return {
      certPem: await readFile(join(stateDir, REGISTRATION_FILES.cert), 'utf8'),
      keyPem: await readFile(join(stateDir, REGISTRATION_FILES.key), 'utf8'),
    }
  } catch {
    return { certPem: '', keyPem: '' }
  }
}

/** The saved client certificate's validity by this machine's clock; none when there is no readable certificate. */
async function savedCertificateCheck(stateDir: string): Promise<Check | undefined> {
  const { certPem } = await savedCredentials(stateDir)
  let cert
  try {
    cert = parseCertificate(certPem)
  } catch {
    return undefined // none yet, or damaged: the daemon makes a new one (state.files names a damaged file)
  }
  const now = Date.now()
  const early = notYetValidError(cert, now)
  if (early) return failedCheck('registration.cert', early)
  if (cert.notAfter.getTime() <= now) {
    return { id: 'registration.cert', status: 'warn', summary: `the client certificate expired on ${cert.notAfter.toISOString()}`, hint: 'ngrokd run renews it as it starts' }
  }
  return { id: 'registration.cert', status: 'ok', summary: `client certificate valid from ${cert.notBefore.toISOString()} until ${cert.notAfter.toISOString()}` }
}

/**
 * Trust anchors (`ingress.trust`) and, unless offline, one TLS handshake with the binding ingress
 * (`ingress.tls`) naming the anchor that verified its certificate.
 */
export async function ingressChecks(config: DaemonConfig, { offline }: { offline: boolean }): Promise<Check[]> {
  const checks: Check[] = []
  const certCheck = await savedCertificateCheck(config.stateDir)
  if (certCheck) checks.push(certCheck)
  let trust: IngressTrust
  try {
    trust = await loadIngressTrust({ caFile: config.ingress.caFile, caMode: config.ingress.caMode })
    checks.push({ id: 'ingress.trust', status: 'ok', summary: `ingress trust anchors: ${trust.summary}` })
  } catch (e) {
    checks.push(failedCheck('ingress.trust', e))
    return checks
  }
  if (config.ingress.insecureSkipVerify) {
    checks.push({
      id: 'ingress.verify',
      status: 'warn',
      summary: 'ingress.insecure_skip_verify is on: the ingress certificate is NOT verified',
      hint: 'remove ingress.insecure_skip_verify; ngrok\'s intermediate CA is trusted by default, and ingress.ca_file adds others',
    })
  }
  if (offline) {
    checks.push({ id: 'ingress.tls', status: 'skip', summary: '--offline: the binding ingress was not dialled' })
    return checks
  }
  const { endpoint, from, source } = await ingressTarget(config)
  // the documented default is ngrok's: an API of another host (the simulator, a proxy) names its ingress at registration
  if (source === 'default' && new URL(config.api.url).host !== new URL(DEFAULT_API_BASE_URL).host) {
    checks.push({ id: 'ingress.tls', status: 'skip', summary: `no binding ingress known yet: the API at ${config.api.url} names one when ngrokd registers (doctor dials it then)` })
    return checks
  }
  const credentials = await savedCredentials(config.stateDir)
  const dialer = new IngressDialer({
    logger: silentLogger,
    credentials: () => credentials,
    endpoint: () => endpoint,
    ca: trust.ca,
    caBesideNodeRoots: trust.caBesideNodeRoots,
    insecureSkipVerify: config.ingress.insecureSkipVerify,
    handshakeTimeoutMs: Math.min(config.forwarder.handshakeTimeoutMs, 10_000),
    sessionResumption: false,
    podIdentity: config.ingress.podIdentity, // the ConnRequest the daemon sends: a traffic policy may match on it
  })
  try {
    const probe = await dialer.probe()
    const anchor = verifyingAnchor(probe.chain, trust.anchors)
    const how = probe.authorized ? `verified by ${anchor?.label ?? 'a trusted anchor'}` : 'NOT verified (insecure_skip_verify)'
    checks.push({ id: 'ingress.tls', status: probe.authorized ? 'ok' : 'warn', summary: `binding ingress ${probe.ingress} (from ${from}): ${probe.protocol}, certificate ${how}` })
    checks.push(await connRequestCheck(dialer, credentials, config.stateDir))
  } catch (e) {
    checks.push(failedCheck('ingress.tls', e, `binding ingress ${endpoint} (from ${from}): ${(e as Error).message.split('\n')[0]}`))
  } finally {
    await dialer.close()
  }
  return checks
}

/**
 * One ConnRequest with our certificate, for the first endpoint of the last known list: proves the
 * ingress accepts the certificate and routes to that endpoint (the connection is closed at once).
 */
async function connRequestCheck(dialer: IngressDialer, credentials: IngressCredentials, stateDir: string): Promise<Check> {
  if (!credentials.certPem) return { id: 'ingress.conn-request', status: 'skip', summary: 'not registered yet (no client certificate in the state directory): no ConnRequest sent' }
  const cached = await readFile(join(stateDir, ENDPOINT_CACHE_FILE), 'utf8').then((t) => (JSON.parse(t) as { services?: Array<{ hostname?: unknown; port?: unknown }> }).services?.[0], () => undefined)
  if (typeof cached?.hostname !== 'string' || typeof cached.port !== 'number') {
    return { id: 'ingress.conn-request', status: 'skip', summary: 'no endpoint known yet (the daemon has not polled): no ConnRequest sent' }
  }
  const target = `${cached.hostname}:${cached.port}`
  try {
    const { socket, response } = await dialer.dial({ hostname: cached.hostname, port: cached.port })
    socket.destroy()
    return { id: 'ingress.conn-request', status: 'ok', summary: `ConnRequest for ${target} accepted with our certificate (${response.endpointId}, ${response.proto})` }
  } catch (e) {
    return failedCheck('ingress.conn-request', e, `ConnRequest for ${target}: ${(e as Error).message.split('\n')[0]}`)
  }
}
