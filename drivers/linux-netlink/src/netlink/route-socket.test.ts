import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isNgrokdError } from '@ngrokd/core/driver'
import { FakeNetlinkKernel } from '../testing/fake-netlink-kernel.test-helper.js'
import { NLMSG_DONE, RTM_DELADDR, RTM_GETADDR, RTM_NEWADDR } from './constants.js'
import { LINUX_ERRNO } from './errno.js'
import { decodeAddr, delAddrRequest, encodeMessage, getAddrDumpRequest, getLinkRequest, newAddrRequest, parseMessages } from './messages.js'
import { ACK_BUDGET_BYTES, RouteSocket, type NetlinkTransport } from './route-socket.js'

const addressesOf = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `10.107.${(i + from) >> 8}.${(i + from) & 255}`)

test('batch: one reply per request in order, kernel errors returned, not thrown', async () => {
  const kernel = new FakeNetlinkKernel()
  const link = kernel.addLink('ngrt0', 'bridge')
  link.addresses.add('10.107.0.1')
  const socket = new RouteSocket(kernel)
  const replies = await socket.batch(
    [
      (seq) => newAddrRequest({ seq, index: link.index, address: '10.107.0.1' }),
      (seq) => newAddrRequest({ seq, index: link.index, address: '10.107.0.2' }),
      (seq) => delAddrRequest({ seq, index: link.index, address: '10.107.0.9' }),
      (seq) => newAddrRequest({ seq, index: 99, address: '10.107.0.3' }),
    ],
    { what: 'test' },
  )
  assert.deepEqual(
    replies.map((r) => r.errno),
    [LINUX_ERRNO.EEXIST, 0, LINUX_ERRNO.EADDRNOTAVAIL, LINUX_ERRNO.ENODEV],
  )
  assert.equal(kernel.sent.length, 1, 'four requests, one send')
  assert.deepEqual([...link.addresses].sort(), ['10.107.0.1', '10.107.0.2'])
})

test('batch: sends are capped at maxSendBytes and at the ACKs the receive buffer holds', async () => {
  const kernel = new FakeNetlinkKernel({ receiveBufferSize: 10 * ACK_BUDGET_BYTES })
  const link = kernel.addLink('ngrt0', 'bridge')
  const socket = new RouteSocket(kernel)
  assert.equal(socket.maxOutstanding, 10)
  const encoders = addressesOf(25).map((address) => (seq: number) => newAddrRequest({ seq, index: link.index, address }))
  await socket.batch(encoders, { what: 'test' })
  assert.deepEqual(
    kernel.sent.map((b) => parseMessages(b).length),
    [10, 10, 5],
  )

  const bytesCapped = new FakeNetlinkKernel()
  const link2 = bytesCapped.addLink('ngrt0', 'bridge')
  const small = new RouteSocket(bytesCapped, { maxSendBytes: 100 }) // RTM_NEWADDR is 40 bytes
  await small.batch(
    addressesOf(5).map((address) => (seq: number) => newAddrRequest({ seq, index: link2.index, address })),
    { what: 'test' },
  )
  assert.deepEqual(
    bytesCapped.sent.map((b) => b.length),
    [80, 80, 40],
  )
  assert.equal(link2.addresses.size, 5)
})

test('batch: 10,000 requests take a handful of sends, not 10,000', async () => {
  const kernel = new FakeNetlinkKernel()
  const link = kernel.addLink('ngrt0', 'bridge')
  const socket = new RouteSocket(kernel)
  const replies = await socket.batch(
    addressesOf(10_000).map((address) => (seq: number) => newAddrRequest({ seq, index: link.index, address })),
    { what: 'test' },
  )
  assert.equal(replies.length, 10_000)
  assert.ok(replies.every((r) => r.errno === 0))
  assert.equal(link.addresses.size, 10_000)
  assert.equal(kernel.sent.length, Math.ceil(10_000 / Math.floor((64 * 1024) / 40)))
})

test('batch: when ACKs overrun the receive buffer (ENOBUFS) the chunk is resent in halves', async () => {
  // The budget assumes 1,280 B per ACK; this kernel charges 3,000, so 100 outstanding ACKs overflow.
  const kernel = new FakeNetlinkKernel({ receiveBufferSize: 100 * ACK_BUDGET_BYTES, ackTruesize: 3000 })
  const link = kernel.addLink('ngrt0', 'bridge')
  const socket = new RouteSocket(kernel)
  const replies = await socket.batch(
    addressesOf(300).map((address) => (seq: number) => newAddrRequest({ seq, index: link.index, address })),
    { what: 'test' },
  )
  assert.ok(socket.stats.overruns >= 1)
  assert.equal(link.addresses.size, 300)
  // idempotent resend: requests applied before the overrun answer EEXIST the second time
  assert.ok(replies.every((r) => r.errno === 0 || r.errno === LINUX_ERRNO.EEXIST))
  assert.equal(replies.filter((r) => r !== undefined).length, 300)
})

