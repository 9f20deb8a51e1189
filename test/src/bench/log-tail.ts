import { closeSync, fstatSync, openSync, readSync } from 'node:fs'

/**
 * Reads a daemon's JSON-lines (pino) log incrementally from an offset: each call returns only the
 * records written since the last one, so following a log of 10,000 debug lines stays cheap.
 *
 * ```ts
 * const tail = new LogTail(daemon.logFile, sizeBeforeRestart)
 * for (const r of tail.read()) if (r.msg === '…') …
 * tail.close()
 * ```
 */
export class LogTail {
  private readonly fd: number
  private partial = ''

  constructor(
    path: string,
    private offset = 0,
  ) {
    this.fd = openSync(path, 'r')
  }

  /** Bytes in the file now: the offset a later tail starts from. */
  static sizeOf(path: string): number {
    const fd = openSync(path, 'r')
    try {
      return fstatSync(fd).size
    } finally {
      closeSync(fd)
    }
  }

  read(): Array<Record<string, any>> {
    const size = fstatSync(this.fd).size
    if (size <= this.offset) return []
    const buf = Buffer.alloc(size - this.offset)
    const n = readSync(this.fd, buf, 0, buf.length, this.offset)
    this.offset += n
    const lines = (this.partial + buf.subarray(0, n).toString('utf8')).split('\n')
    this.partial = lines.pop() ?? ''
    const out: Array<Record<string, any>> = []
    for (const line of lines) {
      if (!line.startsWith('{')) continue
      try {
        out.push(JSON.parse(line) as Record<string, any>)
      } catch {
        // not a log record
      }
    }
    return out
  }

  close(): void {
    closeSync(this.fd)
  }
}
