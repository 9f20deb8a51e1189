import { Duplex } from 'node:stream'

/**
 * One end of an in-memory socket pair. What is written on one side is read on the other.
 *
 * - Backpressure: a write completes only when the other side's reader asks for more, so at
 *   most one chunk per direction is in flight (no unbounded buffering).
 * - Half-close: `end()` on one side ends the other side's readable; the other side stays
 *   writable (`allowHalfOpen`).
 * - `destroy()` on one side destroys the other, unless that side had ended cleanly: then the other
 *   side still reads everything and its own writes fail from then on (like a socket after close).
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
    // A writer on the other side waiting for us to read must not hang.
    const pending = this.peerWriteCallback
    this.peerWriteCallback = null
    pending?.()
    // After a clean end the other side still reads what we wrote, then 'end' (a socket's close
    // after shutdown). Otherwise it is an abort, and the other side goes too (a reset).
    if (other && !other.destroyed && (error || !this.writableFinished)) other.destroy()
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
