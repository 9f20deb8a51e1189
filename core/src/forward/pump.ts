import type { Readable, Writable } from 'node:stream'
import { setImmediate } from 'node:timers'
import { noteBytesCarried } from '../util/young-generation.js'

/** The largest plaintext of one TLS record (RFC 8446 §5.1, 2^14): a chunk this big means more is probably queued. */
export const FULL_CHUNK_BYTES = 16 * 1024

/**
 * Bytes a pump lets queue in its destination before it pauses its source. Bounds the user-space buffer of
 * one direction of one connection (a slow reader throttles the writer through TCP flow control beyond it).
 */
export const PUMP_MAX_QUEUED_BYTES = 128 * 1024

/**
 * Moves every chunk of `src` into `dst` until `src` ends, then ends `dst` (half-close: the other
 * direction is untouched). The hot path's one copy loop, used instead of `src.pipe(dst)` because it
 * batches:
 *
 * - TLS hands its plaintext over one record (≤ 16 KiB) at a time, several per socket read. A full-size
 *   chunk corks `dst` until the end of this turn of the event loop (`setImmediate`), so the records read
 *   together leave in one `writev` instead of one `write` each: fewer syscalls, fewer and larger TCP
 *   segments, less work for the reader too. Smaller chunks (interactive traffic) are written at once,
 *   without the cork, so they never wait.
 * - Backpressure: `src` is paused while more than {@link PUMP_MAX_QUEUED_BYTES} wait in `dst`, and resumed on
 *   `drain`.
 *
 * - Every chunk is counted for {@link noteBytesCarried}, which frees dead Buffers every few MiB when the
 *   process owner asked for it.
 *
 * Errors and `close` are the caller's: it destroys both streams on either side's error.
 */
export function pump(src: Readable, dst: Writable): void {
  let corked = false
  const uncork = (): void => {
    corked = false
    dst.uncork()
  }
  src.on('data', (chunk: Buffer) => {
    if (dst.destroyed || dst.writableEnded) return
    if (!corked && chunk.length >= FULL_CHUNK_BYTES) {
      corked = true
      dst.cork()
      setImmediate(uncork)
    }
    dst.write(chunk)
    noteBytesCarried(chunk.length)
    if (dst.writableLength > PUMP_MAX_QUEUED_BYTES) src.pause()
  })
  dst.on('drain', () => {
    if (!src.destroyed) src.resume()
  })
  src.once('end', () => {
    if (!dst.destroyed) dst.end()
  })
  src.resume()
}
