/**
 * Request/reply over a netlink socket: sequence numbers, ACK matching, dumps and batches. Pure
 * logic over a {@link NetlinkTransport}, so it is unit-tested against a fake kernel on any OS.
 */
import { LINUX_ERRNO } from './errno.js'
import { NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_MULTI, NLMSG_DONE, NLMSG_ERROR } from './constants.js'
import { decodeDone, decodeError, parseMessages, type NetlinkMessage } from './messages.js'
import { errnoOf, netlinkError } from './netlink-error.js'

/** What {@link RouteSocket} needs from a socket (implemented by `NetlinkSocket` in ffi/libc.ts). */
export interface NetlinkTransport {
  /** Effective SO_RCVBUF in bytes; bounds how many ACKs may be outstanding. */
  readonly receiveBufferSize: number
  send(buf: Buffer): Promise<void>
  /** One datagram into `buf`: its length, or -1 when nothing is queued. Throws ENOBUFS on overrun. */
  recv(buf: Buffer): number
  waitReadable(timeoutMs: number): Promise<boolean>
  close(): void
}

export interface RouteSocketOptions {
  /** How long to wait for the kernel's answer to one send before failing with ETIMEDOUT. */
  timeoutMs?: number
  /** Upper bound of one send() in a batch. */
  maxSendBytes?: number
}

export interface RequestResult {
  /** 0, or the positive errno of the NLMSG_ERROR / NLMSG_DONE that ended the request. */
  errno: number
  /** The kernel's extended-ack text, when it sent one. */
  kernelMessage?: string
  /** Every reply before the ACK / NLMSG_DONE (dump parts, a GET's answer). */
  replies: NetlinkMessage[]
}

export interface BatchReply {
  errno: number
  kernelMessage?: string
}

/** Read buffer: dump datagrams are at most 32 KiB (netlink_recvmsg caps max_recvmsg_len). */
const RECEIVE_BYTES = 64 * 1024
/**
 * Receive-buffer bytes to budget per queued ACK. Each ACK is its own skb; on Linux 6.18 a
 * 212,992-byte buffer held 250 of them (~850 B each) before the kernel dropped the rest with
 * ENOBUFS. 1,280 leaves a 50% margin; an overrun anyway is retried with smaller chunks.
 */
export const ACK_BUDGET_BYTES = 1280
const DUMP_ATTEMPTS = 3
/** Datagrams read between turns of the event loop (~2 ms of work; 1,600 ACKs in a row took 35 ms). */
const YIELD_EVERY = 128

/**
 * One netlink conversation at a time per socket (calls queue up), so replies are always matched to
 * the request that is in flight. Sequence numbers start at 1 and never repeat within 2^32 requests.
 */
export class RouteSocket {
  readonly #transport: NetlinkTransport
  readonly #timeoutMs: number
  readonly #maxSendBytes: number
  readonly #rbuf = Buffer.alloc(RECEIVE_BYTES)
  #seq = 0
  #chain: Promise<unknown> = Promise.resolve()
  /** Counters for benchmarks and tests: sends, datagrams read, and times the queue was empty. */
  readonly stats = { sends: 0, datagrams: 0, waits: 0, overruns: 0 }

  constructor(transport: NetlinkTransport, { timeoutMs = 5000, maxSendBytes = 64 * 1024 }: RouteSocketOptions = {}) {
    this.#transport = transport
    this.#timeoutMs = timeoutMs
    this.#maxSendBytes = maxSendBytes
  }

  /** ACKs that may be outstanding at once without overrunning the receive buffer. */
  get maxOutstanding(): number {
    return Math.max(1, Math.floor(this.#transport.receiveBufferSize / ACK_BUDGET_BYTES))
  }

  /**
   * Sends one request and collects its replies until the ACK (NLMSG_ERROR), NLMSG_DONE, or — for a
   * GET without NLM_F_ACK — its single answer. Kernel errors are returned, not thrown.
   */
  request(encode: (seq: number) => Buffer, { what }: { what: string }): Promise<RequestResult> {
    return this.#exclusive(() => this.#request(encode, what))
  }

  /** A dump (NLM_F_DUMP): all parts, retried when the kernel flags it inconsistent (NLM_F_DUMP_INTR). */
  dump(encode: (seq: number) => Buffer, { what }: { what: string }): Promise<NetlinkMessage[]> {
    return this.#exclusive(async () => {
      for (let attempt = 1; ; attempt++) {
        const result = await this.#request(encode, what)
        if (result.errno !== 0) throw netlinkError(what, result.errno, optional(result.kernelMessage))
        if (!result.replies.some((m) => m.flags & NLM_F_DUMP_INTR) || attempt === DUMP_ATTEMPTS) return result.replies
      }
    })
  }

