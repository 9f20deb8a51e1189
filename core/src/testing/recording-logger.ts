import type { Logger } from '../contracts/logger.js'

export interface LogRecord {
  level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal'
  obj: Record<string, unknown>
  msg: string
}

/** A {@link Logger} that keeps every record, for tests that assert on what was logged. */
export function recordingLogger(): Logger & { records: LogRecord[]; at(level: LogRecord['level']): LogRecord[] } {
  const records: LogRecord[] = []
  const fn =
    (level: LogRecord['level']) =>
    (a: object | string, b?: string): void => {
      if (typeof a === 'string') records.push({ level, obj: {}, msg: a })
      else records.push({ level, obj: a as Record<string, unknown>, msg: b ?? '' })
    }
  const logger = {
    records,
    at: (level: LogRecord['level']) => records.filter((r) => r.level === level),
    trace: fn('trace'),
    debug: fn('debug'),
    info: fn('info'),
    warn: fn('warn'),
    error: fn('error'),
    fatal: fn('fatal'),
    child: () => logger,
  }
  return logger
}
