import { Transform, type TransformCallback } from 'node:stream'
import { silentLogger, type Logger } from '../contracts/logger.js'
import { NgrokdError } from '../errors/ngrokd-error.js'

/** Largest request head held while waiting for its end; a longer one is passed through unchanged. */
export const MAX_HEAD_BYTES = 64 * 1024
/** A chunk-size line with its extensions (RFC 9112 §7.1.1); longer = not a chunked body we can follow. */
const MAX_CHUNK_LINE = 4096
/** Trailer section of one chunked message (RFC 9112 §7.1.2). */
const MAX_TRAILER_BYTES = 64 * 1024
/** Hex digits of a chunk size: 13 keep it below 2^53 (16^13 = 2^52). */
const MAX_CHUNK_SIZE_DIGITS = 13

const LF = 0x0a
const CR = 0x0d
const SP = 0x20
const HTAB = 0x09
const COLON = 0x3a
const SEMICOLON = 0x3b

/** tchar of RFC 9110 §5.6.2: the bytes of a method or a field name. */
const TCHAR = new Uint8Array(256)
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TCHAR[c.charCodeAt(0)] = 1

/** request-line of RFC 9112 §3: method SP request-target SP HTTP-version. */
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([^\s]+) HTTP\/(\d)\.(\d)$/

export interface HostRewriterOptions {
  /** Where "passing the rest through" is logged (debug; the head-size cap at warn, once). */
  logger?: Logger
  /** Default {@link MAX_HEAD_BYTES}. */
  maxHeadBytes?: number
}

/** The rewriter stream, with what it did so far (for logs and tests). */
export interface HostRewriter extends Transform {
  /** Request heads rewritten so far. */
  readonly requests: number
  /** Set once the rewriter has stopped parsing and passes every further byte through unchanged. */
  readonly passthroughReason: string | undefined
  /**
   * The bytes of the other direction (server → client), to be shown as they pass: after an `Upgrade` request the
   * rewriter reads the status line of its answer, to go on rewriting after anything but `101 Switching Protocols`.
   */
  observeResponse(chunk: Buffer): void
}

type State =
  | { kind: 'head' }
  | { kind: 'body'; remaining: number }
  | { kind: 'chunk-size'; digits: number; size: number; inExt: boolean; lineBytes: number }
  | { kind: 'chunk-data'; remaining: number }
  | { kind: 'chunk-data-end'; sawCr: boolean }
  | { kind: 'trailers'; lineBytes: number; totalBytes: number }
  /** An Upgrade request ended: the client's bytes wait for the status line of its answer. */
  | { kind: 'upgrade-answer' }
  | { kind: 'pass' }

/** Longest status line (with interim responses' fields before it) read while waiting for an Upgrade's answer. */
const MAX_ANSWER_BYTES = 16 * 1024
const SWITCHED = '101 Switching Protocols: another protocol follows'
/** status-line of RFC 9112 §4: HTTP-version SP status-code SP [reason-phrase]. */
const STATUS_LINE = /^HTTP\/1\.\d (\d{3})(?: |$)/

/** One line of a head: `[start, contentEnd)` without the line ending, `[start, end)` with it. */
interface Line {
  start: number
  contentEnd: number
  end: number
}

/** A header field: its first line, the lines folded onto it (obs-fold), and its lower-case name. */
interface Field {
  name: string
  colon: number
  lines: Line[]
}

/**
 * An HTTP/1.x request-stream rewriter for network mode: sets the `Host` header of **every** request on
 * a keep-alive connection to `hostHeaderValue` (the endpoint's hostname, with `:port` when the port is
 * not the scheme's default) and passes everything else through byte for byte.
 *
 * - Heads are parsed incrementally (a head may arrive one byte at a time). The first `Host` field's
 *   value is replaced in place (its name's case, the whitespace after the colon and the line ending are
 *   kept); further `Host` fields are removed, so the server sees exactly one; a head without one gets
 *   `Host: <value>` before its blank line. Every other byte of the head is kept (order, case, spacing).
 * - A head is sent on as soon as its blank line arrives: the body is never needed to proceed, so
 *   `Expect: 100-continue` works (the client waits for the server's 100, which needs the head).
 * - Bodies are streamed untouched and unbuffered, framed as RFC 9112 §6 says for requests:
 *   `Transfer-Encoding: chunked` followed chunk by chunk (extensions and trailers included),
 *   else `Content-Length` bytes counted, else no body. Pipelined requests follow one another.
 * - After an `Upgrade` request (websockets, h2c) the client's next bytes wait for the status line of the
 *   server's answer ({@link HostRewriter.observeResponse}, read from the request's head on, so an answer that comes
 *   before the body ends counts too): `101 Switching Protocols` and every further byte passes through unchanged;
 *   any other final status (the upgrade declined) and rewriting goes on. Interim `1xx` answers are skipped. (The answer read is the next one on the connection: a client that
 *   pipelines requests before an Upgrade is not told apart.)
 * - After `CONNECT`, after an HTTP/2 preface, or at anything it cannot frame (a bad request line or field line, an unknown transfer coding, conflicting
 *   lengths, a head over `maxHeadBytes`): every further byte passes through unchanged. Nothing already
 *   read is ever dropped or held back past the end of its head; a partial head left at the end of the
 *   stream is flushed as it was.
 * - The request target is never changed: an absolute-form target (`GET http://x/ HTTP/1.1`, proxy
 *   style) keeps its authority, which a server prefers over Host (RFC 9112 §3.2.2).
 *
 * ```ts
 * client.pipe(createHostRewriter('api.prod')).pipe(ingress) // every request arrives with Host: api.prod
 * ```
 */
