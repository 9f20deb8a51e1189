import type { FileHandle } from 'node:fs/promises'
import type { Logger } from '../contracts/logger.js'
import { readAllSync } from './in-place-rewrite.js'
import type { Leases } from './leases.js'

interface Replaced {
  /** Open read-only on the replaced inode. */
  handle: FileHandle
  /** Its content as far as it is already carried over. */
  seen: Buffer
  /** What took its place at the path (the carried bytes go right after it). */
  placed: Buffer
}

/** What the replaced copies gained since they were last looked at. */
export interface CarryOver {
  /** `current` with the bytes appended to replaced copies inserted (after what replaced them, or at the end). */
  apply(current: Buffer): Buffer
  /** Copies changed other than by appending (cannot be merged safely), their whole content. */
  readonly unmergeable: Buffer[]
  /** After `written` is in place: the carried bytes count as seen; copies nobody can write to any more are let go. */
  commit(written: Buffer): Promise<void>
}

/**
 * The copies of the hosts file that a rename replaced. A program that opened the file just before
 * the rename (`echo … >> /etc/hosts`) writes its line into the replaced copy, where nobody would read
 * it. Each copy stays open (read-only) and is looked at on every later write and on close: bytes
 * appended to it are carried over into the file. On Linux a copy is let go once no process has it
 * open for writing (a read lease is granted: then nothing more can reach it); elsewhere after one look.
 */
export class ReplacedFiles {
  private files: Replaced[] = []

  constructor(
    private readonly leases: Leases | undefined,
    private readonly logger: Logger,
    /** At most this many copies are watched; the oldest is let go first. */
    private readonly max = 16,
  ) {}

  get size(): number {
    return this.files.length
  }

  async track(handle: FileHandle, seen: Buffer, placed: Buffer): Promise<void> {
    this.files.push({ handle, seen, placed })
    while (this.files.length > this.max) {
      const oldest = this.files.shift()!
      this.logger.warn(`hosts-file: a replaced copy of the hosts file is still open for writing in another program; lines it writes there from now on are not carried over`)
      await oldest.handle.close().catch(() => {})
    }
  }

  collect(): CarryOver {
    const looks = this.files.map((r) => {
      const writers = this.leases?.hasOtherWriters(r.handle.fd) // asked before reading: `false` makes the read final
      return { r, now: readAllSync(r.handle.fd), final: writers !== true }
    })
    const appended = looks.filter((l) => !l.now.equals(l.r.seen) && startsWith(l.now, l.r.seen))
    return {
      unmergeable: looks.filter((l) => !startsWith(l.now, l.r.seen)).map((l) => l.now),
      apply: (current) => {
        let out = current
        for (const { r, now } of appended) {
          const added = now.subarray(r.seen.length)
          out = startsWith(out, r.placed) ? Buffer.concat([r.placed, added, out.subarray(r.placed.length)]) : Buffer.concat([out, added])
        }
        return out
      },
      commit: async (written) => {
        for (const { r, now, final } of looks) {
          r.seen = now
          if (appended.some((l) => l.r === r)) r.placed = written
          if (final) {
            this.files = this.files.filter((f) => f !== r)
            await r.handle.close().catch(() => {})
          }
        }
      },
    }
  }

  async closeAll(): Promise<void> {
    const files = this.files
    this.files = []
    await Promise.all(files.map((f) => f.handle.close().catch(() => {})))
  }
}

function startsWith(data: Buffer, prefix: Buffer): boolean {
  return data.length >= prefix.length && data.subarray(0, prefix.length).equals(prefix)
}
