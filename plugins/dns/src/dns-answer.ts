import { hostname as machineHostname } from 'node:os'
import dnsPacket, { type Answer, type Packet, type Question } from 'dns-packet'
import { parse as parseDomain } from 'tldts'

/** hostname (lowercase, no trailing dot) → IPv4 address; replaced whole, never edited in place. */
export type Zone = ReadonlyMap<string, string>

/** The smallest message is its 12-byte header — RFC 1035 §4.1.1. */
export const HEADER_BYTES = 12
/** The smallest question: the root name (one zero byte), QTYPE and QCLASS — RFC 1035 §4.1.2. */
const MIN_QUESTION_BYTES = 5
/** The smallest resource record: the root name, TYPE, CLASS, TTL and RDLENGTH, no data — RFC 1035 §4.1.3. */
const MIN_RECORD_BYTES = 11
/** A query is one short question (and maybe an EDNS OPT record); anything this long is not one we answer. */
export const MAX_QUERY_BYTES = 4096
/** What a UDP reply may carry to a client that offers no EDNS payload size — RFC 1035 §4.2.1. */
const CLASSIC_UDP_BYTES = 512
/** The UDP payload size our OPT record offers: what fits an IPv6 minimum MTU unfragmented (DNS Flag Day 2020). */
const OUR_EDNS_PAYLOAD = 1232
const OPT_TYPE = 41 // RFC 6891 §6.1.1
/** DNSSEC OK, the top bit of the OPT record's flags — RFC 3225 §3. */
const DO_FLAG = 0x8000
/** The one EDNS version there is — RFC 6891 §6.1.3. */
const EDNS_VERSION = 0
/** BADVERS (16) is RCODE 0 in the header and 1 in the OPT record's upper 8 bits — RFC 6891 §6.1.3. */
const BADVERS_EXTENDED = 16 >> 4

// RCODE values — RFC 1035 §4.1.1.
const NOERROR = 0
const FORMERR = 1
const NXDOMAIN = 3
const NOTIMP = 4
const REFUSED = 5
const QR = 1 << 15 // header flags — RFC 1035 §4.1.1
const RCODE_MASK = 0xf
const RD = 1 << 8
const OPCODE_MASK = 0xf << 11 // OPCODE is bits 11-14 of the 16-bit flags — RFC 1035 §4.1.1

/**
 * The served suffixes of a zone: each hostname's parent domain (`api.prod` → `prod`), plus `extra`.
 * Names under them that are not in the zone answer NXDOMAIN; names outside them REFUSED.
 */
export function servedSuffixes(zone: Zone, extra: readonly string[] = []): Set<string> {
  const suffixes = new Set(extra.map(normalizeName))
  for (const hostname of zone.keys()) {
    const parent = parentOf(hostname)
    if (parent !== undefined) suffixes.add(parent)
  }
  return suffixes
}

/** `api.prod` → `prod`; undefined for a name of one label. */
function parentOf(hostname: string): string | undefined {
  const dot = hostname.indexOf('.')
  return dot > 0 ? hostname.slice(dot + 1) : undefined
}

/**
 * Top-level names that other resolvers answer on many machines, though no public DNS does: routing one whole, or a name
 * under one (`corp.local`, an Active Directory domain), would take every name under it away from them. `local`: Multicast DNS (RFC 6762), where this machine's own name is
 * `<hostname>.local`; `localhost` (RFC 6761); `internal`, reserved by ICANN for private networks (2024); `home`, `corp`
 * and `mail`, which ICANN will not delegate because private networks use them (2018); `lan` and `localdomain`, which
 * home routers and distributions use for the local network's names.
 */
const LOCAL_USE_NAMES = new Set(['local', 'localhost', 'internal', 'home', 'corp', 'mail', 'lan', 'localdomain'])

/**
 * Whether the machine's resolver may send every name under `domain` to the responder: not when it is a public
 * suffix of the ICANN list or under one (`com`, `prod`, `ngrok.app`, `ngrok.com`: every other name under it
 * would stop resolving on this machine), nor a top-level name of local use or a name under one ({@link LOCAL_USE_NAMES}:
 * `local`, `corp.local`, `lan`…), nor when this machine's own name is under it.
 */
