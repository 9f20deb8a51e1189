/**
 * koffi's libc calls for an AF_NETLINK/NETLINK_ROUTE socket (with `load-libc.ts`, and the namespace probe's
 * worker, `netns-probe-worker.ts`, the only files that touch koffi). Loaded lazily (dynamic import) so the
 * driver package loads on every OS.
 *
 * How replies are awaited without blocking the event loop (measured on Linux 6.18, Node 20.20):
 * - rtnetlink handles requests synchronously inside `send()`: when it returns, every ACK is queued,
 *   and a dump refills the queue inside each `recv()`. So `recv(MSG_DONTWAIT)` almost never finds
 *   the queue empty: 0 waits while adding and removing 10,000 addresses and dumping them.
 * - For the rare wait: `koffi.node.poll()`, a libuv poll handle (no thread, no busy loop), bounded
 *   by a timer. It is undocumented — in koffi 3.3.4 its callback gets `(status, events)` although
 *   index.d.ts says `(events)` — so it is wrapped here only, and a timer loop that peeks with
 *   MSG_DONTWAIT (1 → 20 ms backoff) stands in where it is missing. Both are tested.
 * - `send()` goes through koffi's async call (a worker thread): the kernel work behind one 64 KiB
 *   batch (1,638 RTM_NEWADDR) took 31 ms on an empty link and 330 ms with 8,000 addresses already
 *   on it (the kernel scans the link's address list per add), which would stall the event loop. With that, 10,000 adds + removes kept the event loop's
 *   worst delay at ~11 ms (35 ms before the receive loop yielded every 128 datagrams).
 */
import type { node as koffiNode } from 'koffi'
import { readlinkSync } from 'node:fs'
import { Worker } from 'node:worker_threads'
import type { PermissionError, SyscallError } from '@ngrokd/core/driver'
import { AF_NETLINK, NETLINK_CAP_ACK, NETLINK_EXT_ACK, NETLINK_ROUTE, SOL_NETLINK } from '../netlink/constants.js'
import { errnoName, LINUX_ERRNO } from '../netlink/errno.js'
import { netlinkError } from '../netlink/netlink-error.js'
import type { NetlinkTransport } from '../netlink/route-socket.js'
import { MSG_DONTWAIT, MSG_PEEK, MSG_TRUNC, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_RAW, SOL_SOCKET, SO_RCVBUF, SO_RCVBUFFORCE } from './libc-constants.js'
import { koffi, loadLibc } from './load-libc.js'
import type { NetnsProbeMessage, NetnsProbeWorkerData } from './netns-probe-worker.js'

/** Asked-for receive buffer; the kernel doubles it for bookkeeping. Sized for ~4,000 queued ACKs. */
const RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024

const libc = loadLibc()
koffi.struct('sockaddr_nl', { nl_family: 'uint16_t', nl_pad: 'uint16_t', nl_pid: 'uint32_t', nl_groups: 'uint32_t' })
const c = {
  socket: libc.func('int socket(int domain, int type, int protocol)') as (domain: number, type: number, protocol: number) => number,
  bind: libc.func('int bind(int fd, const sockaddr_nl *addr, uint32_t addrlen)') as (
    fd: number,
    addr: { nl_family: number; nl_pad: number; nl_pid: number; nl_groups: number },
    len: number,
  ) => number,
  send: libc.func('intptr_t send(int fd, const void *buf, size_t len, int flags)'),
  recv: libc.func('intptr_t recv(int fd, void *buf, size_t len, int flags)') as (fd: number, buf: Buffer, len: number, flags: number) => number,
  setsockopt: libc.func('int setsockopt(int fd, int level, int name, const void *val, uint32_t len)') as (
    fd: number,
    level: number,
    name: number,
    value: Buffer,
    len: number,
  ) => number,
  getsockopt: libc.func('int getsockopt(int fd, int level, int name, _Out_ void *val, _Inout_ uint32_t *len)') as (
    fd: number,
    level: number,
    name: number,
    value: Buffer,
    len: number[],
  ) => number,
  close: libc.func('int close(int fd)') as (fd: number) => number,
}

/** A failed libc call as a coded error; EPERM/EACCES become `PermissionError`. */
function syscallError(syscall: string, errno: number, detail?: string): SyscallError | PermissionError {
  return netlinkError(syscall, errno, detail ? { detail } : {})
}

