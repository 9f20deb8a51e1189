/**
 * The worker thread of `probeInPrivateNetns` (libc.ts): it calls `unshare(CLONE_NEWNET)`, which
 * moves only this thread into a new network namespace, checks that its namespace really changed,
 * then sends each request on an AF_NETLINK socket there and posts the one reply datagram each got.
 * The namespace, with whatever the requests made, disappears when the thread exits.
 */
import { readlinkSync } from 'node:fs'
import { parentPort, workerData } from 'node:worker_threads'
import { AF_NETLINK, NETLINK_ROUTE } from '../netlink/constants.js'
import { CLONE_NEWNET, SOCK_CLOEXEC, SOCK_RAW, SOL_SOCKET, SO_RCVTIMEO } from './libc-constants.js'
import { koffi, loadLibc } from './load-libc.js'

/** What the caller hands the worker. */
export interface NetnsProbeWorkerData {
  /** The caller's network namespace (`readlink /proc/self/ns/net`): the worker refuses to send there. */
  mainNetns: string
  requests: Uint8Array[]
}

/** The worker's one message: the replies, in request order, or why it stopped. */
export type NetnsProbeMessage = { replies: Uint8Array[] } | { reason: string; errno?: number }

/** Every recv is bounded by this (SO_RCVTIMEO): a request that gets no reply cannot hang the thread. */
const RECEIVE_TIMEOUT_SECONDS = 2n
const REPLY_BYTES = 65536

function probe({ mainNetns, requests }: NetnsProbeWorkerData): NetnsProbeMessage {
  const libc = loadLibc()
  const unshare = libc.func('int unshare(int flags)') as (flags: number) => number
  const socket = libc.func('int socket(int domain, int type, int protocol)') as (domain: number, type: number, protocol: number) => number
  const send = libc.func('intptr_t send(int fd, const void *buf, size_t len, int flags)') as (fd: number, buf: Buffer, len: number, flags: number) => number
  const recv = libc.func('intptr_t recv(int fd, void *buf, size_t len, int flags)') as (fd: number, buf: Buffer, len: number, flags: number) => number
  const setsockopt = libc.func('int setsockopt(int fd, int level, int name, const void *val, uint32_t len)') as (fd: number, level: number, name: number, val: Buffer, len: number) => number
  const close = libc.func('int close(int fd)') as (fd: number) => number

  const before = readlinkSync('/proc/thread-self/ns/net')
  if (unshare(CLONE_NEWNET) !== 0) return { reason: 'unshare(CLONE_NEWNET) failed', errno: koffi.errno() }
  const after = readlinkSync('/proc/thread-self/ns/net')
  if (after === before || after === mainNetns) return { reason: 'the thread is still in the host network namespace' }
  const fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE)
  if (fd < 0) return { reason: 'socket(AF_NETLINK) failed', errno: koffi.errno() }
  try {
    const timeout = Buffer.alloc(16)
    timeout.writeBigInt64LE(RECEIVE_TIMEOUT_SECONDS, 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, timeout, timeout.length)
    const replies: Uint8Array[] = []
    for (const request of requests) {
      const bytes = Buffer.from(request.buffer, request.byteOffset, request.byteLength)
      if (send(fd, bytes, bytes.length, 0) !== bytes.length) return { reason: 'send failed', errno: koffi.errno() }
      const reply = Buffer.alloc(REPLY_BYTES)
      const n = recv(fd, reply, reply.length, 0)
      if (n < 0) return { reason: 'recv failed', errno: koffi.errno() }
      replies.push(new Uint8Array(reply.subarray(0, n)))
    }
    return { replies }
  } finally {
    close(fd)
  }
}

parentPort?.postMessage(probe(workerData as NetnsProbeWorkerData))