export function safeToRouteWhole(domain: string, ownName: string = machineHostname()): boolean {
  const own = normalizeName(ownName)
  const topLevel = domain.slice(domain.lastIndexOf('.') + 1)
  return !parseDomain(domain).isIcann && !LOCAL_USE_NAMES.has(topLevel) && own !== domain && !own.endsWith(`.${domain}`)
}

/**
 * The domains the machine's resolver is told to send to the responder (systemd-resolved's routing domains,
 * /etc/resolver files, NRPT rules): a hostname's parent where sending all of it is safe
 * ({@link safeToRouteWhole}), else the hostname alone, plus each `extra` (configured) suffix that is safe.
 */
export function routedDomains(zone: Zone, extra: readonly string[] = [], ownName: string = machineHostname()): Set<string> {
  const routed = new Set(extra.map(normalizeName).filter((suffix) => safeToRouteWhole(suffix, ownName)))
  const safeParent = new Map<string, boolean>()
  for (const hostname of zone.keys()) {
    const parent = parentOf(hostname)
    if (parent !== undefined && !safeParent.has(parent)) safeParent.set(parent, safeToRouteWhole(parent, ownName))
    routed.add(parent !== undefined && safeParent.get(parent) ? parent : hostname)
  }
  return routed
}

/** Lower case for A–Z only (DNS compares ASCII case-insensitively — RFC 4343), the trailing dot dropped. */
export function normalizeName(name: string): string {
  return name.replace(/[A-Z]+/g, (upper) => upper.toLowerCase()).replace(/\.$/, '')
}

/**
 * Answers one DNS message (the wire bytes of a query) from `zone`; `undefined` means drop it (too short
 * to carry an id, or a response rather than a query). Never throws: a message that does not decode is
 * answered FORMERR with its id. A query with an EDNS OPT record gets one back (RFC 6891 §7); two OPT
 * records are FORMERR, an EDNS version past 0 BADVERS (RFC 6891 §6.1.1, §6.1.3).
 */
export function answerQuery(message: Buffer, zone: Zone, suffixes: ReadonlySet<string>, ttl: number, { udp = false }: { udp?: boolean } = {}): Buffer | undefined {
  if (message.length < HEADER_BYTES || message.length > MAX_QUERY_BYTES) return undefined
  const id = message.readUInt16BE(0)
  if (message[2]! & 0x80) return undefined // QR set: a response, never answered (no reflection loops)
  // OPCODE and RD are copied into every response — RFC 1035 §4.1.1
  const copied = message.readUInt16BE(2) & (OPCODE_MASK | RD)
  // counts the message cannot hold are FORMERR before decoding: dns-packet makes an array of each count first
  // (a 12-byte header of 0xffff counts cost ~2 MB and ~1.8 ms of the main thread)
  const records = message.readUInt16BE(6) + message.readUInt16BE(8) + message.readUInt16BE(10)
  if (message.readUInt16BE(4) * MIN_QUESTION_BYTES + records * MIN_RECORD_BYTES > message.length - HEADER_BYTES) return errorReply(id, copied | FORMERR, [])
  let query: Packet
  try {
    query = dnsPacket.decode(message)
  } catch {
    return errorReply(id, copied | FORMERR, [])
  }
  const questions = query.questions ?? []
  const opts = (query.additionals ?? []).filter((a) => a.type === 'OPT') as Array<{ udpPayloadSize?: number; ednsVersion?: number; flags?: number }>
  // the DO bit is copied into the response — RFC 3225 §3
  const dnssecOk = ((opts[0]?.flags ?? 0) & DO_FLAG) !== 0
  const edns = (reply: Buffer, extendedRcode = 0): Buffer => (opts.length > 0 ? withOpt(reply, extendedRcode, dnssecOk) : reply)
  if ((copied & OPCODE_MASK) !== 0) return edns(errorReply(id, copied | NOTIMP, questions)) // only QUERY (0)
  if (questions.length !== 1 || opts.length > 1) return edns(errorReply(id, copied | FORMERR, questions))
  const raw = rawQuestion(message)
  if (raw === undefined) return edns(errorReply(id, copied | FORMERR, []))
  if ((opts[0]?.ednsVersion ?? EDNS_VERSION) > EDNS_VERSION) return edns(rawReply(id, copied | NOERROR, raw.bytes), BADVERS_EXTENDED)
  // a label holding a dot (`api\.prod`, one label) or a byte past ASCII is no name served here (endpoint hostnames are
  // ASCII, IDNs in punycode), and the decoded text would not be echoed as asked; a class other than IN or ANY is
  // none served here either, and dns-packet would not encode it back: refused, the question as sent
  const question = questions[0]!
  if (raw.unservable || (question.class !== 'IN' && question.class !== 'ANY')) return edns(rawReply(id, copied | REFUSED, raw.bytes))
  const answer = edns(answerQuestion(id, copied, question, zone, suffixes, ttl))
  // over UDP a reply larger than the client takes (512 bytes, or its EDNS payload size) is cut to its question, TC set — RFC 1035 §4.2.1, RFC 6891 §6.2.5
  const limit = udp ? Math.max(CLASSIC_UDP_BYTES, opts[0]?.udpPayloadSize ?? 0) : Infinity
  return answer.length <= limit ? answer : edns(rawReply(id, copied | dnsPacket.TRUNCATED_RESPONSE | (answer.readUInt16BE(2) & (dnsPacket.AUTHORITATIVE_ANSWER | RCODE_MASK)), raw.bytes))
}

