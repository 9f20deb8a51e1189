import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import net from 'node:net'
import { once } from 'node:events'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { Resolver } from 'node:dns/promises'
import dnsPacket from 'dns-packet'
import { readFile } from 'node:fs/promises'
import { DnsResponder, parseListenAddress, UDP_RECEIVE_BUFFER_BYTES } from './dns-responder.js'
import { answerQuery, routedDomains, servedSuffixes } from './dns-answer.js'

const run = promisify(execFile)
const hasDig = await run('dig', ['-v']).then(() => true, () => false)

/** What dns-packet's decode gives, with the header fields its types leave out. */
type Reply = dnsPacket.DecodedPacket & { rcode?: string; flag_aa?: boolean }
const decode = (bytes: Buffer): Reply => dnsPacket.decode(bytes) as Reply

/** A query of `type`: a record type, or one dns-packet encodes but does not type (AXFR, IXFR, UNKNOWN_<n>). */
function query(name: string, type: dnsPacket.RecordType | 'ANY' | 'AXFR' | 'IXFR' | 'UNKNOWN_253' = 'A', id = 4242): Buffer {
  return dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: type as dnsPacket.RecordType, name, class: 'IN' }] })
}

/** Sends raw bytes over UDP; resolves to the decoded reply, or undefined when none came within `waitMs`. */
async function udpExchange(port: number, message: Buffer, waitMs = 2000): Promise<Reply | undefined> {
  const socket = dgram.createSocket('udp4')
  try {
    socket.send(message, port, '127.0.0.1')
    const reply = await Promise.race([once(socket, 'message').then(([m]) => m as Buffer), new Promise<undefined>((r) => setTimeout(() => r(undefined), waitMs))])
    return reply === undefined ? undefined : decode(reply)
  } finally {
    socket.close()
  }
}

async function tcpExchange(port: number, messages: Buffer[]): Promise<Reply[]> {
  const socket = net.connect({ host: '127.0.0.1', port })
  await once(socket, 'connect')
  for (const m of messages) socket.write(dnsPacket.streamEncode(dnsPacket.decode(m)))
  socket.end()
  const chunks: Buffer[] = []
  for await (const chunk of socket) chunks.push(chunk as Buffer)
  const all = Buffer.concat(chunks)
  const replies: Reply[] = []
  for (let at = 0; at < all.length; ) {
    const length = all.readUInt16BE(at)
    replies.push(decode(all.subarray(at + 2, at + 2 + length)))
    at += 2 + length
  }
  return replies
}

