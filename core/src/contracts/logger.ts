/**
 * The subset of pino's logger that ngrokd and its drivers use. Declared here so that
 * drivers need no pino import (narrow external types, as Kysely's `PostgresPool`).
 */
export interface LogFn {
  (msg: string): void
  (obj: object, msg?: string): void
}
export interface Logger {
  trace: LogFn
  debug: LogFn
  info: LogFn
  warn: LogFn
  error: LogFn
  fatal: LogFn
  child(bindings: Record<string, unknown>): Logger
}

/** A logger that drops everything: for tests and for drivers created without one. */
export const silentLogger: Logger = {
  trace() {},
  debug() {},
  info() {},
  warn() {},
  error() {},
  fatal() {},
  child() {
    return silentLogger
  },
}
