import type { Readable, Writable } from 'node:stream'
import { setImmediate } from 'node:timers'
import { noteBytesCarried } from '../util/young-generation.js'
import type { PlaintextReads } from './plaintext-reads.js'

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
 * - TLS hands its plaintext over one record (≤ 16 KiB, RFC 8446 §5.1) at a time, several per socket read,
 *   each in a callback of its own. The first chunk of a turn of the event loop corks `dst` until the end of
 *   that turn (`setImmediate`, after the poll phase), so everything read in it leaves in one `writev`
 *   instead of one `write` per record: fewer syscalls, fewer and larger TCP segments, less work for the
 *   reader too. An HTTP answer sent as head and body in two records goes out in one write (wrk against a
 *   fresh daemon, three runs each: 22-26k instead of 19-21k keep-alive requests/s, 30 instead of 34-36
 *   CPU-µs each; a bulk download leaves in ~200 KiB writes). No chunk waits past the turn it arrived in.
 * - Backpressure: `src` is paused while more than {@link PUMP_MAX_QUEUED_BYTES} wait in `dst`, and resumed on
 *   `drain`.
 * - Every chunk is counted for {@link noteBytesCarried}, which frees dead Buffers every few MiB when the
 *   process owner asked for it.
 *
 * Errors and `close` are the caller's: it destroys both streams on either side's error.
 *
 * `endedCleanly`, when given, is asked once as `src` ends, before `dst` is ended: `false` leaves `dst` as it is
 * (the caller resets it), for a source whose 'end' may stand for a reset (see `resetUnderEnd`). Per
 * connection, never per chunk.
 */
export function pump(src: Readable, dst: Writable, endedCleanly?: () => boolean): void {
  let corked = false
  const uncork = (): void => {
    corked = false
    dst.uncork()
  }
  src.on('data', (chunk: Buffer) => {
    if (dst.destroyed || dst.writableEnded) return
    if (!corked) {
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
  const onEnd = (): void => {
    if (!dst.destroyed && endedCleanly?.() !== false) dst.end()
  }
  // a source that ended before the pump began (nothing left unread: its 'end' has been emitted) ends `dst` now
  if (src.readableEnded) onEnd()
  else src.once('end', onEnd)
  src.resume()
}

/**
 * {@link pump} for a TLS socket read through {@link PlaintextReads}: the same rules (the writes of one turn
 * of the event loop leave together at its end, backpressure at {@link PUMP_MAX_QUEUED_BYTES}, `src`'s end
 * ends `dst`), and chunks that lie next to each other in memory (a burst of records read into an arena)
 * are written as one: one Buffer and one write per burst instead of one per record.
 * `onChunk` is called with each chunk's length as it arrives (before it is written); `endedCleanly` as in {@link pump}.
 */
export function pumpPlaintext(reads: PlaintextReads, src: Readable, dst: Writable, onChunk?: (chunk: Buffer) => void, endedCleanly?: () => boolean): void {
  let corked = false
  // the bytes held for the end of the turn: [start, end) of one ArrayBuffer
  let held: ArrayBufferLike | undefined
  let start = 0
  let end = 0
  const writeHeld = (): void => {
    if (held === undefined) return
    const chunk = Buffer.from(held, start, end - start)
    held = undefined
    if (!dst.destroyed && !dst.writableEnded) dst.write(chunk)
  }
  const endTurn = (): void => {
    corked = false
    writeHeld()
    dst.uncork()
  }
  reads.consume((chunk) => {
    onChunk?.(chunk)
    if (dst.destroyed || dst.writableEnded) return
    if (chunk.buffer === held && chunk.byteOffset === end) {
      end += chunk.length
    } else {
      writeHeld() // not next to the held bytes: those go first, in this turn's write
      held = chunk.buffer
      start = chunk.byteOffset
      end = start + chunk.length
    }
    if (!corked) {
      corked = true
      dst.cork()
      setImmediate(endTurn)
    }
    if (dst.writableLength + end - start > PUMP_MAX_QUEUED_BYTES) src.pause()
  })
  dst.on('drain', () => {
    if (!src.destroyed) src.resume()
  })
  src.once('end', () => {
    writeHeld()
    if (!dst.destroyed && endedCleanly?.() !== false) dst.end()
  })
  // what the stream took in before (after the ConnResponse, while paused) goes first
  for (let chunk = src.read() as Buffer | null; chunk !== null; chunk = src.read() as Buffer | null) {
    onChunk?.(chunk)
    if (!dst.destroyed && !dst.writableEnded) dst.write(chunk)
  }
  src.resume()
}
