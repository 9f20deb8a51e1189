/**
 * Binding-ingress framing (PROTOCOL.md §4): a 2-byte little-endian length, then a protobuf message.
 *
 *   ConnRequest  { host = 1 (string), port = 2 (int64), pod_identity = 3 (PodIdentity) }
 *   PodIdentity  { uid = 1, name = 2, namespace = 3, annotations = 4 (map<string,string>) }
 *   ConnResponse { endpoint_id = 1, proto = 2, error_code = 3, error_message = 4, notices = 5 (repeated Notice) }
 *   Notice       { message = 1 }
 *
 * Pure Buffer code: the forwarder and the cloud simulator both use it.
 */

export interface PodIdentity {
  uid?: string
  name?: string
  namespace?: string
  annotations?: Record<string, string>
}

export interface ConnRequest {
  host: string
  port: number
  podIdentity?: PodIdentity
}

export interface ConnResponse {
  endpointId: string
  proto: string
  errorCode: string
  errorMessage: string
  notices: string[]
}

/** The largest message a 2-byte length can announce. */
export const MAX_FRAME_BODY = 0xffff

const WIRE_VARINT = 0
const WIRE_LEN = 2

class Writer {
  private readonly chunks: Buffer[] = []
  varint(value: bigint | number): this {
    let v = BigInt.asUintN(64, BigInt(value))
    const bytes: number[] = []
    do {
      let b = Number(v & 0x7fn)
      v >>= 7n
      if (v !== 0n) b |= 0x80
      bytes.push(b)
    } while (v !== 0n)
    this.chunks.push(Buffer.from(bytes))
    return this
  }
  tag(field: number, wire: number): this {
    return this.varint((field << 3) | wire)
  }
  bytes(field: number, value: Buffer): this {
    this.tag(field, WIRE_LEN).varint(value.length)
    this.chunks.push(value)
    return this
  }
  /** proto3: empty strings are not written. */
  string(field: number, value: string | undefined): this {
    if (value) this.bytes(field, Buffer.from(value, 'utf8'))
    return this
  }
  /** A map entry's key and value are written even when empty (protobuf-go's map encoding). */
  mapEntry(field: number, key: string, value: string): this {
    const entry = new Writer().bytes(1, Buffer.from(key, 'utf8')).bytes(2, Buffer.from(value, 'utf8')).finish()
    return this.bytes(field, entry)
  }
  int64(field: number, value: number | undefined): this {
    if (value) this.tag(field, WIRE_VARINT).varint(value)
    return this
  }
  finish(): Buffer {
    return Buffer.concat(this.chunks)
  }
}

export class FrameDecodeError extends Error {
  override name = 'FrameDecodeError'
}

class Reader {
  private pos = 0
  constructor(private readonly buf: Buffer) {}
  get done(): boolean {
    return this.pos >= this.buf.length
  }
  varint(): bigint {
    let result = 0n
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (this.pos >= this.buf.length) throw new FrameDecodeError('truncated varint')
      const b = this.buf[this.pos++]!
      result |= BigInt(b & 0x7f) << shift
      if ((b & 0x80) === 0) return result
    }
    throw new FrameDecodeError('varint longer than 10 bytes')
  }
  tag(): { field: number; wire: number } {
    const t = Number(this.varint())
    return { field: t >>> 3, wire: t & 7 }
  }
  bytes(): Buffer {
    const len = Number(this.varint())
    if (this.pos + len > this.buf.length) throw new FrameDecodeError('length-delimited field runs past the message')
    const out = this.buf.subarray(this.pos, this.pos + len)
    this.pos += len
    return out
  }
  skip(wire: number): void {
    switch (wire) {
      case 0:
        this.varint()
        return
      case 1:
        this.pos += 8
        break
      case 2:
        this.bytes()
        return
      case 5:
        this.pos += 4
        break
      default:
        throw new FrameDecodeError(`unsupported wire type ${wire}`)
    }
    if (this.pos > this.buf.length) throw new FrameDecodeError('fixed-width field runs past the message')
  }
}

function expectWire(actual: number, expected: number, field: string): void {
  if (actual !== expected) throw new FrameDecodeError(`field ${field} has wire type ${actual}, expected ${expected}`)
}

/**
 * ConnRequest body. `podIdentity`, when given, is written even when empty (`1a 00`), as ngrok's
 * operator does: a non-nil message is always on the wire. Annotations in key order.
 */
export function encodeConnRequestBody(req: ConnRequest): Buffer {
  const w = new Writer().string(1, req.host).int64(2, req.port)
  if (req.podIdentity) {
    const p = req.podIdentity
    const pw = new Writer().string(1, p.uid).string(2, p.name).string(3, p.namespace)
    for (const k of Object.keys(p.annotations ?? {}).sort()) pw.mapEntry(4, k, p.annotations![k]!)
    w.bytes(3, pw.finish())
  }
  return w.finish()
}

