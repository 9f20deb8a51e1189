import { hostname as machineHostname } from 'node:os'
import dnsPacket, { type Answer, type Packet, type Question } from 'dns-packet'
import { parse as parseDomain } from 'tldts'

/** hostname (lowercase, no trailing dot) → IPv4 address; replaced whole, never edited in place. */
export type Zone = ReadonlyMap<string, string>

/** The smallest message is its 12-byte header — RFC 1035 §4.1.1. */
export const HEADER_BYTES = 12
/** A query is one short question (and maybe an EDNS OPT record); anything this long is not one we answer. */
export const MAX_QUERY_BYTES = 4096

// RCODE values — RFC 1035 §4.1.1.
const NOERROR = 0
const FORMERR = 1
const NXDOMAIN = 3
const NOTIMP = 4
const REFUSED = 5
const QR = 1 << 15 // header flags — RFC 1035 §4.1.1
const RD = 1 << 8
const OPCODE_SHIFT = 3 // OPCODE is bits 11-14 of the flags: bits 3-6 of byte 2 — RFC 1035 §4.1.1

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
 * The domains the machine's resolver is told to send to the responder (systemd-resolved's routing domains,
 * /etc/resolver files, NRPT rules): a hostname's parent where sending all of it is safe, else the hostname
 * alone, plus `extra` (configured, sent as they are). A parent is not sent whole when it is a public suffix of
 * the ICANN list or under one (`com`, `prod`, `ngrok.app`, `ngrok.com`: every other name under it would stop
 * resolving on this machine), or when this machine's own name is under it.
 */
export function routedDomains(zone: Zone, extra: readonly string[] = [], ownName: string = machineHostname()): Set<string> {
  const routed = new Set(extra.map(normalizeName))
  const own = normalizeName(ownName)
  const safeParent = new Map<string, boolean>()
  for (const hostname of zone.keys()) {
    const parent = parentOf(hostname)
    if (parent !== undefined && !safeParent.has(parent)) safeParent.set(parent, !parseDomain(parent).isIcann && own !== parent && !own.endsWith(`.${parent}`))
    routed.add(parent !== undefined && safeParent.get(parent) ? parent : hostname)
  }
  return routed
}

export function normalizeName(name: string): string {
  return name.toLowerCase().replace(/\.$/, '')
}

/**
 * Answers one DNS message (the wire bytes of a query) from `zone`; `undefined` means drop it (too short
 * to carry an id, or a response rather than a query). Never throws: a message that does not decode is
 * answered FORMERR with its id.
 */
export function answerQuery(message: Buffer, zone: Zone, suffixes: ReadonlySet<string>, ttl: number): Buffer | undefined {
  if (message.length < HEADER_BYTES || message.length > MAX_QUERY_BYTES) return undefined
  const id = message.readUInt16BE(0)
  if (message[2]! & 0x80) return undefined // QR set: a response, never answered (no reflection loops)
  let query: Packet
  try {
    query = dnsPacket.decode(message)
  } catch {
    return errorReply(id, FORMERR, [])
  }
  const questions = query.questions ?? []
  if (((message[2]! >> OPCODE_SHIFT) & 0xf) !== 0) return errorReply(id, NOTIMP, questions) // only QUERY (0)
  if (questions.length !== 1) return errorReply(id, FORMERR, questions)
  const question = questions[0]!
  const name = normalizeName(question.name)
  let suffix: string | undefined // the longest served suffix the name is under
  for (const s of suffixes) if ((name === s || name.endsWith(`.${s}`)) && s.length > (suffix?.length ?? -1)) suffix = s
  const rd = (query.flags ?? 0) & RD // copied into the response — RFC 1035 §4.1.1
  if (suffix === undefined || (question.class !== 'IN' && question.class !== 'ANY')) return reply(id, rd | REFUSED, question, [], [])
  const aa = rd | dnsPacket.AUTHORITATIVE_ANSWER
  const address = zone.get(name)
  const soa = soaRecord(suffix, ttl)
  if (address !== undefined) {
    if (question.type === 'A' || (question.type as string) === 'ANY') return reply(id, aa | NOERROR, question, [{ type: 'A', class: 'IN', name: question.name, ttl, data: address }], [])
    return reply(id, aa | NOERROR, question, [], [soa]) // no data (AAAA until IPv6): the name exists
  }
  if (name === suffix) return reply(id, aa | NOERROR, question, question.type === 'SOA' ? [{ ...soa, name: question.name }] : [], question.type === 'SOA' ? [] : [soa])
  return reply(id, aa | NXDOMAIN, question, [], [soa])
}

/** `flags` holds AA, RD and the RCODE; dns-packet adds QR for `type: 'response'`. */
function reply(id: number, flags: number, question: Question, answers: Answer[], authorities: Answer[]): Buffer {
  return dnsPacket.encode({ type: 'response', id, flags, questions: [question], answers, authorities })
}

/** A reply built by hand: the query's own questions may be what failed to decode. */
function errorReply(id: number, rcode: number, questions: Question[]): Buffer {
  try {
    if (questions.length === 1) return dnsPacket.encode({ type: 'response', id, flags: rcode, questions })
  } catch {
    // fall through to a bare header
  }
  const header = Buffer.alloc(HEADER_BYTES)
  header.writeUInt16BE(id, 0)
  header.writeUInt16BE(QR | rcode, 2)
  return header
}

/** The zone apex's SOA, sent with negative answers; its minimum is the negative-cache TTL (RFC 2308 §5). */
function soaRecord(suffix: string, ttl: number): Answer {
  return {
    type: 'SOA',
    class: 'IN',
    name: suffix,
    ttl,
    data: { mname: `ngrokd.${suffix}`, rname: `hostmaster.${suffix}`, serial: 1, refresh: ttl, retry: ttl, expire: ttl, minimum: ttl },
  }
}