export function createHostRewriter(hostHeaderValue: string, options: HostRewriterOptions = {}): HostRewriter {
  // an authority (RFC 3986 §3.2): visible ASCII, no delimiters that could end the field or the line
  if (typeof hostHeaderValue !== 'string' || !/^[\x21-\x7e]+$/.test(hostHeaderValue) || /[,/?#@\\]/.test(hostHeaderValue)) {
    throw new NgrokdError('NGROKD_ERR_HOSTNAME_INVALID', `host rewriter: ${JSON.stringify(hostHeaderValue)} is not a host[:port] value`, {
      hint: 'pass the endpoint hostname, with :port for a non-default port',
    })
  }
  return new HostRewriterStream(hostHeaderValue, options)
}

class HostRewriterStream extends Transform implements HostRewriter {
  private readonly host: Buffer
  private readonly logger: Logger
  private readonly maxHeadBytes: number
  private state: State = { kind: 'head' }
  private reason: string | undefined
  private rewritten = 0
  /** The current request asked to switch protocols: what follows its body depends on the server's answer. */
  private upgradeAfter = false
  /** Client bytes that arrived while waiting for the answer to an Upgrade request. */
  private held: Buffer[] = []
  private heldBytes = 0
  /** The answer's bytes read so far: up to the end of its status line (and of interim responses before it). */
  private answer = ''
  /** In an interim (1xx) response's fields: the answer's final status line comes after their blank line. */
  private interim = false
  /** Reading the answer to an Upgrade request, from its head on: its final status decides what follows its body. */
  private watching = false
  /** That final status, when it came before the request's body ended (the server answered early). */
  private verdict: number | undefined

  // the head being collected: a growable buffer (amortised O(1) per byte, even one byte per write)
  private head = Buffer.allocUnsafe(1024)
  private headLen = 0
  /** Where the line being collected starts in {@link head}. */
  private lineStart = 0
  private lines: Line[] = []
  private requestLine: Line | undefined
  /** Request line so far: a space was seen (the method is complete). */
  private methodDone = false

  constructor(host: string, options: HostRewriterOptions) {
    super()
    this.host = Buffer.from(host, 'latin1')
    this.logger = options.logger ?? silentLogger
    this.maxHeadBytes = options.maxHeadBytes ?? MAX_HEAD_BYTES
  }

  get requests(): number {
    return this.rewritten
  }

  get passthroughReason(): string | undefined {
    return this.reason
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.feed(chunk)
    done()
  }

  /** Parses `chunk` from the state it finds, pushing what goes on. */
  private feed(chunk: Buffer): void {
    const len = chunk.length
    let i = 0
    /** Start of the bytes of `chunk` that go out unchanged. */
    let from = 0
    while (i < len) {
      const s = this.state
      switch (s.kind) {
        case 'pass':
          i = len
          break
        case 'upgrade-answer':
          this.hold(chunk.subarray(i))
          i = from = len
          break
        case 'head':
          if (from < i) this.push(chunk.subarray(from, i))
          i = this.feedHead(chunk, i)
          from = i
          break
        case 'body': {
          const n = Math.min(s.remaining, len - i)
          i += n
          s.remaining -= n
          if (s.remaining === 0) this.endOfMessage()
          break
        }
        case 'chunk-data': {
          const n = Math.min(s.remaining, len - i)
          i += n
          s.remaining -= n
          if (s.remaining === 0) this.state = { kind: 'chunk-data-end', sawCr: false }
          break
        }
        case 'chunk-size':
          this.chunkSizeByte(s, chunk[i]!)
          i++
          break
        case 'chunk-data-end': {
          const b = chunk[i]!
          i++
          if (b === LF) this.state = { kind: 'chunk-size', digits: 0, size: 0, inExt: false, lineBytes: 0 }
          else if (b === CR && !s.sawCr) s.sawCr = true
          else this.passThrough('chunk data not followed by CRLF')
          break
        }
        case 'trailers': {
          const b = chunk[i]!
          i++
          s.totalBytes++
          if (b === LF) {
            if (s.lineBytes === 0) this.endOfMessage()
            else s.lineBytes = 0
          } else if (b !== CR) {
            s.lineBytes++
          }
          if (this.state === s && s.totalBytes > MAX_TRAILER_BYTES) this.passThrough(`trailer section over ${MAX_TRAILER_BYTES} bytes`)
          break
        }
      }
    }
    if (from < len) this.push(chunk.subarray(from, len))
  }

  override _flush(done: TransformCallback): void {
    // the stream ended inside a head, or while its bytes waited for an Upgrade's answer: what arrived goes on as it was
    if (this.state.kind === 'upgrade-answer') this.passThrough('the client ended before the Upgrade was answered')
    if (this.state.kind === 'head' && this.headLen > 0) this.push(Buffer.from(this.head.subarray(0, this.headLen)))
    this.headLen = 0
    done()
  }

  /** Collects head bytes from `chunk[i..]`; returns the index after the last byte it took. */
  private feedHead(chunk: Buffer, i: number): number {
    const len = chunk.length
    while (i < len && this.state.kind === 'head') {
      const nl = chunk.indexOf(LF, i)
      let end = nl < 0 ? len : nl + 1
      // never collect more than one byte past the cap: the rest of a huge chunk is not copied
      end = Math.min(end, i + this.maxHeadBytes + 1 - this.headLen)
      const at = this.headLen
      this.append(chunk, i, end)
      i = end
      if (!this.requestLine && !this.checkRequestLineBytes(at)) {
        this.passThrough('not an HTTP/1.x request line')
        break
      }
      if (end !== nl + 1) {
        if (this.headLen > this.maxHeadBytes) this.headTooLarge()
        break
      }
      this.lineDone()
      if (this.state.kind === 'head' && this.headLen > this.maxHeadBytes) this.headTooLarge()
    }
    return i
  }

  private append(chunk: Buffer, start: number, end: number): void {
    const n = end - start
    if (this.headLen + n > this.head.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.head.length * 2, this.headLen + n))
      this.head.copy(bigger, 0, 0, this.headLen)
      this.head = bigger
    }
    chunk.copy(this.head, this.headLen, start, end)
    this.headLen += n
  }

  /**
   * Checks the request-line bytes from `from` as they arrive, so that a client speaking something else
   * (a TLS ClientHello, binary) is passed through at once instead of waiting for a line end.
   */
  private checkRequestLineBytes(from: number): boolean {
    for (let p = from; p < this.headLen; p++) {
      const b = this.head[p]!
      if (b === CR || b === LF) continue // judged when the line is complete
      if (!this.methodDone) {
        if (b === SP && p > this.lineStart) this.methodDone = true
        else if (!TCHAR[b]) return false
      } else if (b < SP || b === 0x7f) {
        return false
      }
    }
    return true
  }

  /** A line ending in LF was appended: classify it. */
  private lineDone(): void {
    const end = this.headLen
    let contentEnd = end - 1
    if (contentEnd > this.lineStart && this.head[contentEnd - 1] === CR) contentEnd--
    const line: Line = { start: this.lineStart, contentEnd, end }
    this.lineStart = end
    const text = this.head.toString('latin1', line.start, line.contentEnd)
    if (!this.requestLine) {
      // RFC 9112 §2.2: empty lines before the request line are ignored (and kept)
      if (text === '') return
      const m = REQUEST_LINE.exec(text)
      if (!m) return this.passThrough('not an HTTP/1.x request line')
      if (m[3] !== '1') return this.passThrough(`HTTP/${m[3]}.${m[4]} is not HTTP/1.x`)
      this.requestLine = line
      return
    }
    if (text === '') return this.headDone(line)
    this.lines.push(line)
  }

  private headDone(blank: Line): void {
    const head = this.head
    const requestLine = this.requestLine!
    const fields: Field[] = []
    for (const line of this.lines) {
      const first = head[line.start]!
      if (first === SP || first === HTAB) {
        // obs-fold (RFC 9112 §5.2): continues the previous field
        const prev = fields.at(-1)
        if (!prev) return this.passThrough('a folded line before any field')
        prev.lines.push(line)
        continue
      }
      const colon = head.indexOf(COLON, line.start)
      if (colon <= line.start || colon >= line.contentEnd) return this.passThrough('a field line without a name and a colon')
      for (let p = line.start; p < colon; p++) if (!TCHAR[head[p]!]) return this.passThrough('a field name with a byte that is not a token')
      fields.push({ name: head.toString('latin1', line.start, colon).toLowerCase(), colon, lines: [line] })
    }
    const valueOf = (f: Field): string =>
      f.lines.map((l, n) => head.toString('latin1', n === 0 ? f.colon + 1 : l.start, l.contentEnd).trim()).filter((v) => v !== '').join(' ')
    const values = (name: string): string[] => fields.filter((f) => f.name === name).map(valueOf)

    const method = REQUEST_LINE.exec(head.toString('latin1', requestLine.start, requestLine.contentEnd))![1]!
    const te = values('transfer-encoding')
    const cl = values('content-length')
    const connection = values('connection').join(',').toLowerCase().split(',').map((t) => t.trim())
    const upgrade = values('upgrade').length > 0 && connection.includes('upgrade')

    // the rewritten head: every byte but the Host fields' kept; one Host field, where the first was
    const out: Buffer[] = []
    let copied = 0
    let placed = false
    for (const f of fields) {
      if (f.name !== 'host') continue
      const start = f.lines[0]!.start
      const end = f.lines.at(-1)!.end
      out.push(head.subarray(copied, start))
      if (!placed) {
        let v = f.colon + 1
        while (v < f.lines[0]!.contentEnd && (head[v] === SP || head[v] === HTAB)) v++
        const first = f.lines[0]!
        out.push(head.subarray(start, v), this.host, head.subarray(first.contentEnd, first.end))
        placed = true
      }
      copied = end
    }
    if (!placed) {
      out.push(head.subarray(copied, blank.start), Buffer.from('Host: ', 'latin1'), this.host, head.subarray(requestLine.contentEnd, requestLine.end))
      copied = blank.start
    }
    out.push(head.subarray(copied, blank.end))
    this.push(Buffer.concat(out)) // a copy: the head buffer is reused for the next request
    this.rewritten++
    this.resetHead()
    if (upgrade) {
      this.watching = true
      this.verdict = undefined
      this.answer = ''
      this.interim = false
    }

    // framing of what follows (RFC 9112 §6.1-§6.3, requests)
    if (method === 'CONNECT') return this.passThrough('CONNECT: a tunnel follows')
    if (te.length > 0) {
      const codings = te.join(',').split(',').map((t) => t.trim().toLowerCase()).filter((t) => t !== '')
      if (cl.length > 0) return this.passThrough('both Transfer-Encoding and Content-Length')
      if (codings.at(-1) !== 'chunked') return this.passThrough(`transfer coding ${JSON.stringify(te.join(','))} does not end in chunked`)
      this.state = { kind: 'chunk-size', digits: 0, size: 0, inExt: false, lineBytes: 0 }
      this.upgradeAfter = upgrade
      return
    }
    if (cl.length > 0) {
      const lengths = new Set(cl.join(',').split(',').map((t) => t.trim()))
      const [only] = lengths
      if (lengths.size !== 1 || !/^\d{1,15}$/.test(only!)) return this.passThrough(`Content-Length ${JSON.stringify(cl.join(','))} is not one length`)
      const n = Number(only)
      this.upgradeAfter = upgrade
      if (n > 0) {
        this.state = { kind: 'body', remaining: n }
        return
      }
    }
    this.upgradeAfter = upgrade
    this.endOfMessage()
  }

  private endOfMessage(): void {
    if (this.upgradeAfter) {
      this.upgradeAfter = false
      const verdict = this.verdict
      this.verdict = undefined
      if (verdict === undefined) {
        this.state = { kind: 'upgrade-answer' } // the client's next bytes wait for it
        return
      }
      if (verdict === 101) return this.passThrough(SWITCHED)
      this.logger.debug({ status: verdict }, 'host rewriter: the Upgrade was declined; rewriting goes on')
    }
    this.state = { kind: 'head' }
  }

  private hold(bytes: Buffer): void {
    this.held.push(Buffer.from(bytes)) // a copy: the chunk's memory may be reused once this write is done
    this.heldBytes += bytes.length
    if (this.heldBytes > this.maxHeadBytes) this.passThrough(`over ${this.maxHeadBytes} bytes sent before the Upgrade was answered`)
  }

  observeResponse(chunk: Buffer): void {
    if (!this.watching) return
    let text = this.answer + chunk.toString('latin1', 0, Math.min(chunk.length, MAX_ANSWER_BYTES))
    for (;;) {
      if (this.interim) {
        // the interim response's fields end at a blank line; the final status line follows
        const blank = /\r?\n\r?\n/.exec(text)
        if (!blank) break
        text = text.slice(blank.index + blank[0].length)
        this.interim = false
      }
      const nl = text.indexOf('\n')
      if (nl < 0) break
      const status = STATUS_LINE.exec(text.slice(0, nl).replace(/\r$/, ''))
      if (!status) return this.passThrough('the answer to an Upgrade is not an HTTP/1.x status line')
      const code = Number(status[1])
      if (code >= 200 || code === 101) {
        this.watching = false
        this.answer = ''
        return this.settleUpgrade(code)
      }
      this.interim = true // 100 Continue, 103 Early Hints: the final answer is still to come
      text = text.slice(nl) // from its line ending: an interim answer without fields ends at the very next one
    }
    this.answer = text
    if (this.answer.length > MAX_ANSWER_BYTES) this.passThrough(`no final status line in the first ${MAX_ANSWER_BYTES} bytes of the Upgrade's answer`)
  }

  /** The final status of an Upgrade's answer: applied now when the request has ended, else at its end. */
  private settleUpgrade(code: number): void {
    if (this.state.kind !== 'upgrade-answer') {
      this.verdict = code // the request's body is still coming
      return
    }
    if (code === 101) return this.passThrough(SWITCHED)
    this.resumeAfterDeclinedUpgrade(code)
  }

  /** The server answered the Upgrade with a final status other than 101: the held bytes are requests again. */
  private resumeAfterDeclinedUpgrade(code: number): void {
    this.logger.debug({ status: code }, 'host rewriter: the Upgrade was declined; rewriting goes on')
    this.state = { kind: 'head' }
    const held = Buffer.concat(this.held)
    this.held = []
    this.heldBytes = 0
    if (held.length > 0) this.feed(held)
  }

  private chunkSizeByte(s: Extract<State, { kind: 'chunk-size' }>, b: number): void {
    if (++s.lineBytes > MAX_CHUNK_LINE) return this.passThrough(`chunk-size line over ${MAX_CHUNK_LINE} bytes`)
    if (b === LF) {
      if (s.digits === 0) return this.passThrough('chunk-size line without a size')
      this.state = s.size === 0 ? { kind: 'trailers', lineBytes: 0, totalBytes: 0 } : { kind: 'chunk-data', remaining: s.size }
      return
    }
    if (s.inExt) return // chunk-ext bytes (and the CR) pass as they are
    const digit = hexValue(b)
    if (digit >= 0) {
      if (++s.digits > MAX_CHUNK_SIZE_DIGITS) return this.passThrough('chunk size too large')
      s.size = s.size * 16 + digit
    } else if (s.digits > 0 && (b === SEMICOLON || b === SP || b === HTAB || b === CR)) {
      s.inExt = true
    } else {
      this.passThrough('a chunk-size line that is not hex')
    }
  }

  private headTooLarge(): void {
    const why = `request head over ${this.maxHeadBytes} bytes`
    this.logger.warn({ maxHeadBytes: this.maxHeadBytes }, `host rewriter: ${why}; passing the rest of the connection through without rewriting`)
    this.passThrough(why, true)
  }

  /** From now on every byte passes unchanged; a head being collected, or bytes held, go out as they were. */
  private passThrough(reason: string, logged = false): void {
    if (this.state.kind === 'head' && this.headLen > 0) this.push(Buffer.from(this.head.subarray(0, this.headLen)))
    for (const b of this.held) this.push(b)
    this.held = []
    this.heldBytes = 0
    this.answer = ''
    this.watching = false
    this.resetHead()
    this.head = Buffer.alloc(0)
    this.state = { kind: 'pass' }
    this.reason = reason
    if (!logged) this.logger.debug({ reason, requests: this.rewritten }, `host rewriter: ${reason}; passing the rest of the connection through unchanged`)
  }

  private resetHead(): void {
    this.headLen = 0
    this.lineStart = 0
    this.lines = []
    this.requestLine = undefined
    this.methodDone = false
  }
}

function hexValue(b: number): number {
  if (b >= 0x30 && b <= 0x39) return b - 0x30
  if (b >= 0x41 && b <= 0x46) return b - 0x41 + 10
  if (b >= 0x61 && b <= 0x66) return b - 0x61 + 10
  return -1
}
