import { NgrokdError } from '@ngrokd/core'
import type { ApiFault, IngressFault } from './types.js'

interface Armed<F> {
  fault: F
  remaining: number
}

function arm<F extends { count?: number }>(fault: F): Armed<F> {
  const count = fault.count ?? Number.POSITIVE_INFINITY
  if (!(count > 0)) throw badFault(`count must be positive, got ${fault.count}`)
  return { fault, remaining: count }
}

function badFault(why: string): NgrokdError {
  return new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `simulator: bad fault: ${why}`, {
    hint: 'see ApiFault and IngressFault in the simulator types',
  })
}

/** Takes the first armed fault that matches and counts it down. */
function take<F>(list: Array<Armed<F>>, match: (f: F) => boolean): F | undefined {
  const i = list.findIndex((a) => match(a.fault))
  if (i < 0) return undefined
  const a = list[i]!
  if (--a.remaining <= 0) list.splice(i, 1)
  return a.fault
}

/** Injected faults, consumed in the order they were added. */
export class FaultBook {
  private api: Array<Armed<ApiFault>> = []
  private ingress: Array<Armed<IngressFault>> = []

  addApi(fault: ApiFault): void {
    if (typeof fault !== 'object' || fault === null) throw badFault('a fault is an object with a kind')
    if (fault.kind === 'latency' && !(fault.ms >= 0)) throw badFault('latency needs ms >= 0')
    if (fault.kind === 'server-error' && fault.status !== undefined && !(fault.status >= 500 && fault.status <= 599)) {
      throw badFault('server-error status must be 5xx')
    }
    if (!['rate-limit', 'server-error', 'latency'].includes(fault.kind)) throw badFault(`unknown api fault ${String(fault.kind)}`)
    if (fault.method !== undefined && !/^[A-Za-z]+$/.test(String(fault.method))) throw badFault(`method must be an HTTP method, got ${JSON.stringify(fault.method)}`)
    this.api.push(arm(fault))
  }

  addIngress(fault: IngressFault): void {
    if (typeof fault !== 'object' || fault === null) throw badFault('a fault is an object with a kind')
    if (fault.kind === 'refuse' && !fault.host) throw badFault('refuse needs a host')
    if (fault.kind === 'handshake-delay' && !(fault.ms >= 0)) throw badFault('handshake-delay needs ms >= 0')
    if (fault.kind === 'cut' && !(fault.afterBytes >= 0)) throw badFault('cut needs afterBytes >= 0')
    if (!['refuse', 'handshake-delay', 'cut'].includes(fault.kind)) throw badFault(`unknown ingress fault ${String(fault.kind)}`)
    this.ingress.push(arm(fault))
  }

  reset(): void {
    this.api = []
    this.ingress = []
  }

  /** The latency and the failure (if any) for one API request. */
  takeApi(method: string, path: string): { latencyMs: number; failure?: Extract<ApiFault, { kind: 'rate-limit' | 'server-error' }> } {
    const applies = (f: ApiFault) =>
      (f.pathPrefix === undefined || path.startsWith(f.pathPrefix)) && (f.method === undefined || f.method.toUpperCase() === method.toUpperCase())
    const latency = take(this.api, (f) => f.kind === 'latency' && applies(f)) as Extract<ApiFault, { kind: 'latency' }> | undefined
    const failure = take(this.api, (f) => f.kind !== 'latency' && applies(f)) as
      | Extract<ApiFault, { kind: 'rate-limit' | 'server-error' }>
      | undefined
    return failure ? { latencyMs: latency?.ms ?? 0, failure } : { latencyMs: latency?.ms ?? 0 }
  }

  takeHandshakeDelay(): number {
    const f = take(this.ingress, (f) => f.kind === 'handshake-delay') as Extract<IngressFault, { kind: 'handshake-delay' }> | undefined
    return f?.ms ?? 0
  }

  takeRefusal(host: string, port: number): Extract<IngressFault, { kind: 'refuse' }> | undefined {
    return take(
      this.ingress,
      (f) => f.kind === 'refuse' && f.host.toLowerCase() === host.toLowerCase() && (f.port === undefined || f.port === port),
    ) as Extract<IngressFault, { kind: 'refuse' }> | undefined
  }

  takeCut(host: string): number | undefined {
    const f = take(
      this.ingress,
      (f) => f.kind === 'cut' && (f.host === undefined || f.host.toLowerCase() === host.toLowerCase()),
    ) as Extract<IngressFault, { kind: 'cut' }> | undefined
    return f?.afterBytes
  }
}