test('batch: an abort signal stops between sends', async () => {
  const kernel = new FakeNetlinkKernel({ receiveBufferSize: 10 * ACK_BUDGET_BYTES })
  const link = kernel.addLink('ngrt0', 'bridge')
  const socket = new RouteSocket(kernel)
  const controller = new AbortController()
  const encoders = addressesOf(30).map((address, i) => (seq: number) => {
    if (i === 12) controller.abort()
    return newAddrRequest({ seq, index: link.index, address })
  })
  await assert.rejects(socket.batch(encoders, { what: 'test', signal: controller.signal }), { name: 'AbortError' })
  assert.equal(link.addresses.size, 20, 'the chunk being built when it aborted was still sent')
})

test('request: replies to other sequence numbers are skipped; a GET without ACK ends at its answer', async () => {
  const kernel = new FakeNetlinkKernel()
  kernel.addLink('ngrt0', 'bridge')
  const socket = new RouteSocket(kernel)
  // a stale ACK left over from an earlier, abandoned exchange
  await kernel.send(newAddrRequest({ seq: 4242, index: 77, address: '10.0.0.1' }))
  const r = await socket.request((seq) => getLinkRequest({ seq, name: 'ngrt0' }), { what: 'test' })
  assert.equal(r.errno, 0)
  assert.equal(r.replies.length, 1)
  const missing = await socket.request((seq) => getLinkRequest({ seq, name: 'nope0' }), { what: 'test' })
  assert.equal(missing.errno, LINUX_ERRNO.ENODEV)
  assert.equal(missing.replies.length, 0)
})

test('dump: parts spread over many datagrams are collected up to NLMSG_DONE', async () => {
  const kernel = new FakeNetlinkKernel({ dumpChunk: 7 })
  const link = kernel.addLink('ngrt0', 'bridge')
  for (const a of addressesOf(100)) link.addresses.add(a)
  const socket = new RouteSocket(kernel)
  const messages = await socket.dump((seq) => getAddrDumpRequest({ seq }), { what: 'test' })
  assert.equal(messages.length, 101) // + 127.0.0.1 on lo
  assert.ok(messages.every((m) => m.type === RTM_NEWADDR))
  assert.deepEqual(new Set(messages.map((m) => decodeAddr(m).local)).size, 101)
  assert.ok(socket.stats.datagrams >= 16)
})

test('dump: a reply flagged NLM_F_DUMP_INTR (changed while dumping) is retried', async () => {
  let dumps = 0
  const transport: NetlinkTransport = {
    receiveBufferSize: 1 << 20,
    queue: [] as Buffer[],
    async send(buf: Buffer) {
      const [m] = parseMessages(buf)
      assert.equal(m!.type, RTM_GETADDR)
      dumps++
      const flags = dumps === 1 ? 0x12 : 0x2 // NLM_F_MULTI | NLM_F_DUMP_INTR on the first try
      this.queue.push(encodeMessage({ type: RTM_NEWADDR, flags, seq: m!.seq }, Buffer.alloc(8)))
      this.queue.push(encodeMessage({ type: NLMSG_DONE, flags: 2, seq: m!.seq }, Buffer.alloc(4)))
    },
    recv(buf: Buffer) {
      const next = this.queue.shift()
      if (!next) return -1
      next.copy(buf)
      return next.length
    },
    async waitReadable() {
      return this.queue.length > 0
    },
    close() {},
  } as NetlinkTransport & { queue: Buffer[] }
  const socket = new RouteSocket(transport)
  const messages = await socket.dump((seq) => getAddrDumpRequest({ seq }), { what: 'test' })
  assert.equal(dumps, 2)
  assert.equal(messages[0]!.flags, 0x2)
})

test('no answer within the timeout fails with ETIMEDOUT naming the request', async () => {
  const kernel = new FakeNetlinkKernel()
  kernel.swallow = (m) => m.type === RTM_DELADDR
  const socket = new RouteSocket(kernel, { timeoutMs: 20 })
  await assert.rejects(
    socket.request((seq) => delAddrRequest({ seq, index: 1, address: '127.0.0.1' }), { what: 'RTM_DELADDR 127.0.0.1' }),
    (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_SYSCALL') && /ETIMEDOUT/.test((e as Error).message) && /RTM_DELADDR 127\.0\.0\.1/.test((e as Error).message),
  )
})

test('concurrent calls on one socket run one after another and each gets its own answer', async () => {
  const kernel = new FakeNetlinkKernel()
  const link = kernel.addLink('ngrt0', 'bridge')
  const socket = new RouteSocket(kernel)
  const [batch, dump, single] = await Promise.all([
    socket.batch(
      addressesOf(50).map((address) => (seq: number) => newAddrRequest({ seq, index: link.index, address })),
      { what: 'batch' },
    ),
    socket.dump((seq) => getAddrDumpRequest({ seq }), { what: 'dump' }),
    socket.request((seq) => getLinkRequest({ seq, name: 'lo' }), { what: 'get' }),
  ])
  assert.equal(batch.length, 50)
  assert.equal(dump.length, 51, 'the dump ran after the batch')
  assert.equal(single.replies.length, 1)
})