function int32(value: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeInt32LE(value, 0)
  return b
}

/**
 * A non-blocking, close-on-exec NETLINK_ROUTE socket bound to a kernel-assigned port. It asks for a
 * 4 MiB receive buffer (SO_RCVBUFFORCE, else SO_RCVBUF capped by net.core.rmem_max) and for
 * NETLINK_CAP_ACK + NETLINK_EXT_ACK (short error echoes with the kernel's reason text).
 */
export class NetlinkSocket implements NetlinkTransport {
  readonly receiveBufferSize: number
  #fd: number
  #poll: koffiNode.PollHandle | undefined
  #waiting = false

  readonly #wait: 'poll' | 'timer'

  private constructor(fd: number, receiveBufferSize: number, wait: 'poll' | 'timer') {
    this.#fd = fd
    this.receiveBufferSize = receiveBufferSize
    this.#wait = wait
  }

  /**
   * `receiveBufferBytes` overrides the 4 MiB asked for (tests use a small one to provoke ENOBUFS).
   * `wait` picks how waitReadable waits: `poll` (koffi.node.poll, the default where it exists) or
   * `timer` (the fallback).
   */
  static open({ receiveBufferBytes = RECEIVE_BUFFER_BYTES, wait }: { receiveBufferBytes?: number; wait?: 'poll' | 'timer' } = {}): NetlinkSocket {
    const fd = c.socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE)
    if (fd < 0) throw syscallError('socket(AF_NETLINK, NETLINK_ROUTE)', koffi.errno())
    try {
      if (c.bind(fd, { nl_family: AF_NETLINK, nl_pad: 0, nl_pid: 0, nl_groups: 0 }, 12 /* sizeof(sockaddr_nl) */) !== 0) {
        throw syscallError('bind(AF_NETLINK)', koffi.errno())
      }
      const size = int32(receiveBufferBytes)
      if (c.setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, size, 4) !== 0) c.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, size, 4)
      // Best effort: kernels before 4.2 (CAP_ACK) and 4.12 (EXT_ACK) lack them; nothing depends on them.
      c.setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, int32(1), 4)
      c.setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, int32(1), 4)
      const out = Buffer.alloc(4)
      const len = [4]
      const effective = c.getsockopt(fd, SOL_SOCKET, SO_RCVBUF, out, len) === 0 ? out.readInt32LE(0) : 212992 // net.core.rmem_default
      return new NetlinkSocket(fd, effective, wait ?? (typeof koffi.node?.poll === 'function' ? 'poll' : 'timer'))
    } catch (e) {
      c.close(fd)
      throw e
    }
  }

  get closed(): boolean {
    return this.#fd < 0
  }

  /** Sends one buffer (any number of messages) on a koffi worker thread. */
  send(buf: Buffer): Promise<void> {
    const fd = this.#checkOpen('send')
    const callerStack = new Error().stack
    return new Promise((resolve, reject) => {
      c.send.async(fd, buf, buf.length, 0, (err: unknown, sent: number) => {
        if (err) return reject(err)
        if (sent < 0) {
          const error = syscallError('send', koffi.errno())
          error.stack = `${error.stack}\n    -- caller --${callerStack?.slice(callerStack.indexOf('\n')) ?? ''}`
          return reject(error)
        }
        if (sent !== buf.length) return reject(syscallError('send', LINUX_ERRNO.EMSGSIZE, `(sent ${sent} of ${buf.length} bytes)`))
        resolve()
      })
    })
  }

  /**
   * Reads one datagram without blocking: its length, or -1 when none is queued. Throws on errors
   * (ENOBUFS: the receive buffer overflowed and replies were dropped) and on truncation.
   */
  recv(buf: Buffer): number {
    const fd = this.#checkOpen('recv')
    const n = c.recv(fd, buf, buf.length, MSG_DONTWAIT | MSG_TRUNC)
    if (n < 0) {
      const errno = koffi.errno()
      if (errno === LINUX_ERRNO.EAGAIN || errno === LINUX_ERRNO.EINTR) return -1
      throw syscallError('recv', errno)
    }
    if (n > buf.length) throw syscallError('recv', LINUX_ERRNO.EMSGSIZE, `(datagram of ${n} bytes, buffer of ${buf.length})`)
    return n
  }

  /** Resolves true when the socket is readable, false after `timeoutMs`. Never blocks the event loop. */
  waitReadable(timeoutMs: number): Promise<boolean> {
    this.#checkOpen('poll')
    if (this.#waiting) return Promise.reject(new Error('linux-netlink: concurrent waitReadable on one socket'))
    this.#waiting = true
    return new Promise<boolean>((resolve) => {
      let timer: NodeJS.Timeout | undefined
      let finished = false
      const finish = (readable: boolean) => {
        if (finished) return
        finished = true
        this.#waiting = false
        clearTimeout(timer)
        this.#poll?.stop()
        resolve(readable)
      }
      timer = setTimeout(() => finish(false), timeoutMs)
      if (this.#wait === 'poll') {
        // koffi 3.3.4 calls back with (status, events) although its index.d.ts declares (events):
        // accept both. A negative status (poll error) also ends the wait; recv() then reports it.
        const onPoll = (a: unknown, b?: unknown) => {
          const status = typeof a === 'number' ? a : 0
          const ev = (typeof a === 'object' ? a : b) as { readable?: boolean; disconnect?: boolean } | undefined
          if (status < 0 || ev?.readable || ev?.disconnect) finish(true)
        }
        this.#poll ??= koffi.node.poll(this.#fd, { readable: true }, () => {})
        this.#poll.start({ readable: true }, onPoll as (ev: koffiNode.PollEvents) => void)
      } else {
        // Fallback: peek with MSG_DONTWAIT on a backoff timer.
        const peek = Buffer.alloc(16)
        let delay = 1
        const tick = () => {
          if (finished) return
          // readable, or an error (ENOBUFS…) that the next recv() reports
          if (this.#fd < 0 || c.recv(this.#fd, peek, peek.length, MSG_DONTWAIT | MSG_PEEK) >= 0 || koffi.errno() !== LINUX_ERRNO.EAGAIN) return finish(true)
          delay = Math.min(delay * 2, 20)
          setTimeout(tick, delay).unref()
        }
        tick()
      }
    })
  }

  /** Closes the poll handle, then the descriptor. Safe to call twice. */
  close(): void {
    if (this.#fd < 0) return
    this.#poll?.close()
    this.#poll = undefined
    c.close(this.#fd)
    this.#fd = -1
  }

  #checkOpen(what: string): number {
    if (this.#fd < 0) throw syscallError(what, LINUX_ERRNO.EBADF, '(socket closed)')
    return this.#fd
  }
}

// ---------------------------------------------------------------------------------------------
// Probing inside a throwaway network namespace (for `ngrokd doctor`).

export type NetnsProbeResult =
  | { ok: true; replies: Buffer[] }
  | { ok: false; reason: string; errno?: number; errnoName?: string }

/**
 * Runs change requests inside a private network namespace and returns the one reply datagram each
 * gets (requests must ask for an ACK). A worker thread calls `unshare(CLONE_NEWNET)`, which moves
 * only that thread; it checks that its namespace really changed before it opens a socket, and the
 * namespace (with whatever the requests made) disappears when the thread exits. Needs CAP_SYS_ADMIN.
 */
export function probeInPrivateNetns(requests: Buffer[], { timeoutMs = 5000 }: { timeoutMs?: number } = {}): Promise<NetnsProbeResult> {
  const workerData: NetnsProbeWorkerData = { mainNetns: readlinkSync('/proc/self/ns/net'), requests: requests.map((r) => new Uint8Array(r)) }
  return new Promise((resolve) => {
    const worker = new Worker(new URL(import.meta.resolve('#netns-probe-worker')), { workerData }) // package.json "imports"
    const timer = setTimeout(() => {
      void worker.terminate()
      resolve({ ok: false, reason: `no answer within ${timeoutMs} ms` })
    }, timeoutMs)
    worker.once('message', (m: NetnsProbeMessage) => {
      clearTimeout(timer)
      if ('replies' in m) resolve({ ok: true, replies: m.replies.map((r) => Buffer.from(r)) })
      else resolve({ ok: false, reason: m.reason, ...(m.errno ? { errno: m.errno, errnoName: errnoName(m.errno) } : {}) })
    })
    worker.once('error', (e) => {
      clearTimeout(timer)
      resolve({ ok: false, reason: e instanceof Error ? e.message : String(e) })
    })
  })
}