export function decodeConnRequestBody(body: Buffer): ConnRequest {
  const r = new Reader(body)
  const req: ConnRequest = { host: '', port: 0 }
  while (!r.done) {
    const { field, wire } = r.tag()
    if (field === 1) {
      expectWire(wire, WIRE_LEN, 'host')
      req.host = r.bytes().toString('utf8')
    } else if (field === 2) {
      expectWire(wire, WIRE_VARINT, 'port')
      req.port = Number(BigInt.asIntN(64, r.varint()))
    } else if (field === 3) {
      expectWire(wire, WIRE_LEN, 'pod_identity')
      req.podIdentity = decodePodIdentity(r.bytes())
    } else r.skip(wire)
  }
  return req
}

function decodePodIdentity(body: Buffer): PodIdentity {
  const r = new Reader(body)
  const p: PodIdentity = {}
  while (!r.done) {
    const { field, wire } = r.tag()
    if (field >= 1 && field <= 3 && wire === WIRE_LEN) {
      const s = r.bytes().toString('utf8')
      if (field === 1) p.uid = s
      else if (field === 2) p.name = s
      else p.namespace = s
    } else if (field === 4 && wire === WIRE_LEN) {
      const er = new Reader(r.bytes())
      let key = ''
      let value = ''
      while (!er.done) {
        const t = er.tag()
        if (t.field === 1 && t.wire === WIRE_LEN) key = er.bytes().toString('utf8')
        else if (t.field === 2 && t.wire === WIRE_LEN) value = er.bytes().toString('utf8')
        else er.skip(t.wire)
      }
      ;(p.annotations ??= {})[key] = value
    } else r.skip(wire)
  }
  return p
}

export function encodeConnResponseBody(res: Partial<ConnResponse>): Buffer {
  const w = new Writer()
    .string(1, res.endpointId)
    .string(2, res.proto)
    .string(3, res.errorCode)
    .string(4, res.errorMessage)
  for (const n of res.notices ?? []) w.bytes(5, new Writer().string(1, n).finish())
  return w.finish()
}

export function decodeConnResponseBody(body: Buffer): ConnResponse {
  const r = new Reader(body)
  const res: ConnResponse = { endpointId: '', proto: '', errorCode: '', errorMessage: '', notices: [] }
  while (!r.done) {
    const { field, wire } = r.tag()
    if (field >= 1 && field <= 4) {
      expectWire(wire, WIRE_LEN, String(field))
      const s = r.bytes().toString('utf8')
      if (field === 1) res.endpointId = s
      else if (field === 2) res.proto = s
      else if (field === 3) res.errorCode = s
      else res.errorMessage = s
    } else if (field === 5) {
      expectWire(wire, WIRE_LEN, 'notices')
      const nr = new Reader(r.bytes())
      while (!nr.done) {
        const t = nr.tag()
        if (t.field === 1 && t.wire === WIRE_LEN) res.notices.push(nr.bytes().toString('utf8'))
        else nr.skip(t.wire)
      }
    } else r.skip(wire)
  }
  return res
}

/** Prefixes a message body with its 2-byte little-endian length. */
export function frame(body: Buffer): Buffer {
  if (body.length > MAX_FRAME_BODY) throw new RangeError(`frame body of ${body.length} bytes exceeds ${MAX_FRAME_BODY}`)
  const out = Buffer.allocUnsafe(2 + body.length)
  out.writeUInt16LE(body.length, 0)
  body.copy(out, 2)
  return out
}

export const encodeConnRequest = (req: ConnRequest): Buffer => frame(encodeConnRequestBody(req))
export const encodeConnResponse = (res: Partial<ConnResponse>): Buffer => frame(encodeConnResponseBody(res))

/**
 * Accumulates bytes until one whole frame is there. `push()` returns the body and whatever bytes
 * followed it (never dropped: after a ConnResponse they are the first payload bytes), or undefined.
 */
export class FrameReader {
  private buffered: Buffer = Buffer.alloc(0)
  push(chunk: Buffer): { body: Buffer; rest: Buffer } | undefined {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk])
    if (this.buffered.length < 2) return undefined
    const len = this.buffered.readUInt16LE(0)
    if (this.buffered.length < 2 + len) return undefined
    const body = this.buffered.subarray(2, 2 + len)
    const rest = this.buffered.subarray(2 + len)
    this.buffered = Buffer.alloc(0)
    return { body, rest }
  }
}
