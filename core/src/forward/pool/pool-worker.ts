/**
 * The worker side of the pool: one tinypool task per forwarded connection. Runs in a worker thread only.
 *
 * The task takes the accepted socket's descriptor (claiming it in shared memory first, see
 * pool-protocol.ts), wraps it in a `net.Socket`, dials the ingress with this worker's own IngressDialer
 * and carries the bytes with the same code as the in-thread forwarder ({@link CarriedConnection}).
 * It resolves when both sides have closed; it never rejects after the claim.
 */
import { closeSync } from 'node:fs'
import net from 'node:net'
import { performance } from 'node:perf_hooks'
import { BroadcastChannel, isMainThread, workerData as rawWorkerData } from 'node:worker_threads'
import type { Logger } from '../../contracts/logger.js'
import { collectYoungGarbageEvery } from '../../util/young-generation.js'
import { CarriedConnection, type CarryOutcome } from '../carry-connection.js'
import { resetSocket } from '../socket-state.js'
import { IngressDialer, type IngressCredentials } from '../ingress-dialer.js'
import {
  BUFFERED,
  BYTES_IN,
  BYTES_OUT,
  CLIENT_CLOSED,
  FD_CLAIMED,
  FD_HANDED,
  HANDSHAKE_MS,
  OWNER,
  PUBLISH_EVERY_MS,
  type PoolTask,
  type PoolTaskError,
  type PoolTaskResult,
  type PoolWorkerData,
  type ToMain,
  type ToWorkers,
} from './pool-protocol.js'

interface Open {
  readonly client: net.Socket
  readonly f64: Float64Array
  carried?: CarriedConnection
  cutRequested: boolean
}

// tinypool passes [its private data, our workerData]
const data = (Array.isArray(rawWorkerData) ? rawWorkerData[1] : rawWorkerData) as PoolWorkerData | undefined
const open = new Map<number, Open>()
let channel: BroadcastChannel | undefined
let credentials: { version: number; value: IngressCredentials } | undefined
let dialer: { version: number; dialer: IngressDialer } | undefined
let endpoint = ''
const credentialWaiters: Array<{ version: number; resolve: () => void }> = []
let publisher: NodeJS.Timeout | undefined

function post(message: ToMain): void {
  channel?.postMessage(message)
}

/** Relays info and above to the main thread's logger; debug and trace stay here (they would cost a message each). */
const workerLogger: Logger = {
  trace() {},
  debug() {},
  info: (a: object | string, b?: string) => relay('info', a, b),
  warn: (a: object | string, b?: string) => relay('warn', a, b),
  error: (a: object | string, b?: string) => relay('error', a, b),
  fatal: (a: object | string, b?: string) => relay('fatal', a, b),
  child: () => workerLogger,
} as Logger

function relay(level: 'info' | 'warn' | 'error' | 'fatal', a: object | string, b?: string): void {
  if (typeof a === 'string') {
    post({ t: 'log', level, obj: {}, msg: a })
    return
  }
  let obj: object
  try {
    obj = JSON.parse(JSON.stringify(a)) as object // only what survives JSON crosses (no functions, sockets)
  } catch {
    obj = {}
  }
  post({ t: 'log', level, obj, msg: b ?? '' })
}

function setUp(): void {
  if (channel || !data) return
  collectYoungGarbageEvery(data.youngGcEveryMib)
  channel = new BroadcastChannel(data.channel)
  channel.unref()
  channel.onmessage = (event) => {
    const message = (event as { data: ToWorkers }).data
    if (message.t === 'credentials') {
      if (!credentials || message.version > credentials.version) {
        credentials = { version: message.version, value: { certPem: message.certPem, keyPem: message.keyPem } }
      }
      for (let i = credentialWaiters.length - 1; i >= 0; i--) {
        if (credentialWaiters[i]!.version <= message.version) credentialWaiters.splice(i, 1)[0]!.resolve()
      }
    } else if (message.t === 'cut') {
      for (const id of message.ids) cut(open.get(id))
    }
  }
  publisher = setInterval(publish, PUBLISH_EVERY_MS)
  publisher.unref()
}

function cut(o: Open | undefined): void {
  if (!o) return
  o.cutRequested = true
  if (o.carried) o.carried.cut()
  else resetSocket(o.client)
}

/** Byte counts of open connections into shared memory, for the main thread's `listeners()`. */
function publish(): void {
  for (const o of open.values()) {
    o.f64[BYTES_IN] = o.client.bytesRead
    o.f64[BYTES_OUT] = o.client.bytesWritten
    o.f64[BUFFERED] = o.carried ? o.carried.bufferedBytes() : o.client.readableLength
  }
}

