import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { DEFAULT_INGRESS_ENDPOINT, normalizeIngressEndpoint } from '../api/ingress-endpoint.js'
import { REGISTRATION_FILES } from '../registration/registration.js'
import type { DaemonConfig } from '../config/daemon-config.js'
import type { Check } from '../contracts/check.js'
import { silentLogger } from '../contracts/logger.js'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { IngressDialer, type IngressCredentials } from '../forward/ingress-dialer.js'
import { loadIngressTrust, verifyingAnchor, type IngressTrust } from '../forward/ingress-trust.js'

/** A doctor check for a failure, with the error's code and hint when it is an NgrokdError. */
export function failedCheck(id: string, e: unknown, summary?: string): Check {
  return {
    id,
    status: 'fail',
    summary: summary ?? (e instanceof Error ? e.message : String(e)).split('\n')[0]!,
    ...(isNgrokdError(e) ? { code: e.code, ...(e.hint ? { hint: e.hint } : {}) } : {}),
  }
}

/** Where doctor dials: `ingress.endpoint`, else the saved registration's, else the documented default. */
async function ingressTarget(config: DaemonConfig): Promise<{ endpoint: string; from: string }> {
  if (config.ingress.endpoint) return { endpoint: normalizeIngressEndpoint(config.ingress.endpoint), from: 'ingress.endpoint' }
  try {
    const saved = JSON.parse(await readFile(join(config.stateDir, REGISTRATION_FILES.operator), 'utf8')) as { ingressEndpoint?: unknown }
    if (typeof saved.ingressEndpoint === 'string' && saved.ingressEndpoint) return { endpoint: normalizeIngressEndpoint(saved.ingressEndpoint), from: 'the saved registration' }
  } catch {
    // not registered yet, or not readable: the default
  }
  return { endpoint: DEFAULT_INGRESS_ENDPOINT, from: 'the documented default (not registered yet)' }
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

/**
 * Trust anchors (`ingress.trust`) and, unless offline, one TLS handshake with the binding ingress
 * (`ingress.tls`) naming the anchor that verified its certificate.
 */
export async function ingressChecks(config: DaemonConfig, { offline }: { offline: boolean }): Promise<Check[]> {
  const checks: Check[] = []
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
  const { endpoint, from } = await ingressTarget(config)
  const credentials = await savedCredentials(config.stateDir)
  const dialer = new IngressDialer({
    logger: silentLogger,
    credentials: () => credentials,
    endpoint: () => endpoint,
    ca: trust.ca,
    insecureSkipVerify: config.ingress.insecureSkipVerify,
    handshakeTimeoutMs: Math.min(config.forwarder.handshakeTimeoutMs, 10_000),
    sessionResumption: false,
  })
  try {
    const probe = await dialer.probe()
    const anchor = verifyingAnchor(probe.chain, trust.anchors)
    const how = probe.authorized ? `verified by ${anchor?.label ?? 'a trusted anchor'}` : 'NOT verified (insecure_skip_verify)'
    checks.push({ id: 'ingress.tls', status: probe.authorized ? 'ok' : 'warn', summary: `binding ingress ${probe.ingress} (from ${from}): ${probe.protocol}, certificate ${how}` })
  } catch (e) {
    checks.push(failedCheck('ingress.tls', e, `binding ingress ${endpoint} (from ${from}): ${(e as Error).message.split('\n')[0]}`))
  } finally {
    await dialer.close()
  }
  return checks
}