/** Question types that ask for a zone transfer (IXFR 251, AXFR 252) or the obsolete mailbox sets (MAILB 253, MAILA 254) — RFC 1035 §3.2.3, RFC 1995. */
const TRANSFER_TYPES = new Set(['IXFR', 'AXFR', 'UNKNOWN_253', 'UNKNOWN_254']) // as dns-packet names them

/** The reply to a QUERY's one question; `rd` is the query's RD flag, copied. */
function answerQuestion(id: number, rd: number, question: Question, zone: Zone, suffixes: ReadonlySet<string>, ttl: number): Buffer {
  const name = normalizeName(question.name)
  let suffix: string | undefined // the longest served suffix the name is under
  for (const s of suffixes) if ((name === s || name.endsWith(`.${s}`)) && s.length > (suffix?.length ?? -1)) suffix = s
  // no zone is transferred: refused, not an empty transfer — RFC 5936 §2.2.1
  if (suffix === undefined || TRANSFER_TYPES.has(question.type as string)) return reply(id, rd | REFUSED, question, [], [])
  const aa = rd | dnsPacket.AUTHORITATIVE_ANSWER
  const address = zone.get(name)
  const soa = soaRecord(suffix, ttl)
  // a zone's apex owns its SOA, whether or not it is a hostname too (corp.lab beside app.corp.lab)
  const apexSoa = name === suffix && (question.type === 'SOA' || (question.type as string) === 'ANY') ? [{ ...soa, name: question.name }] : []
  if (address !== undefined) {
    const a = question.type === 'A' || (question.type as string) === 'ANY' ? [{ type: 'A' as const, class: 'IN' as const, name: question.name, ttl, data: address }] : []
    if (a.length + apexSoa.length > 0) return reply(id, aa | NOERROR, question, [...a, ...apexSoa], [])
    return reply(id, aa | NOERROR, question, [], [soa]) // no data (AAAA until IPv6): the name exists
  }
  if (name === suffix) return reply(id, aa | NOERROR, question, question.type === 'SOA' ? apexSoa : [], question.type === 'SOA' ? [] : [soa])
  // a name with served names below it exists, though it has no records (an empty non-terminal): NXDOMAIN would
  // say nothing exists below it either — RFC 8020
  if (namesWithDescendants(zone).has(name)) return reply(id, aa | NOERROR, question, [], [soa])
  return reply(id, aa | NXDOMAIN, question, [], [soa])
}

const descendantsCache = new WeakMap<Zone, ReadonlySet<string>>()

/** Every name that is an ancestor of a hostname of `zone` (`team.corp.example` → `corp.example`, `example`); computed once per zone. */
function namesWithDescendants(zone: Zone): ReadonlySet<string> {
  let names = descendantsCache.get(zone)
  if (names === undefined) {
    const found = new Set<string>()
    for (const hostname of zone.keys()) {
      for (let parent = parentOf(hostname); parent !== undefined && !found.has(parent); parent = parentOf(parent)) found.add(parent)
    }
    names = found
    descendantsCache.set(zone, names)
  }
  return names
}

