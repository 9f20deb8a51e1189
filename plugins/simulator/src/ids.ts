import { randomBytes } from 'node:crypto'

// ASCII order, so string order of ids equals numeric order (what `before_id` paging relies on).
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
/** 62^27 > 2^160: a 20-byte value fits in 27 base62 digits, the length of ngrok's (KSUID) ids. */
const ID_DIGITS = 27

/**
 * Makes ngrok-style ids (`ep_` + 27 base62 characters) that sort in creation order: 6 bytes of
 * milliseconds, a 2-byte sequence within the millisecond, then 12 random bytes.
 */
export class IdGenerator {
  private lastMs = 0
  private seq = 0

  next(prefix: string): string {
    let ms = Date.now()
    if (ms <= this.lastMs) {
      ms = this.lastMs
      this.seq++
      if (this.seq > 0xffff) {
        ms = ++this.lastMs
        this.seq = 0
      }
    } else {
      this.seq = 0
    }
    this.lastMs = ms
    const bytes = Buffer.alloc(20)
    bytes.writeUIntBE(ms, 0, 6)
    bytes.writeUInt16BE(this.seq, 6)
    randomBytes(12).copy(bytes, 8)
    return `${prefix}_${base62(bytes)}`
  }
}

function base62(bytes: Buffer): string {
  let n = BigInt(`0x${bytes.toString('hex')}`)
  let out = ''
  for (let i = 0; i < ID_DIGITS; i++) {
    out = BASE62[Number(n % 62n)]! + out
    n /= 62n
  }
  return out
}
