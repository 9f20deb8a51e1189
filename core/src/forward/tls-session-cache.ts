/**
 * The TLS session to offer on the next connection to the binding ingress, for one key at a time.
 *
 * - The key names everything a session may be resumed for: the ingress `host:port` (Node does not run
 *   `checkServerIdentity` again on a resumed session, so a session must never be offered to another
 *   host) and the client-credential fingerprint (a session carries the client certificate it was made
 *   with, so one from before a rotation must not be offered after it).
 * - Asking for another key drops the session held for the previous one: a rotation or an endpoint
 *   change forgets the old session at once.
 * - A session arriving for a key that is no longer current (a late TLS 1.3 ticket on an old
 *   connection) is ignored.
 * - A TLS 1.3 session is kept without the server's certificate ({@link withoutPeerCertificate}).
 */
export class TlsSessionCache {
  private currentKey?: string
  private session?: Buffer

  /** The session to offer for `key`, which becomes the current key. */
  get(key: string): Buffer | undefined {
    if (key !== this.currentKey) {
      this.currentKey = key
      this.session = undefined
    }
    return this.session
  }

  /** Keeps `session` (a `tls` `session` event's payload) if `key` is the current key. */
  set(key: string, session: Buffer): void {
    if (key === this.currentKey) this.session = withoutPeerCertificate(session)
  }

  /**
   * Forgets the session for `key` if it is still `offered` (the server refused it, or a connection
   * that offered it failed); a newer one that arrived meanwhile is kept.
   */
  drop(key: string, offered: Buffer): void {
    if (key === this.currentKey && this.session === offered) this.session = undefined
  }

  clear(): void {
    this.currentKey = undefined
    this.session = undefined
  }

  /** Whether a session is held for the current key. */
  get held(): boolean {
    return this.session !== undefined
  }
}

/** Tag of SSL_SESSION's `peer` field: context-specific, constructed, [3] EXPLICIT (OpenSSL ssl/ssl_asn1.c). */
const PEER_FIELD_TAG = 0xa3
const SEQUENCE_TAG = 0x30
/** SSL_SESSION's second field, `ssl_version`, for TLS 1.3: INTEGER 0x0304 (TLS1_3_VERSION, OpenSSL's prov_ssl.h). */
const TLS13_VERSION_FIELD = Buffer.from([0x02, 0x02, 0x03, 0x04])

/**
 * The envelope newer Node puts around the DER (lib/internal/tls/wrap.js, wrapSessionState; 24.22 has
 * it, 20.20 not): this prefix, the servername the session was made for (uint16 length, UTF-8), then
 * the DER. Older Node hands out the DER alone.
 */
const NODE_SESSION_PREFIX = Buffer.from('\0nodejs:tls:session:1\0')

/**
 * A TLS 1.3 session as Node serialises it (OpenSSL's SSL_SESSION DER, ssl/ssl_asn1.c, in Node's
 * envelope where it has one) without its `peer` field, the server's certificate. Anything else is
 * returned as is: a TLS 1.2 session, or a layout it does not know.
 *
 * Why: `tls.connect({ session })` decodes the session, and the certificate's public key with it
 * (OpenSSL 3's key decoders), on every connection: 14 % of the daemon's CPU per new connection here
 * (perf, Node 20). A resumed TLS 1.3 handshake does not use that certificate: the server proves
 * itself with the session's secret, and Node counts a resumed TLS 1.3 session without a certificate
 * as verified (its VerifyPeerCertificate) and runs no `checkServerIdentity` on it. The certificate
 * was verified when the session was made, and the cache offers the session only to that ingress.
 * TLS 1.2 needs it: Node reports a resumed TLS 1.2 session without one as unverified.
 */
export function withoutPeerCertificate(session: Buffer): Buffer {
  let derStart = 0
  if (session.subarray(0, NODE_SESSION_PREFIX.length).equals(NODE_SESSION_PREFIX)) {
    if (session.length < NODE_SESSION_PREFIX.length + 2) return session
    derStart = NODE_SESSION_PREFIX.length + 2 + session.readUInt16BE(NODE_SESSION_PREFIX.length)
  }
  const der = tls13WithoutPeerField(session.subarray(derStart))
  return der ? Buffer.concat([session.subarray(0, derStart), der]) : session
}

/** The SSL_SESSION DER without its [3] field if it is a TLS 1.3 session that has one; otherwise undefined. */
function tls13WithoutPeerField(der: Buffer): Buffer | undefined {
  const outer = readHeader(der, 0)
  if (!outer || der[0] !== SEQUENCE_TAG || outer.end !== der.length) return undefined
  const fields: Buffer[] = []
  for (let at = outer.contentStart; at < outer.end; ) {
    const field = readHeader(der, at)
    if (!field || field.end > outer.end) return undefined
    fields.push(der.subarray(at, field.end))
    at = field.end
  }
  const kept = fields.filter((f) => f[0] !== PEER_FIELD_TAG)
  if (!fields[1]?.equals(TLS13_VERSION_FIELD) || kept.length === fields.length) return undefined
  const content = Buffer.concat(kept)
  return Buffer.concat([Buffer.from([SEQUENCE_TAG]), derLength(content.length), content])
}

/** A DER TLV's content start and end at `at` (one-byte tag, definite length); undefined when it is not one. */
function readHeader(der: Buffer, at: number): { contentStart: number; end: number } | undefined {
  if (at + 2 > der.length || (der[at] & 0x1f) === 0x1f) return undefined // high tag numbers: not in SSL_SESSION
  const first = der[at + 1]
  let length = first
  let contentStart = at + 2
  if (first & 0x80) {
    const octets = first & 0x7f
    if (octets === 0 || octets > 4 || contentStart + octets > der.length) return undefined // 0: indefinite, not DER
    length = 0
    for (let i = 0; i < octets; i++) length = length * 256 + der[contentStart + i]
    contentStart += octets
  }
  const end = contentStart + length
  return end <= der.length ? { contentStart, end } : undefined
}

function derLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length])
  const octets: number[] = []
  for (let n = length; n > 0; n = Math.floor(n / 256)) octets.unshift(n & 0xff)
  return Buffer.from([0x80 | octets.length, ...octets])
}