describe('DnsResponder', () => {
  const responder = new DnsResponder({ ttl: 5 })
  let port = 0
  let resolver: Resolver

  before(async () => {
    await responder.start([{ host: '127.0.0.1', port: 0 }])
    port = responder.addresses[0]!.port
    responder.setZone(new Map([['api.prod', '10.107.0.2'], ['db.prod', '10.107.0.3'], ['web.demo', '10.107.0.4']]))
    resolver = new Resolver({ timeout: 2000, tries: 1 })
    resolver.setServers([`127.0.0.1:${port}`])
  })
  after(() => responder.close())

  it('asks for a 4 MiB UDP receive buffer, so that a burst of queries is not dropped: Linux grants it up to net.core.rmem_max, doubled', { skip: process.platform !== 'linux' && 'the granted size is read as Linux reports it' }, async () => {
    const rmemMax = Number(await readFile('/proc/sys/net/core/rmem_max', 'utf8'))
    assert.equal(UDP_RECEIVE_BUFFER_BYTES, 4 * 1024 * 1024)
    assert.deepEqual(responder.udpReceiveBufferSizes, [2 * Math.min(UDP_RECEIVE_BUFFER_BYTES, rmemMax)])
  })

  it('answers A for each served hostname, with the short TTL, case-insensitively', async () => {
    assert.deepEqual(await resolver.resolve4('api.prod', { ttl: true }), [{ address: '10.107.0.2', ttl: 5 }])
    assert.deepEqual(await resolver.resolve4('DB.Prod'), ['10.107.0.3'])
    assert.deepEqual(await resolver.resolve4('web.demo'), ['10.107.0.4'])
  })

  it('answers AAAA with NOERROR and no data, unknown names under a served suffix NXDOMAIN, anything else REFUSED', async () => {
    await assert.rejects(resolver.resolve6('api.prod'), { code: 'ENODATA' })
    await assert.rejects(resolver.resolve4('nope.prod'), { code: 'ENOTFOUND' })
    await assert.rejects(resolver.resolve4('example.com'), { code: 'EREFUSED' })
    const aaaa = await udpExchange(port, query('api.prod', 'AAAA'))
    assert.equal(aaaa?.rcode, 'NOERROR')
    assert.equal(aaaa?.answers?.length, 0)
    assert.equal(aaaa?.flag_aa, true)
    assert.equal((await udpExchange(port, query('nope.prod')))?.rcode, 'NXDOMAIN')
    assert.equal((await udpExchange(port, query('example.com')))?.rcode, 'REFUSED')
  })

  it('replaces the answers whole on setZone()', async () => {
    responder.setZone(new Map([['api.prod', '10.107.0.9']]))
    try {
      assert.deepEqual(await resolver.resolve4('api.prod'), ['10.107.0.9'])
      await assert.rejects(resolver.resolve4('db.prod'), { code: 'ENOTFOUND' })
      await assert.rejects(resolver.resolve4('web.demo'), { code: 'EREFUSED' }, 'a suffix with no hostname left is no longer served')
    } finally {
      responder.setZone(new Map([['api.prod', '10.107.0.2'], ['db.prod', '10.107.0.3'], ['web.demo', '10.107.0.4']]))
    }
  })

  it('answers over TCP, several messages on one connection', async () => {
    const replies = await tcpExchange(port, [query('api.prod', 'A', 1), query('nope.prod', 'A', 2)])
    assert.equal(replies.length, 2)
    assert.equal(replies[0]!.id, 1)
    assert.deepEqual(replies[0]!.answers?.map((a) => (a as { data: unknown }).data), ['10.107.0.2'])
    assert.equal(replies[1]!.rcode, 'NXDOMAIN')
  })

  it('answers hostile packets FORMERR or drops them, and keeps answering', async () => {
    const good = query('api.prod', 'A', 0x1234)
    // The question's name becomes a pointer to itself (offset 12): a compression loop.
    const selfPointer = Buffer.concat([good.subarray(0, 12), Buffer.from([0xc0, 12]), Buffer.from([0, 1, 0, 1])])
    const forwardPointer = Buffer.concat([good.subarray(0, 12), Buffer.from([0xc0, 40]), Buffer.from([0, 1, 0, 1]), Buffer.alloc(40)])
    const cases: Array<[string, Buffer, 'FORMERR' | 'drop']> = [
      ['truncated in the question', good.subarray(0, good.length - 3), 'FORMERR'],
      ['shorter than a header', good.subarray(0, 5), 'drop'],
      ['a compression pointer to itself', selfPointer, 'FORMERR'],
      ['a compression pointer forward', forwardPointer, 'FORMERR'],
      ['oversized', Buffer.concat([good, Buffer.alloc(9000, 0x41)]), 'drop'],
      ['garbage with a header', Buffer.concat([good.subarray(0, 4), Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), Buffer.alloc(64, 0xee)]), 'FORMERR'],
      ['a response, not a query', Buffer.from(dnsPacket.encode({ type: 'response', id: 7, questions: [{ type: 'A', name: 'api.prod', class: 'IN' }] })), 'drop'],
    ]
    for (const [what, bytes, expected] of cases) {
      const reply = await udpExchange(port, bytes, expected === 'drop' ? 300 : 2000)
      if (expected === 'drop') assert.equal(reply, undefined, `${what}: dropped`)
      else assert.equal(reply?.rcode, 'FORMERR', `${what}: FORMERR`)
      if (reply) assert.equal(reply.id, bytes.readUInt16BE(0), `${what}: the reply carries the query's id`)
      assert.deepEqual(await resolver.resolve4('api.prod'), ['10.107.0.2'], `still answering after ${what}`)
    }
    // Over TCP a garbage frame gets FORMERR too; the server lives on.
    const socket = net.connect({ host: '127.0.0.1', port })
    await once(socket, 'connect')
    socket.end(Buffer.concat([Buffer.from([0, selfPointer.length]), selfPointer]))
    const chunks: Buffer[] = []
    for await (const chunk of socket) chunks.push(chunk as Buffer)
    assert.equal(decode(Buffer.concat(chunks).subarray(2)).rcode, 'FORMERR')
    assert.deepEqual(await resolver.resolve4('db.prod'), ['10.107.0.3'])
  })

  it('answers only this machine\'s clients, over UDP and TCP', async () => {
    const seen: Array<string | undefined> = []
    const judged = new DnsResponder({ localClients: { isLocal: (source) => (seen.push(source), source !== '127.0.0.3') } })
    judged.setZone(new Map([['api.prod', '10.107.0.2']]))
    await judged.start([{ host: '127.0.0.1', port: 0 }])
    const at = judged.addresses[0]!.port
    try {
      const stranger = dgram.createSocket('udp4')
      stranger.bind(0, '127.0.0.3')
      await once(stranger, 'listening')
      let strangerReplies = 0
      stranger.on('message', () => strangerReplies++)
      stranger.send(query('api.prod'), at, '127.0.0.1')
      // datagrams to one socket are taken in order: once the local one is answered, the stranger's was judged
      assert.equal((await udpExchange(at, query('api.prod'), 30_000))?.rcode, 'NOERROR')
      await new Promise((r) => setImmediate(r))
      stranger.close()
      assert.equal(strangerReplies, 0, 'a source that is not this machine gets no answer')
      assert.ok(seen.includes('127.0.0.3'))
      const tcp = net.connect({ host: '127.0.0.1', port: at, localAddress: '127.0.0.3' })
      tcp.on('error', () => {})
      tcp.write(Buffer.concat([Buffer.from([0, query('api.prod').length]), query('api.prod')]))
      const got: Buffer[] = []
      for await (const chunk of tcp) got.push(chunk as Buffer)
      assert.equal(Buffer.concat(got).length, 0, 'closed without a reply')
    } finally {
      await judged.close()
    }
  })

  it('answers only on its listen address', async () => {
    const socket = dgram.createSocket('udp4')
    socket.bind(0, '127.0.0.2')
    await once(socket, 'listening')
    socket.send(query('api.prod'), port, '127.0.0.2')
    const reply = await Promise.race([once(socket, 'message'), new Promise((r) => setTimeout(() => r('none'), 300))])
    socket.close()
    assert.equal(reply, 'none', '127.0.0.2 is not a listen address: nothing answers there')
  })

  it('closes a TCP client that trickles a message, and makes room for a newcomer by closing the longest silent client', async () => {
    const strict = new DnsResponder({ tcpIdleMs: 400 })
    strict.setZone(new Map([['api.prod', '10.107.0.2']]))
    await strict.start([{ host: '127.0.0.1', port: 0 }])
    const at = strict.addresses[0]!.port
    const open = async (): Promise<net.Socket> => {
      const socket = net.connect({ host: '127.0.0.1', port: at })
      socket.on('error', () => {})
      await once(socket, 'connect')
      return socket
    }
    try {
      // one byte every 100 ms never lets the connection sit idle for 400 ms, but its message never ends
      const slow = await open()
      // 'close' whatever comes first: a write racing the server's close may end in ECONNRESET, which once() would throw
      const closed = new Promise((resolve) => slow.once('close', resolve))
      slow.write(Buffer.from([0xff]))
      const trickle = setInterval(() => slow.destroyed || slow.write(Buffer.from([0x00])), 100)
      try {
        await closed
      } finally {
        clearInterval(trickle)
      }
    } finally {
      await strict.close()
    }
    // the cap (64), with an idle time far above the test: only the cap can close a connection here
    const capped = new DnsResponder({ tcpIdleMs: 600_000 })
    capped.setZone(new Map([['api.prod', '10.107.0.2']]))
    await capped.start([{ host: '127.0.0.1', port: 0 }])
    const cappedAt = capped.addresses[0]!.port
    const many: net.Socket[] = []
    try {
      for (let i = 0; i < 64; i++) {
        const socket = net.connect({ host: '127.0.0.1', port: cappedAt })
        socket.on('error', () => {})
        await once(socket, 'connect')
        many.push(socket)
      }
      const ask = query('api.prod')
      many[5]!.write(Buffer.concat([Buffer.from([0, ask.length]), ask])) // heard from: not the one to go
      await once(many[5]!, 'data')
      const firstClosed = new Promise((resolve) => many[0]!.once('close', () => resolve('closed')))
      const newcomer = net.connect({ host: '127.0.0.1', port: cappedAt })
      await once(newcomer, 'connect')
      newcomer.end(Buffer.concat([Buffer.from([0, ask.length]), ask]))
      const chunks: Buffer[] = []
      for await (const chunk of newcomer) chunks.push(chunk as Buffer)
      assert.deepEqual(decode(Buffer.concat(chunks).subarray(2)).answers?.map((x) => (x as { data: unknown }).data), ['10.107.0.2'], 'the 65th client is served')
      // a safety net far above the work: the eviction happens as the newcomer is accepted
      assert.equal(await Promise.race([firstClosed, new Promise((r) => setTimeout(() => r('still open'), 30_000).unref())]), 'closed', 'the client heard from longest ago is closed for it')
      for (const i of [1, 5, 63]) {
        many[i]!.write(Buffer.concat([Buffer.from([0, ask.length]), ask]))
        await once(many[i]!, 'data') // still open, and answered
      }
    } finally {
      for (const socket of many) socket.destroy()
      await capped.close()
    }
  })

  it('answers dig over UDP and TCP', { skip: !hasDig && 'dig is not installed (Debian: bind9-dnsutils)' }, async () => {
    for (const transport of ['+notcp', '+tcp']) {
      const { stdout } = await run('dig', ['@127.0.0.1', '-p', String(port), transport, '+short', '+tries=1', '+time=2', 'api.prod', 'A'])
      assert.equal(stdout.trim(), '10.107.0.2', `dig ${transport}`)
      const full = await run('dig', ['@127.0.0.1', '-p', String(port), transport, '+tries=1', '+time=2', 'nope.prod', 'A'])
      assert.match(full.stdout, /status: NXDOMAIN/, `dig ${transport} nope.prod`)
      assert.match(full.stdout, /flags: qr aa rd/, `dig ${transport}: authoritative`)
    }
  })
})

