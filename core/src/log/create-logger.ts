import type { DestinationStream, Level } from 'pino'
import type { Logger } from '../contracts/logger.js'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { requireCommonJs } from '../util/commonjs.js'

const { pino } = requireCommonJs('pino') as typeof import('pino')

export interface CreateLoggerOptions {
  level?: Level
  /** Readable output; defaults to whether stderr is a TTY. */
  pretty?: boolean
  /** Where lines go; defaults to stderr. */
  destination?: DestinationStream
}

export { LOG_FORMATS, type LogFormat } from './log-format.js'

/**
 * Every key that may hold a secret, wherever it appears: the value is replaced before a line is
 * written. Secrets must never reach a log line (tested in create-logger.test.ts).
 */
export const REDACTED_PATHS = ['apiKey', 'api_key', 'key', 'keyPem', 'privateKey', 'authorization', 'credentials'].flatMap((k) => [
  k,
  `*.${k}`,
  `*.*.${k}`, // e.g. config.api.key
])

/**
 * The daemon's logger: JSON lines when stderr is not a TTY, readable lines when it is.
 * An expected failure (a coded NgrokdError: the API is down, a port is taken; or the system's answer to a call,
 * such as EROFS or ENOSPC) is logged with its code, message and hint but without a stack; stacks are for bugs,
 * and for `log.level: debug`.
 */
export function createLogger({ level = 'info', pretty, destination }: CreateLoggerOptions = {}): Logger {
  const usePretty = pretty ?? (destination === undefined && process.stderr.isTTY === true)
  const stream: DestinationStream =
    destination ??
    (usePretty
      ? prettyPrinter()({ destination: 2, sync: true, colorize: useColor() && process.stderr.isTTY === true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' })
      : pino.destination({ dest: 2, sync: true }))
  const logger = pino(
    {
      level,
      base: { pid: process.pid },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      serializers: {
        err: (e: unknown) => {
          const serialized = pino.stdSerializers.err(e as Error)
          if ((isNgrokdError(e) || isSystemCallError(e)) && !logger.isLevelEnabled('debug')) serialized.stack = undefined as unknown as string
          return serialized
        },
      },
    },
    stream,
  )
  return logger as unknown as Logger
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
