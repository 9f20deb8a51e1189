import { NgrokdError } from '../errors/ngrokd-error.js'
import { errorCodes, type NgrokdErrorCode } from '../errors/codes.js'
import { requireCommonJs } from '../util/commonjs.js'

const { request } = requireCommonJs('node:http') as typeof import('node:http') // see requireCommonJs

/**
 * The fix for a daemon that does not answer on its control socket: start it with `start`, the command line that reaches
 * it (daemonCommandLine: its flags, sudo when its state is root's); without one, said in general.
 */
export function notRunningHint(start?: string): string {
  const how = start ? `\`${start}\`` : '`ngrokd run` (with sudo for a daemon whose state is root\'s), giving it the --config or --instance given here'
  return `start it with ${how} (or check control.socket); a daemon started before both control.socket and state_dir were changed in its file answers only on its old socket: restart it`
}

/** A connect that fails so says no daemon answers: no socket (ENOENT; ENOTDIR: a file where its folder would be), nobody listening. */
const NOT_RUNNING_CODES = new Set(['ENOENT', 'ENOTDIR', 'ECONNREFUSED'])

/** `e` with {@link notRunningHint} of `start` when it says no daemon answers (no socket, or nobody listening on it); else `e`. */
export function withStartHint(e: unknown, start: string): unknown {
  const cause = (e as { cause?: NodeJS.ErrnoException }).cause?.code
  if (!(e instanceof NgrokdError) || !NOT_RUNNING_CODES.has(cause ?? '')) return e
  return new NgrokdError(e.code, e.message, { cause: e.cause, hint: notRunningHint(start) })
}

/** Calls the daemon's control API over its Unix socket, on a connection of its own (no keep-alive: each call is checked as it connects). */
export async function controlRequest<T = unknown>(socketPath: string, method: 'GET' | 'POST', path: string, body?: unknown, timeoutMs = 10_000): Promise<T> {
  const payload = body === undefined ? undefined : JSON.stringify(body)
  return new Promise<T>((resolve, reject) => {
    const req = request(
      { socketPath, method, path, agent: false, timeout: timeoutMs, headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {} },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          let parsed: unknown
          try {
            parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'))
          } catch {
            return reject(new NgrokdError('NGROKD_ERR_CONTROL', `control socket ${socketPath} answered something that is not JSON`))
          }
          if ((res.statusCode ?? 500) >= 400) {
            const err = (parsed as { error?: { code?: string; message?: string; hint?: string } }).error ?? {}
            // the daemon's own code (NGROKD_ERR_PERMISSION, NGROKD_ERR_CONFIG_INVALID…) when it is one of ours
            const code = err.code && err.code in errorCodes ? (err.code as NgrokdErrorCode) : 'NGROKD_ERR_CONTROL'
            return reject(new NgrokdError(code, err.message ?? `control request failed (${res.statusCode})`, { hint: err.hint }))
          }
          resolve(parsed as T)
        })
      },
    )
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)))
    req.on('error', (e: NodeJS.ErrnoException) => {
      const notRunning = NOT_RUNNING_CODES.has(e.code ?? '')
      // no permission is NGROKD_ERR_PERMISSION wherever it is found: here, or the daemon refusing a reader's change
      const denied = e.code === 'EACCES' || e.code === 'EPERM'
      reject(
        new NgrokdError(denied ? 'NGROKD_ERR_PERMISSION' : 'NGROKD_ERR_CONTROL', notRunning ? `ngrokd is not running (no daemon on ${socketPath})` : `control socket ${socketPath}: ${e.message}`, {
          cause: e,
          hint: notRunning
            ? notRunningHint()
            : denied ? 'the control socket is for root (and control.group): use sudo' : undefined,
        }),
      )
    })
    if (payload) req.write(payload)
    req.end()
  })
}