  /**
   * Many change requests (each with NLM_F_ACK) packed into as few sends as possible: at most
   * `maxSendBytes` and {@link maxOutstanding} messages per send. Returns one reply per encoder, in
   * order. Encoders must be idempotent: if the receive buffer overruns anyway, the chunk is sent
   * again in halves.
   */
  batch(encoders: ReadonlyArray<(seq: number) => Buffer>, { what, signal }: { what: string; signal?: AbortSignal }): Promise<BatchReply[]> {
    return this.#exclusive(async () => {
      const results: BatchReply[] = new Array(encoders.length)
      let limit = this.maxOutstanding
      for (let start = 0; start < encoders.length; ) {
        signal?.throwIfAborted()
        const bySeq = new Map<number, number>()
        const parts: Buffer[] = []
        let bytes = 0
        for (let i = start; i < encoders.length && parts.length < limit; i++) {
          const seq = this.#nextSeq()
          const message = encoders[i]!(seq)
          if (parts.length > 0 && bytes + message.length > this.#maxSendBytes) break
          parts.push(message)
          bySeq.set(seq, i)
          bytes += message.length
        }
        await this.#send(Buffer.concat(parts, bytes))
        try {
          await this.#readUntil(what, (m) => {
            if (m.type !== NLMSG_ERROR) return bySeq.size === 0
            const index = bySeq.get(m.seq)
            if (index !== undefined) {
              const e = decodeError(m)
              results[index] = e.message === undefined ? { errno: e.errno } : { errno: e.errno, kernelMessage: e.message }
              bySeq.delete(m.seq)
            }
            return bySeq.size === 0
          })
          start += parts.length
        } catch (e) {
          if (errnoOf(e) !== LINUX_ERRNO.ENOBUFS || parts.length === 1) throw e
          this.stats.overruns++
          this.#drain() // the ACKs that did arrive still fill the buffer
          limit = Math.max(1, Math.floor(parts.length / 2)) // some were dropped: resend this chunk smaller
        }
      }
      return results
    })
  }

  /** Closes the socket once the calls already queued have finished. */
  close(): Promise<void> {
    return this.#exclusive(async () => this.#transport.close())
  }

  async #request(encode: (seq: number) => Buffer, what: string): Promise<RequestResult> {
    const seq = this.#nextSeq()
    const message = encode(seq)
    const flags = message.readUInt16LE(6)
    const singleAnswer = !(flags & NLM_F_ACK) && (flags & NLM_F_DUMP) !== NLM_F_DUMP
    await this.#send(message)
    const result: RequestResult = { errno: 0, replies: [] }
    let done = false
    await this.#readUntil(what, (m) => {
      if (done || m.seq !== seq) return done
      if (m.type === NLMSG_ERROR) {
        const e = decodeError(m)
        result.errno = e.errno
        if (e.message !== undefined) result.kernelMessage = e.message
        done = true
      } else if (m.type === NLMSG_DONE) {
        result.errno = decodeDone(m)
        done = true
      } else {
        result.replies.push({ ...m, payload: Buffer.from(m.payload) }) // copy: the read buffer is reused
        done = singleAnswer && !(m.flags & NLM_F_MULTI)
      }
      return done
    })
    return result
  }

  async #send(buf: Buffer): Promise<void> {
    this.stats.sends++
    await this.#transport.send(buf)
  }

  /** Reads datagrams until `onMessage` returns true (checked after each whole datagram). */
  async #readUntil(what: string, onMessage: (m: NetlinkMessage) => boolean): Promise<void> {
    for (let read = 0; ; ) {
      const n = this.#transport.recv(this.#rbuf)
      if (n < 0) {
        this.stats.waits++
        if (!(await this.#transport.waitReadable(this.#timeoutMs))) {
          throw netlinkError('recv', LINUX_ERRNO.ETIMEDOUT, { detail: `(no answer to ${what} within ${this.#timeoutMs} ms)` })
        }
        continue
      }
      this.stats.datagrams++
      if (++read % YIELD_EVERY === 0) await new Promise((resolve) => setImmediate(resolve))
      let done = false
      for (const m of parseMessages(this.#rbuf.subarray(0, n))) done = onMessage(m) || done
      if (done) return
    }
  }

  /** Discards whatever is queued (after an overrun the survivors' sequence numbers are stale). */
  #drain(): void {
    for (let i = 0; i < 1_000_000; i++) {
      try {
        if (this.#transport.recv(this.#rbuf) < 0) return
      } catch (e) {
        if (errnoOf(e) !== LINUX_ERRNO.ENOBUFS) throw e
      }
    }
  }

  #nextSeq(): number {
    this.#seq = this.#seq >= 0xffffffff ? 1 : this.#seq + 1
    return this.#seq
  }

  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(fn, fn)
    this.#chain = run.catch(() => undefined)
    return run
  }
}

function optional(kernelMessage: string | undefined): { kernelMessage?: string } {
  return kernelMessage === undefined ? {} : { kernelMessage }
}