/** Waits until credentials of at least `version` arrived (asking the main thread once). */
async function credentialsAtLeast(version: number): Promise<IngressDialer> {
  if (!credentials || credentials.version < version) {
    const arrived = new Promise<void>((resolve) => credentialWaiters.push({ version, resolve }))
    post({ t: 'need-credentials', version })
    await arrived
  }
  const current = credentials!
  if (!dialer || dialer.version !== current.version) {
    // one dialer per credentials version: whatever it caches (secure context, TLS sessions) belongs to that certificate
    const value = current.value
    const previous = dialer?.dialer as { close?: () => Promise<void> } | undefined
    void previous?.close?.() // connections dialled ahead with the old certificate; dials under way finish
    dialer = {
      version: current.version,
      dialer: new IngressDialer({ ...data!.dialer, logger: workerLogger, credentials: () => value, endpoint: () => endpoint }),
    }
  }
  return dialer.dialer
}

function describeError(err: unknown, side: PoolTaskError['side']): PoolTaskError {
  const e = err as { message?: string; code?: unknown; ngrokCode?: unknown; hint?: unknown }
  return {
    message: typeof e?.message === 'string' ? e.message : String(err),
    code: typeof e?.code === 'string' ? e.code : undefined,
    ngrokCode: typeof e?.ngrokCode === 'string' ? e.ngrokCode : undefined,
    hint: typeof e?.hint === 'string' ? e.hint : undefined,
    side,
  }
}

export default function forwardConnection(task: PoolTask): PoolTaskResult | Promise<PoolTaskResult> {
  if (isMainThread) throw new Error('pool-worker runs in a worker thread only')
  setUp()
  const owner = new Int32Array(task.shared, 0, 2)
  if (Atomics.compareExchange(owner, OWNER, FD_HANDED, FD_CLAIMED) !== FD_HANDED) {
    return { claimed: false, bytesIn: 0, bytesOut: 0 } // the main thread took the fd back and closed it
  }
  // from here on this worker owns the fd: the socket closes it, or closeSync below does
  let client: net.Socket
  try {
    client = new net.Socket({ fd: task.fd, allowHalfOpen: true, readable: true, writable: true, pauseOnCreate: true } as net.SocketConstructorOpts)
  } catch (err) {
    try {
      closeSync(task.fd)
    } catch {
      // already closed
    }
    return { claimed: true, bytesIn: 0, bytesOut: 0, error: describeError(err, 'client') }
  }
  client.setNoDelay(true)
  client.on('error', () => {}) // until CarriedConnection listens: errors of a socket nobody reads yet end in its close
  const f64 = new Float64Array(task.shared)
  client.once('close', () => {
    // final counts first, then the flag: the main thread frees the slot at once rather than when the result comes
    f64[BYTES_IN] = client.bytesRead
    f64[BYTES_OUT] = client.bytesWritten
    Atomics.store(owner, CLIENT_CLOSED, 1)
  })
  f64[HANDSHAKE_MS] = -1
  const o: Open = { client, f64, cutRequested: false }
  open.set(task.id, o) // in the same synchronous block as the claim: a later 'cut' message finds it
  return carry(task, o).finally(() => open.delete(task.id))
}

async function carry(task: PoolTask, o: Open): Promise<PoolTaskResult> {
  const { client, f64 } = o
  let d: IngressDialer
  try {
    d = await credentialsAtLeast(task.credentialsVersion)
  } catch (err) {
    resetSocket(client)
    await closedOf(client)
    return { claimed: true, bytesIn: 0, bytesOut: 0, error: describeError(err, 'dial') }
  }
  if (o.cutRequested || client.destroyed) {
    resetSocket(client)
    await closedOf(client)
    return { claimed: true, bytesIn: 0, bytesOut: 0 }
  }
  // IngressDialer.dial() reads endpoint() before its first await, and the constructor below calls dial()
  endpoint = task.endpoint
  o.carried = new CarriedConnection({
    client,
    dialer: d,
    hostname: task.hostname,
    port: task.port,
    idleTimeoutMs: data!.idleTimeoutMs,
    firstByteTimeoutMs: data!.firstByteTimeoutMs,
    rewriteHost: task.rewriteHost,
    logger: workerLogger,
    acceptedAt: task.acceptedAt - performance.timeOrigin,
    onHandshake: (ms) => {
      f64[HANDSHAKE_MS] = ms
    },
  })
  const outcome: CarryOutcome = await o.carried.done
  f64[BYTES_IN] = outcome.bytesIn
  f64[BYTES_OUT] = outcome.bytesOut
  f64[BUFFERED] = 0
  return {
    claimed: true,
    bytesIn: outcome.bytesIn,
    bytesOut: outcome.bytesOut,
    handshakeMs: outcome.handshakeMs,
    error: outcome.side ? describeError(outcome.error, outcome.side) : undefined,
  }
}

function closedOf(s: net.Socket): Promise<void> {
  return s.closed ? Promise.resolve() : new Promise((resolve) => s.once('close', () => resolve()))
}