describe('answerQuery', () => {
  it('answers from the longest served suffix, with that zone\'s SOA', () => {
    const zone = new Map([['api.prod', '10.107.0.2'], ['x.team.prod', '10.107.0.5']])
    const suffixes = servedSuffixes(zone)
    assert.deepEqual([...suffixes].sort(), ['prod', 'team.prod'])
    const nx = decode(answerQuery(query('nope.team.prod'), zone, suffixes, 5)!)
    assert.equal(nx.rcode, 'NXDOMAIN')
    assert.equal(nx.authorities?.[0]?.name, 'team.prod')
    const apex = decode(answerQuery(query('team.prod', 'SOA'), zone, suffixes, 5)!)
    assert.equal(apex.rcode, 'NOERROR')
    assert.equal(apex.answers?.[0]?.type, 'SOA')
  })

  it("a suffix too long for ngrokd.<suffix> or hostmaster.<suffix> gets an SOA whose names fit in 255 octets", () => {
    const wire = (name: string) => name.length + 2 // the labels, a length octet each, the root — RFC 1035 §3.1
    for (const length of [242, 245, 249]) {
      const suffix = ['a'.repeat(63), 'b'.repeat(63), 'c'.repeat(63), 'd'.repeat(length - 3 * 64)].join('.') // `length` characters
      assert.equal(suffix.length, length)
      const zone = new Map<string, string>()
      for (const reply of [answerQuery(query(suffix), zone, new Set([suffix]), 5)!, answerQuery(query(suffix, 'SOA'), zone, new Set([suffix]), 5)!]) {
        const decoded = decode(reply)
        assert.equal(decoded.rcode, 'NOERROR')
        const soa = [...(decoded.answers ?? []), ...(decoded.authorities ?? [])].find((a) => a.type === 'SOA') as { name: string; data: { mname: string; rname: string } } | undefined
        assert.ok(soa, `suffix of ${length}: an SOA`)
        for (const name of [soa.name, soa.data.mname, soa.data.rname]) assert.ok(wire(name) <= 255, `suffix of ${length}: ${name.length + 2} octets in ${name.slice(0, 20)}…`)
        assert.equal(soa.data.mname, length + 7 <= 253 ? `ngrokd.${suffix}` : 'ngrokd.invalid')
        assert.equal(soa.data.rname, length + 11 <= 253 ? `hostmaster.${suffix}` : 'hostmaster.invalid')
      }
    }
  })

  it('copies OPCODE and RD into a refusal of an opcode it does not serve (RFC 1035 §4.1.1)', () => {
    const zone = new Map([['api.prod', '10.107.0.2']])
    const notify = query('api.prod')
    notify.writeUInt16BE(notify.readUInt16BE(2) | (4 << 11), 2) // OPCODE 4, NOTIFY
    const reply = answerQuery(notify, zone, servedSuffixes(zone), 5)!
    assert.equal((reply.readUInt16BE(2) >> 11) & 0xf, 4)
    assert.equal(reply.readUInt16BE(2) & dnsPacket.RECURSION_DESIRED, dnsPacket.RECURSION_DESIRED)
    assert.equal(reply.readUInt16BE(2) & 0xf, 4, 'NOTIMP')
  })

  it('answers counts the message cannot hold (a bare header of 0xffff counts) FORMERR without decoding it: dns-packet would make arrays of 4 × 65,535 first', () => {
    const zone = new Map([['api.prod', '10.107.0.2']])
    const decode = dnsPacket.decode
    let decoded = 0
    dnsPacket.decode = ((...args: Parameters<typeof decode>) => {
      decoded++
      return decode(...args)
    }) as typeof decode
    try {
      const hostile = Buffer.from('0001 0000 ffff ffff ffff ffff'.replace(/ /g, ''), 'hex')
      const reply = answerQuery(hostile, zone, servedSuffixes(zone), 5)!
      assert.equal(reply.readUInt16BE(0), 1, 'its id')
      assert.equal(reply.readUInt16BE(2) & 0xf, 1, 'FORMERR')
      const oneTooMany = query('api.prod')
      oneTooMany.writeUInt16BE(1, 10) // ARCOUNT 1 with no room left for a record
      assert.equal(answerQuery(oneTooMany, zone, servedSuffixes(zone), 5)!.readUInt16BE(2) & 0xf, 1, 'FORMERR')
      assert.equal(decoded, 0, 'neither was decoded')
      assert.equal(answerQuery(query('api.prod'), zone, servedSuffixes(zone), 5)!.readUInt16BE(2) & 0xf, 0, 'a query that fits is answered')
      assert.equal(decoded, 1)
    } finally {
      dnsPacket.decode = decode
    }
  })

  it('refuses a name with a dot inside a label (api\\.prod is one label), echoing the question as sent', () => {
    const zone = new Map([['api.prod', '10.107.0.2']])
    // header, then the one label "api.prod" (8 bytes), the root, QTYPE A, QCLASS IN
    const question = Buffer.concat([Buffer.from([8]), Buffer.from('api.prod'), Buffer.from([0, 0, 1, 0, 1])])
    const header = Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0])
    const reply = answerQuery(Buffer.concat([header, question]), zone, servedSuffixes(zone), 5)!
    assert.deepEqual(reply.subarray(0, 4), Buffer.from([0x12, 0x34, 0x81, 0x05]), 'id, QR, RD, REFUSED')
    assert.deepEqual(reply.subarray(12), question)
    // bytes past ASCII: `\xe2\x84\xaaube` (KELVIN SIGN) lower-cases to `kube` in JavaScript, and a lone 0xdb is no UTF-8
    const kelvin = new Map([['kube.prod', '10.107.0.2']])
    for (const label of [Buffer.concat([Buffer.from([0xe2, 0x84, 0xaa]), Buffer.from('ube')]), Buffer.from([0x61, 0xdb, 0x61])]) {
      const asked = Buffer.concat([Buffer.from([label.length]), label, Buffer.from([4]), Buffer.from('prod'), Buffer.from([0, 0, 1, 0, 1])])
      const refused = answerQuery(Buffer.concat([header, asked]), kelvin, servedSuffixes(kelvin), 5)!
      assert.equal(refused.readUInt16BE(2) & 0xf, 5, 'REFUSED')
      assert.deepEqual(refused.subarray(12), asked, 'the question as sent')
    }
  })

  it('over UDP, a reply longer than 512 bytes (or the EDNS payload size offered) is cut to its question with TC set', () => {
    const namespace = 'n'.repeat(63)
    const zone = new Map([[`api.${namespace}`, '10.107.0.2']])
    const served = `${'s'.repeat(60)}.${namespace}`
    const suffixes = servedSuffixes(zone, [served])
    // a name of 252 characters under a long served suffix: NXDOMAIN with that suffix's SOA comes to more than 512 bytes
    const long = `${'a'.repeat(63)}.${'b'.repeat(63)}.${served}`
    const full = answerQuery(query(long), zone, suffixes, 5)!
    assert.ok(full.length > 512, `the full reply is ${full.length} bytes`)
    const cut = answerQuery(query(long), zone, suffixes, 5, { udp: true })!
    assert.ok(cut.length <= 512)
    const header = decode(cut)
    assert.equal(header.flags! & dnsPacket.TRUNCATED_RESPONSE, dnsPacket.TRUNCATED_RESPONSE)
    assert.equal(header.rcode, 'NXDOMAIN')
    assert.equal(header.questions?.[0]?.name, long)
    assert.deepEqual([header.answers?.length, header.authorities?.length], [0, 0])
    const edns = dnsPacket.encode({ type: 'query', id: 1, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: long, class: 'IN' }], additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232 } as never] })
    assert.equal(answerQuery(edns, zone, suffixes, 5, { udp: true })!.length, answerQuery(edns, zone, suffixes, 5)!.length, 'EDNS offers room for it')
    const tight = dnsPacket.encode({ type: 'query', id: 1, questions: [{ type: 'A', name: long, class: 'IN' }], additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 600 } as never] })
    const tightCut = decode(answerQuery(tight, zone, suffixes, 5, { udp: true })!)
    assert.equal(tightCut.flags! & dnsPacket.TRUNCATED_RESPONSE, dnsPacket.TRUNCATED_RESPONSE)
    assert.deepEqual(tightCut.additionals?.map((x) => x.type), ['OPT'], 'a cut reply to an EDNS query carries our OPT too')
  })

  it('answers an EDNS query with an OPT record; two OPT records FORMERR, an EDNS version past 0 BADVERS (RFC 6891)', () => {
    const zone = new Map([['api.prod', '10.107.0.2']])
    const suffixes = servedSuffixes(zone)
    const opt = (fields: Record<string, unknown> = {}) => ({ type: 'OPT', name: '.', udpPayloadSize: 4096, ...fields }) as never
    const ask = (additionals: never[], name = 'api.prod') => dnsPacket.encode({ type: 'query', id: 9, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name, class: 'IN' }], additionals })
    type Opt = { type: string; udpPayloadSize: number; extendedRcode: number; ednsVersion: number }
    for (const name of ['api.prod', 'nope.prod', 'example.com']) {
      const reply = decode(answerQuery(ask([opt()], name), zone, suffixes, 5)!)
      const [back] = (reply.additionals ?? []) as unknown as Opt[]
      assert.equal(back?.type, 'OPT', `${name}: the OPT record comes back`)
      assert.deepEqual([back.udpPayloadSize, back.ednsVersion, back.extendedRcode, reply.additionals!.length], [1232, 0, 0, 1])
    }
    assert.deepEqual(decode(answerQuery(ask([]), zone, suffixes, 5)!).additionals, [], 'no OPT asked, none sent')
    const dnssecOk = decode(answerQuery(ask([opt({ flags: dnsPacket.DNSSEC_OK })]), zone, suffixes, 5)!).additionals as unknown as Array<{ flags: number }>
    assert.equal(dnssecOk[0]!.flags & dnsPacket.DNSSEC_OK, dnsPacket.DNSSEC_OK, 'the DO bit is copied (RFC 3225)')
    assert.equal(((decode(answerQuery(ask([opt()]), zone, suffixes, 5)!).additionals as unknown as Array<{ flags: number }>)[0]!.flags), 0)
    const twice = decode(answerQuery(ask([opt(), opt()]), zone, suffixes, 5)!)
    assert.equal(twice.rcode, 'FORMERR')
    const future = answerQuery(ask([opt({ ednsVersion: 1 })]), zone, suffixes, 5)!
    const badvers = decode(future)
    assert.equal(future.readUInt16BE(2) & 0xf, 0, 'BADVERS is 0 in the header')
    assert.deepEqual(badvers.answers, [])
    assert.deepEqual((badvers.additionals as unknown as Opt[]).map((x) => [x.extendedRcode, x.ednsVersion]), [[1, 0]], '... and 1 in the OPT record (16), with the version we speak')
  })

  it('refuses a class other than IN or ANY with the question as sent', () => {
    const zone = new Map([['api.prod', '10.107.0.2']])
    const asked = Buffer.concat([Buffer.from([3]), Buffer.from('api'), Buffer.from([4]), Buffer.from('prod'), Buffer.from([0, 0, 1, 0x04, 0xd2])]) // QCLASS 1234
    const header = Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0])
    const reply = answerQuery(Buffer.concat([header, asked]), zone, servedSuffixes(zone), 5)!
    assert.deepEqual(reply.subarray(0, 4), Buffer.from([0x12, 0x34, 0x81, 0x05]), 'id, QR, RD, REFUSED')
    assert.deepEqual(reply.subarray(12), asked)
  })

  it('answers a name with served names below it NOERROR without data, not NXDOMAIN (RFC 8020)', () => {
    const zone = new Map([['svc.team.corp.example', '10.107.0.2'], ['web.example', '10.107.0.3']])
    const suffixes = servedSuffixes(zone)
    const between = decode(answerQuery(query('corp.example'), zone, suffixes, 5)!)
    assert.equal(between.rcode, 'NOERROR')
    assert.deepEqual(between.answers, [])
    assert.equal(between.authorities?.[0]?.type, 'SOA')
    assert.equal(decode(answerQuery(query('other.example'), zone, suffixes, 5)!).rcode, 'NXDOMAIN')
    // without web.example no served suffix holds corp.example (svc.team.corp.example's is team.corp.example): not ours
    const alone = new Map([['svc.team.corp.example', '10.107.0.2']])
    assert.equal(decode(answerQuery(query('corp.example'), alone, servedSuffixes(alone), 5)!).rcode, 'REFUSED')
  })

  it('a zone apex that is a hostname too answers its SOA (corp.lab beside app.corp.lab): SOA in the answer, ANY with the A', () => {
    const zone = new Map([['corp.lab', '10.107.0.2'], ['app.corp.lab', '10.107.0.3']])
    const suffixes = servedSuffixes(zone)
    assert.ok(suffixes.has('corp.lab'))
    const soa = decode(answerQuery(query('corp.lab', 'SOA'), zone, suffixes, 5)!)
    assert.equal(soa.rcode, 'NOERROR')
    assert.deepEqual(soa.answers?.map((a) => [a.type, a.name]), [['SOA', 'corp.lab']])
    assert.deepEqual(soa.authorities, [])
    const any = decode(answerQuery(query('corp.lab', 'ANY'), zone, suffixes, 5)!)
    assert.deepEqual(any.answers?.map((a) => a.type), ['A', 'SOA'])
    assert.deepEqual(decode(answerQuery(query('corp.lab', 'A'), zone, suffixes, 5)!).answers?.map((a) => a.type), ['A'])
    const aaaa = decode(answerQuery(query('corp.lab', 'AAAA'), zone, suffixes, 5)!)
    assert.deepEqual([aaaa.rcode, aaaa.answers, aaaa.authorities?.[0]?.type], ['NOERROR', [], 'SOA'])
    assert.deepEqual(decode(answerQuery(query('app.corp.lab', 'SOA'), zone, suffixes, 5)!).answers, [], 'below the apex: no data')
  })

  it('refuses a zone transfer (AXFR, IXFR) and the obsolete mailbox types, not an empty transfer (RFC 5936 §2.2.1)', () => {
    const zone = new Map([['api.demo', '10.107.0.2']])
    const suffixes = servedSuffixes(zone)
    for (const type of ['AXFR', 'IXFR', 'UNKNOWN_253'] as const) {
      const refused = decode(answerQuery(query('demo', type), zone, suffixes, 5)!)
      assert.deepEqual([refused.rcode, refused.answers, refused.authorities], ['REFUSED', [], []], type)
    }
  })
})

