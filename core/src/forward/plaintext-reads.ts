import type { Readable } from 'node:stream'
import { noteBytesCarried } from '../util/young-generation.js'

/** The most plaintext one TLS record holds, and so one read of a TLS socket (RFC 8446 §5.1). */
export const RECORD_BYTES = 16 * 1024
/** Bulk reads are carved out of shared buffers of this size, one record's room at a time. */
const ARENA_BYTES = 8 * RECORD_BYTES

/** This thread's current arena and how much of it is handed out. */
let arena: Buffer | undefined
let arenaUsed = 0
/** Where every TLS socket between bursts reads, copied out at once: an idle connection holds no buffer of its own. */
let scratch: Buffer | undefined

function scratchBuffer(): Buffer {
  scratch ??= Buffer.allocUnsafeSlow(RECORD_BYTES)
  return scratch
}

/** One record's room, right after the previous one handed out when the arena still has it (so a burst lies contiguous). */
function reserveRecord(): Buffer {
  if (!arena || ARENA_BYTES - arenaUsed < RECORD_BYTES) {
    arena = Buffer.allocUnsafeSlow(ARENA_BYTES)
    arenaUsed = 0
  }
  const room = arena.subarray(arenaUsed, arenaUsed + RECORD_BYTES)
  arenaUsed += RECORD_BYTES
  return room
}

/**
 * The plaintext reads of one TLS socket (`tls.connect({ onread })`), without an allocation per record.
 *
 * Node hands a TLS socket's plaintext over one record (≤ 16 KiB) at a time, each by default in a Buffer
 * of its own that dies as soon as it is written on: the hot path's main allocation. Here:
 * - A socket that has just read a full record reads the next one into the room right after it in a
 *   shared arena, so a burst lies contiguous and leaves in one write ({@link pumpPlaintext} merges it).
 * - After a short read (the end of a burst) it reads into one scratch buffer shared by the thread,
 *   copied out at once: an idle connection holds no buffer, and a small answer costs one small copy.
 * - Bytes handed out are never written over; an arena is freed once the last of them is.
 *
 * Until {@link consume} is called every chunk is pushed into the socket's own stream, so the socket
 * reads like any other (`data`, `pause()`, backpressure); `end` and `error` are the socket's in both cases.
 *
 * ```ts
 * const reads = new PlaintextReads()
 * const socket = tls.connect({ host, port, onread: reads.onread })
 * reads.attach(socket)
 * ```
 */
export class PlaintextReads {
  /** The `onread` option of `tls.connect`: Node calls `buffer()` for the room of each read. */
  readonly onread = {
    buffer: (): Buffer => this.room(),
    callback: (n: number, buf: Buffer): boolean => this.read(n, buf),
  }
  private socket?: Readable
  private sink?: (chunk: Buffer) => void
  /** Whether the last read filled a whole record (a burst goes on). */
  private full = false

  /** The socket whose `onread` this is; its stream gets the chunks until {@link consume}. */
  attach(socket: Readable): void {
    this.socket = socket
  }

  /**
   * From now on every chunk goes to `sink` instead of the socket's stream (the stream's `pause()` and
   * `resume()` still stop and start reading). Whatever the stream already holds is the caller's to read first.
   */
  consume(sink: (chunk: Buffer) => void): void {
    this.sink = sink
  }

  private room(): Buffer {
    return this.full ? reserveRecord() : scratchBuffer()
  }

  /** Returns false to stop reading (the socket's stream is full), as `onread` callbacks do. */
  private read(n: number, buf: Buffer): boolean {
    this.full = n >= RECORD_BYTES
    const chunk = buf === scratch ? Buffer.from(buf.subarray(0, n)) : buf.subarray(0, n)
    noteBytesCarried(n)
    if (this.sink) {
      this.sink(chunk)
      return true
    }
    return this.socket?.push(chunk) ?? true
  }
}