/**
 * `reply` with our OPT record appended as its one additional record (our replies have none else): UDP payload
 * size, extended RCODE, version 0, the query's DO bit, no options — RFC 6891 §6.1.2, §6.1.3, RFC 3225 §3.
 */
function withOpt(reply: Buffer, extendedRcode: number, dnssecOk: boolean): Buffer {
  const opt = Buffer.alloc(11)
  // opt[0] = 0: the root name
  opt.writeUInt16BE(OPT_TYPE, 1)
  opt.writeUInt16BE(OUR_EDNS_PAYLOAD, 3) // CLASS holds the payload size
  opt.writeUInt8(extendedRcode, 5) // TTL: extended RCODE, VERSION, DO and Z (all 0)
  opt.writeUInt8(EDNS_VERSION, 6)
  if (dnssecOk) opt.writeUInt16BE(DO_FLAG, 7)
  // RDLENGTH 0
  const out = Buffer.concat([reply, opt])
  out.writeUInt16BE(reply.readUInt16BE(10) + 1, 10) // ARCOUNT
  return out
}

/**
 * The question section as sent (its name's labels, QTYPE, QCLASS: the bytes after the header up to the end of
 * the first question), and whether a label holds a dot or a byte past ASCII; undefined when it does not parse (a
 * compression pointer in a question is not something a resolver sends).
 */
function rawQuestion(message: Buffer): { bytes: Buffer; unservable: boolean } | undefined {
  let at = HEADER_BYTES
  let unservable = false
  for (;;) {
    const length = message[at]
    if (length === undefined || length > 63) return undefined // 0b11 pointers and 0b01/0b10 label types — RFC 1035 §4.1.4, RFC 6891 §5
    if (length === 0) break
    for (const byte of message.subarray(at + 1, at + 1 + length)) if (byte === 0x2e || byte > 0x7f) unservable = true
    at += 1 + length
  }
  const end = at + 1 + 4 // the root label, QTYPE, QCLASS
  return end > message.length ? undefined : { bytes: message.subarray(HEADER_BYTES, end), unservable }
}

/** A response of a header and the question bytes as the query sent them. */
function rawReply(id: number, flags: number, question: Buffer): Buffer {
  const header = Buffer.alloc(HEADER_BYTES)
  header.writeUInt16BE(id, 0)
  header.writeUInt16BE(QR | flags, 2)
  header.writeUInt16BE(1, 4) // QDCOUNT
  return Buffer.concat([header, question])
}

/** `flags` holds AA, RD and the RCODE; dns-packet adds QR for `type: 'response'`. */
function reply(id: number, flags: number, question: Question, answers: Answer[], authorities: Answer[]): Buffer {
  return dnsPacket.encode({ type: 'response', id, flags, questions: [question], answers, authorities })
}

/** A reply built by hand: the query's own questions may be what failed to decode. `flags`: the copied OPCODE and RD, and the RCODE. */
function errorReply(id: number, flags: number, questions: Question[]): Buffer {
  try {
    if (questions.length === 1) return dnsPacket.encode({ type: 'response', id, flags, questions })
  } catch {
    // fall through to a bare header
  }
  const header = Buffer.alloc(HEADER_BYTES)
  header.writeUInt16BE(id, 0)
  header.writeUInt16BE(QR | flags, 2)
  return header
}

/**
 * The longest name as text (no trailing dot): 255 octets on the wire are its labels, a length octet before each and
 * the root's zero octet, so the text plus 2 — RFC 1035 §2.3.4, §3.1.
 */
const MAX_NAME_TEXT = 253

/** `label.suffix`, or `label.invalid` (RFC 6761 §6.4: never a real name) when that would pass 255 octets. */
function nameUnder(label: string, suffix: string): string {
  const name = `${label}.${suffix}`
  return name.length <= MAX_NAME_TEXT ? name : `${label}.invalid`
}

/** The zone apex's SOA, sent with negative answers; its minimum is the negative-cache TTL (RFC 2308 §5). */
function soaRecord(suffix: string, ttl: number): Answer {
  return {
    type: 'SOA',
    class: 'IN',
    name: suffix,
    ttl,
    data: { mname: nameUnder('ngrokd', suffix), rname: nameUnder('hostmaster', suffix), serial: 1, refresh: ttl, retry: ttl, expire: ttl, minimum: ttl },
  }
}