describe('routedDomains', () => {
  it('sends the machine a private parent whole; a public one, or one above its own name, only by the names served', () => {
    const zone = new Map(['api.demo', 'web.demo', 'api.prod', 'x.ngrok.com', 'foo.com', 'my-api.ngrok.app', 'db.corp'].map((h, i) => [h, `10.107.0.${i + 2}`]))
    // com, prod (a real top-level domain), ngrok.com and ngrok.app are public: sent whole, every other name under them
    // would stop resolving here; corp holds this machine's own name
    assert.deepEqual([...routedDomains(zone, ['extra.staging'], 'build.corp')].sort(), ['api.prod', 'db.corp', 'demo', 'extra.staging', 'foo.com', 'my-api.ngrok.app', 'x.ngrok.com'])
    assert.deepEqual([...routedDomains(new Map([['db.staging', '10.107.0.2']]), [], 'laptop')], ['staging'])
    // a top-level name of local use is never taken whole: mDNS's local (where laptop.local is this machine), a home
    // router's lan, ICANN's internal and the undelegated corp, home and mail, localhost and localdomain
    for (const name of ['local', 'LAN', 'internal', 'corp', 'home', 'mail', 'localhost', 'localdomain']) {
      assert.deepEqual([...routedDomains(new Map([[`api.${name.toLowerCase()}`, '10.107.0.2']]), [name], 'laptop')], [`api.${name.toLowerCase()}`], name)
    }
    assert.deepEqual([...routedDomains(new Map([['api.company.local', '10.107.0.2'], ['nas.home.lan', '10.107.0.3']]), ['corp.internal'], 'laptop')].sort(), ['api.company.local', 'nas.home.lan'], 'nor a name under one (an Active Directory domain)')
    // a configured suffix is routed whole only when that is safe too
    assert.deepEqual([...routedDomains(new Map(), ['com', 'ngrok.app', 'corp', 'team.lan', 'team.staging'], 'build.corp')], ['team.staging'])
  })
})

describe('parseListenAddress', () => {
  it('reads host:port, [v6]:port and a bare address (port 53)', () => {
    assert.deepEqual(parseListenAddress('10.107.0.1'), { host: '10.107.0.1', port: 53 })
    assert.deepEqual(parseListenAddress('127.0.0.53:5353'), { host: '127.0.0.53', port: 5353 })
    assert.deepEqual(parseListenAddress('[::1]:53'), { host: '::1', port: 53 })
    assert.deepEqual(parseListenAddress('::1'), { host: '::1', port: 53 })
    assert.throws(() => parseListenAddress('localhost:53'), { code: 'NGROKD_ERR_PLUGIN_INVALID' })
    assert.throws(() => parseListenAddress('10.0.0.1:99999'), { code: 'NGROKD_ERR_PLUGIN_INVALID' })
    for (const text of ['10.0.0.1:', '10.0.0.1:+53', '10.0.0.1:5e3', '[::1]:']) assert.throws(() => parseListenAddress(text), { code: 'NGROKD_ERR_PLUGIN_INVALID' }, text)
    assert.throws(() => parseListenAddress('localhost:53', 'options.listen.1'), { message: 'options.listen.1 is not an IP address with an optional port 0-65535 (got "localhost:53")' })
  })
})
