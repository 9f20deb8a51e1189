import { Duplex } from 'node:stream'

/**
 * One end of an in-memory socket pair. What is written on one side is read on the other.
 *
 * - Backpressure: a write completes only when the other side's reader asks for more, so at
 *   most one chunk per direction is in flight (no unbounded buffering).
 * - Half-close: `end()` on one side ends the other side's readable; the other side stays
 *   writable (`allowHalfOpen`).
 * - `destroy()` on one side destroys the other.
 */
class PairSide extends Duplex {
  peer: PairSide | null = null
  /** The other side's write callback, released when our reader asks for more. */
  peerWriteCallback: (() => void) | null = null

  constructor() {
    super({ allowHalfOpen: true })
  }

  override _read(): void {
    const cb = this.peerWriteCallback
    if (cb) {
      this.peerWriteCallback = null
      cb()
    }
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const other = this.peer
    if (!other || other.destroyed) {
      callback(new Error('socket pair: the other side is closed'))
      return
    }
    if (chunk.length === 0) {
      process.nextTick(callback)
      return
    }
    other.peerWriteCallback = () => callback()
    other.push(chunk)
  }

  override _final(callback: (error?: Error | null) => void): void {
    const other = this.peer
    if (!other || other.destroyed) {
      callback()
      return
    }
    other.push(null)
    callback()
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const other = this.peer
    this.peer = null
    const pending = this.peerWriteCallback
    this.peerWriteCallback = null
    // A writer on the other side waiting for us to read must not hang.
    if (pending) pending()
    if (other && !other.destroyed) other.destroy()
    callback(error)
  }

  // net.Socket look-alikes that node:http calls when present.
  setTimeout(_ms: number, _cb?: () => void): this {
    return this
  }
  setNoDelay(_noDelay?: boolean): this {
    return this
  }
  setKeepAlive(_enable?: boolean, _delay?: number): this {
    return this
  }
}

/** Two connected in-memory duplex streams (`node:stream`'s `duplexPair` only exists from Node 22.6). */
export function createDuplexPair(): [Duplex, Duplex] {
  const a = new PairSide()
  const b = new PairSide()
  a.peer = b
  b.peer = a
  return [a, b]
}
