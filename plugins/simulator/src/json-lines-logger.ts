import type { LogFn, Logger } from '@ngrokd/core'

/**
 * A logger that hands each record to `write` as one JSON line (every level): the simulator's log on
 * stderr (`--verbose`) or in the demo's folder.
 */
export function jsonLinesLogger(write: (line: string) => void, bindings: Record<string, unknown> = {}): Logger {
  const log =
    (level: string): LogFn =>
    (a: string | object, b?: string) => {
      const fields = typeof a === 'string' ? { msg: a } : { ...a, msg: b }
      write(`${JSON.stringify({ level, time: new Date().toISOString(), ...bindings, ...fields }, errReplacer)}\n`)
    }
  return {
    trace: log('trace'),
    debug: log('debug'),
    info: log('info'),
    warn: log('warn'),
    error: log('error'),
    fatal: log('fatal'),
    child: (more) => jsonLinesLogger(write, { ...bindings, ...more }),
  }
}

function errReplacer(_key: string, value: unknown): unknown {
  return value instanceof Error ? { message: value.message, code: (value as NodeJS.ErrnoException).code } : value
}
