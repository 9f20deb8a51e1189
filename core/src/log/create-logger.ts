import { fstatSync } from 'node:fs'
import type { DestinationStream, Level } from 'pino'
import type { Logger } from '../contracts/logger.js'
import { censorSecretFields } from '../config/redact-secret.js'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { requireCommonJs } from '../util/commonjs.js'

const { pino } = requireCommonJs('pino') as typeof import('pino')

export interface CreateLoggerOptions {
  level?: Level
  /** Readable output; defaults to whether stderr is a TTY. */
  pretty?: boolean
  /** Where lines go; defaults to stderr. */
  destination?: DestinationStream
  /** The environment to read JOURNAL_STREAM from (tests). */
  env?: NodeJS.ProcessEnv
}

export { LOG_FORMATS, type LogFormat } from './log-format.js'

/** What a field with a secret name is written as. */
const CENSOR = '[redacted]'

/**
 * Secret names pino censors at fixed paths, also inside an Error or a class instance (`err.headers.authorization`, a
 * registration's `keyPem`), which the formatter's copy of plain objects passes by as they are.
 */
export const REDACTED_PATHS = ['apiKey', 'api_key', 'key', 'keyPem', 'privateKey', 'authorization', 'credentials', 'token', 'password', 'secret'].flatMap((k) => [
  k,
  `*.${k}`,
  `*.*.${k}`, // e.g. err.headers.authorization
])

/**
 * The daemon's logger: JSON lines when stderr is not a TTY, readable lines when it is.
 * An expected failure (a coded NgrokdError: the API is down, a port is taken; or the system's answer to a call,
 * such as EROFS or ENOSPC) is logged with its code, message and hint but without a stack; stacks are for bugs,
 * and for `log.level: debug`.
 */
export function createLogger({ level = 'info', pretty, destination, env = process.env }: CreateLoggerOptions = {}): Logger {
  const usePretty = pretty ?? (destination === undefined && process.stderr.isTTY === true)
  const stream: DestinationStream =
    destination ??
    (usePretty
      ? prettyPrinter()({ destination: 2, sync: true, colorize: useColor() && process.stderr.isTTY === true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' })
      : pino.destination({ dest: 2, sync: true }))
  const toJournal = destination === undefined && !usePretty && stderrIsJournal(env)
  const logger = pino(
    {
      level,
      ...(toJournal ? { hooks: { streamWrite: withSyslogPriority } } : {}),
      base: { pid: process.pid },
      // secrets never reach a line: a field whose name says secret (isSecretName, the rule options are shown by), at any
      // depth of plain objects; and the usual names at fixed paths inside anything else
      formatters: { log: (fields: Record<string, unknown>) => censorSecretFields(fields, CENSOR) },
      redact: { paths: REDACTED_PATHS, censor: CENSOR },
      serializers: {
        err: (e: unknown) => {
          const serialized = pino.stdSerializers.err(e as Error)
          if (e instanceof Error) serialized.message = messageWithCauses(e)
          if ((isNgrokdError(e) || isSystemCallError(e)) && !logger.isLevelEnabled('debug')) serialized.stack = undefined as unknown as string
          return serialized
        },
      },
    },
    stream,
  )
  // a child's bindings skip formatters.log (and pino gives children no bindings formatter): censored as they are bound;
  // children are made by Object.create of their parent, so every descendant finds this child()
  const child = logger.child // pino's, called on whichever descendant it is asked of
  const censoredChild = function (this: typeof logger, bindings: Record<string, unknown>, options?: Parameters<typeof logger.child>[1]) {
    return child.call(this, censorSecretFields(bindings, CENSOR), options)
  }
  Object.defineProperty(logger, 'child', { value: censoredChild, writable: true, configurable: true })
  return logger as unknown as Logger
}

/**
 * Whether stderr is the journal's stream: systemd sets JOURNAL_STREAM to its `device:inode` (systemd.exec(5),
 * "Environment variables set or propagated by the service manager"), which a redirected stderr no longer matches.
 */
export function stderrIsJournal(env: NodeJS.ProcessEnv, fd = 2): boolean {
  const [device, inode] = (env.JOURNAL_STREAM ?? '').split(':')
  if (!device || !inode) return false
  try {
    const st = fstatSync(fd, { bigint: true })
    return String(st.dev) === device && String(st.ino) === inode
  } catch {
    return false
  }
}

/** syslog(3) priorities of pino's levels: trace and debug 7, info 6, warn 4, error 3, fatal 2. */
const SYSLOG_PRIORITY: Record<string, number> = { '10': 7, '20': 7, '30': 6, '40': 4, '50': 3, '60': 2 }

/**
 * A JSON line with its `<N>` syslog priority in front, which journald reads and strips (SyslogLevelPrefix=, on by
 * default), so `journalctl -p err` finds the errors. pino writes `{"level":N` first.
 */
export function withSyslogPriority(line: string): string {
  const level = /^\{"level":(\d+)/.exec(line)?.[1]
  const priority = level === undefined ? undefined : SYSLOG_PRIORITY[level]
  return priority === undefined ? line : `<${priority}>${line}`
}

/**
 * `message: cause's message: …`, as pino joins them, but a cause that starts with the errno its error's message ends
 * with (`cannot write allocations.json: ENOSPC` and `ENOSPC: no space left on device, write`) is joined without it
 * again: `…: ENOSPC: no space left on device, write`.
 */
export function messageWithCauses(e: Error): string {
  let message = e.message
  const seen = new Set<unknown>([e])
  for (let cause = e.cause; cause instanceof Error && !seen.has(cause); cause = cause.cause) {
    seen.add(cause)
    if (cause.message === '' || message.includes(cause.message)) continue // said already (`create() failed: kaboom`)
    const errno = /^(E[A-Z0-9]+): /.exec(cause.message)?.[1]
    const repeated = errno !== undefined && new RegExp(`\\b${errno}\\)?$`).test(message)
    message += `: ${repeated ? cause.message.slice(errno.length + 2) : cause.message}`
  }
  return message
}

/** An error the system gave a call (`errno`, `code` and `syscall` set): its stack is Node's, not a bug of ours. */
function isSystemCallError(e: unknown): boolean {
  const { errno, code, syscall } = (e ?? {}) as { errno?: unknown; code?: unknown; syscall?: unknown }
  return e instanceof Error && typeof errno === 'number' && typeof code === 'string' && typeof syscall === 'string'
}

/** pino-pretty, loaded only when lines are printed for a person (a daemon logging JSON never loads it). */
function prettyPrinter(): typeof import('pino-pretty') {
  return requireCommonJs('pino-pretty') as typeof import('pino-pretty')
}

/** A log file (appended, its folder made 0700), for a process without a console: the Windows service. */
export function logFileDestination(path: string): DestinationStream {
  return pino.destination({ dest: path, mkdir: true, sync: true })
}

/** Colour unless NO_COLOR is set to anything but the empty string (https://no-color.org); and only ever on a terminal (the caller's test). */
export function useColor(env: NodeJS.ProcessEnv = process.env): boolean {
  return !env.NO_COLOR
}
