import type { Duplex } from 'node:stream'

export interface RelayOptions {
  /** Once this many bytes went from `b` to `a`, write exactly up to that count, then call `onCut`. */
  cutAfterBytesToA?: number
  /** Tears the connection down abruptly (e.g. a TCP reset); both streams are destroyed after it. */
  onCut?: () => void
  /** Asked as `a` ends: false when that end was a reset told as an end (core's `resetUnderEnd`); both are then destroyed. */
  aEndedCleanly?: () => boolean
}

/**
 * Moves bytes both ways between two duplex streams until both directions are done.
 *
 * - Backpressure: a direction pauses its source while the destination's buffer is full.
 * - Half-close: the end of one side's readable ends the other side's writable, and nothing else.
 * - A side that closes without ending its readable (reset, error) destroys the other side; a side
 *   that closes after a clean end closes the other once the other's end() is flushed. An end of `a` that
 *   `aEndedCleanly` calls a reset is one.
 *
 * Resolves when both streams are closed.
 */
export function relay(a: Duplex, b: Duplex, options: RelayOptions = {}): Promise<void> {
  return new Promise((resolve) => {
    let closed = 0
    const onClose = () => {
      if (++closed === 2) resolve()
    }
    const ended = { a: false, b: false }
    let cut = false

    const destroyBoth = () => {
      a.destroy()
      b.destroy()
    }

    const forward = (src: Duplex, dst: Duplex, budget: number | undefined, which: 'a' | 'b') => {
      let remaining = budget ?? Number.POSITIVE_INFINITY
      const onData = (chunk: Buffer) => {
        if (chunk.length >= remaining) {
          // Fault injection: deliver exactly `budget` bytes, then reset.
          src.off('data', onData)
          src.pause()
          cut = true
          const last = chunk.subarray(0, remaining)
          remaining = 0
          const fire = () => {
            options.onCut?.()
            destroyBoth()
          }
          if (last.length > 0) dst.write(last, fire)
          else fire()
          return
        }
        remaining -= chunk.length
        if (!dst.write(chunk)) src.pause()
      }
      src.on('data', onData)
      dst.on('drain', () => {
        if (!cut) src.resume()
      })
      src.on('end', () => {
        if (which === 'a' && options.aEndedCleanly?.() === false) return destroyBoth() // a reset: 'close' without a clean end
        ended[which] = true
        if (!cut) dst.end()
      })
      src.on('close', () => {
        const peer = which === 'a' ? b : a
        // Closed without a clean end (reset, destroy, error): drop the peer at once. Closed after a
        // clean end: nobody reads the peer's data any more, so close it once our end() is flushed.
        if (!ended[which] || peer.writableFinished) peer.destroy()
        else peer.once('finish', () => peer.destroy())
        onClose()
      })
      src.on('error', () => {
        /* handled by 'close' */
      })
    }

    if (a.destroyed || b.destroyed) {
      destroyBoth()
      resolve()
      return
    }
    forward(a, b, undefined, 'a')
    forward(b, a, options.cutAfterBytesToA, 'b')
    a.resume()
    b.resume()
  })
}
