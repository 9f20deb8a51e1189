import type { InterfaceInfo } from '../contracts/interface.js'
import type { NameResolverHealth } from '../contracts/name-resolver.js'
import type { ForwarderMode } from '../forward/create-forwarder.js'
import { controlRequest } from '../control/control-client.js'
import { checkPipeOwner, clientPipePaths, PIPE_BUSY_WAIT_MS, type PipeOwner } from '../control/windows-pipe-security.js'
import { assertTrustedPathOrDir, runsAsRoot } from '../util/trusted-path.js'
import type { ControlRoutes } from '../control/control-server.js'
import type { MetricsSnapshot } from '../metrics/daemon-metrics.js'
import type { PluginStatus } from '../plugin/plugin-host.js'
import type { Check } from '../contracts/check.js'
import type { RegistrationUpdatePending } from '../registration/registration.js'
import type { RejectedEndpoint } from '../protocol/endpoints.js'
import type { ReconcileReport, ServiceCounts, ServiceView } from './reconciler.js'
import type { ReloadResult } from './config-reload.js'

/**
 * The daemon's control API: one typed module for the server's handlers and the CLI's calls (HTTP +
 * JSON over the control socket; the transport is `control/`). A route's key is `METHOD /path`.
 */
export interface ControlApi {
  'GET /v1/status': { body: undefined; reply: DaemonStatus }
  /** `skipped`: the endpoints of the last poll that are not served (malformed, or names skipped as unsafe). */
  'GET /v1/endpoints': { body: undefined; reply: { services: ServiceView[]; skipped?: RejectedEndpoint[]; /** Open connections of removed endpoints, finishing within forwarder.drain_timeout. */ draining?: number } }
  'GET /v1/metrics': { body: undefined; reply: MetricsSnapshot }
  /** `unverified`: the API could not be asked about the key (it was saved all the same). */
  'POST /v1/api-key': { body: { key: string }; reply: { ok: true; saved: string; unverified?: string } }
  'POST /v1/poll': { body: Record<string, never>; reply: { poll?: PollStatus } }
  /**
   * Reads the configuration again: what applied at once, and what needs a restart (SIGHUP does the same). `config`:
   * the file the caller means (`--config`); refused when it is not the one the daemon runs on.
   */
  'POST /v1/reload': { body: { config?: string }; reply: ReloadResult }
  /** The plugins' doctor checks, run by the daemon that has them loaded. */
  'GET /v1/plugins/checks': { body: undefined; reply: { checks: Check[] } }
  /** The open interface's own checks (`Interface.diagnose()`), run by the daemon that has it open. */
  'GET /v1/interface/checks': { body: undefined; reply: { checks: Check[] } }
  /** The open name resolver's own checks (`NameResolver.diagnose()`), run by the daemon that has it open. */
  'GET /v1/names/checks': { body: undefined; reply: { checks: Check[] } }
}

export type ControlRoute = keyof ControlApi

/** The server side: one handler per route, typed by {@link ControlApi}. */
export type ControlHandlers = { [R in ControlRoute]: (body: ControlApi[R]['body']) => ControlApi[R]['reply'] | Promise<ControlApi[R]['reply']> }

export type DaemonPhase = 'starting' | 'waiting-for-api-key' | 'registering' | 'running' | 'stopping' | 'stopped'

/** One poll of the API and the reconcile that followed it. */
export interface PollStatus {
  at: string
  ok: boolean
  endpoints?: number
  services?: number
  rejected?: RejectedEndpoint[]
  /** `hint`: the fix, for an API error the page of ngrok's docs for its code. */
  error?: { code?: string; message: string; hint?: string }
  report?: ReconcileReport
}

/** Traffic totals over every listener. */
export interface TrafficTotals {
  connections: number
  refused: number
  bytesIn: number
  bytesOut: number
  errors: Record<string, number>
  meanHandshakeMs?: number
}

/** `GET /v1/status`: what `ngrokd status` shows. */
export interface DaemonStatus {
  version: string
  pid: number
  phase: DaemonPhase
  uptimeSeconds: number
  /** The config file it runs on (`file` absent: defaults and environment), and the keys changed by a reload since it started that wait for a restart. */
  config: { file?: string; restartPending: string[] }
  operatorId?: string
  /** Where connections go, and why there: `ingress.endpoint` (config), the registration (api), or the documented default. */
  ingressEndpoint?: string
  ingressEndpointSource?: 'config' | 'api' | 'default'
  ingressVerification: string
  /** The TLS handshake with the ingress made after each registration: whether it passed, else why and the fix. */
  ingressCheck?: { at: string; ok: boolean; message?: string; code?: string; hint?: string }
  /** Where the ngrok API key in use came from, and the API's last refusal or failure (cleared by a success). */
  apiKey: { source: string; lastError?: { at: string; message: string; /** The API's HTTP status, when it answered. */ status?: number; /** The fix; for ngrok's codes, the page of its docs. */ hint?: string } }
  /**
   * The last failure to keep a file in state_dir (a full or read-only disk), with its fix: the registration's (cleared
   * once registered), else the endpoint list's (cleared once it is saved again).
   */
  stateError?: { at: string; message: string; code: string; hint?: string }
  /**
   * A change to the registration (`changed`: selectors, description…) that ngrok refused or did not answer: the daemon
   * serves with the registration as ngrok has it, and tries again at `retryAt`. Absent once ngrok took it.
   */
  registrationUpdate?: RegistrationUpdatePending
  /** The ingress's trust anchors, summarised. */
  ingressTrust?: string
  driver?: string
  /** Where connections are carried (worker threads, or the main thread and why); absent for an injected forwarder. */
  forwarder?: ForwarderMode
  interface?: InterfaceInfo
  subnet?: string
  /** The name resolver: `frozen` while it refuses changes after a failed write (names published before still resolve). */
  names: NameResolverHealth
  /** Each plugin of `plugins:`: running, failed (register threw) or degraded (a hook threw). */
  plugins: PluginStatus[]
  /** The wait between polls: `bound_endpoints.poll_interval`, or longer while a poll needs more of the API budget (endpoint-poller.ts). */
  pollIntervalMs: number
  lastPoll?: PollStatus
  services: ServiceCounts
  openConnections: number
  traffic: TrafficTotals
  /** The daemon process's memory (process.memoryUsage), in bytes. */
  memory: { rss: number; heapUsed: number; external: number; arrayBuffers: number }
  metrics?: string
}

/** The server's route table from typed handlers. */
export function controlRoutes(handlers: ControlHandlers): ControlRoutes {
  return handlers as unknown as ControlRoutes
}

/** Reads who owns a pipe (windows-pipe-security-ffi.ts); tests give their own. */
export type PipeOwnerReader = (pipe: string) => PipeOwner

async function systemPipeOwner(): Promise<PipeOwnerReader> {
  const security = (await import('../control/windows-pipe-security-ffi.js')).systemPipeSecurity()
  return (pipe) => security.pipeOwner(pipe, PIPE_BUSY_WAIT_MS)
}

/**
 * Windows: the full pipe, then for a GET the read pipe when the full one refuses this user (windows-pipe-security.ts).
 * Each pipe's owner is checked before a byte is sent to it: a pipe another user made is refused (checkPipeOwner).
 */
export async function callPipes<T>(socket: string, method: 'GET' | 'POST', path: string, body: unknown, timeoutMs: number | undefined, readOwner?: PipeOwnerReader): Promise<T> {
  const pipes = clientPipePaths(socket, method)
  const ownerOf = readOwner ?? (await systemPipeOwner())
  for (const [i, pipe] of pipes.entries()) {
    try {
      checkPipeOwner(pipe, ownerOf(pipe))
      return await controlRequest<T>(pipe, method, path, body, timeoutMs)
    } catch (e) {
      const code = ((e as { cause?: NodeJS.ErrnoException }).cause ?? {}).code
      if (i === pipes.length - 1 || (code !== 'EPERM' && code !== 'EACCES')) throw e
    }
  }
  throw new Error('unreachable: no control pipe to try')
}

/**
 * Calls a route of the daemon's control API on `socketPath`. As root, a socket another user could
 * have put there is refused before a byte is sent (set-api-key sends the API key).
 */
export async function callDaemon<R extends ControlRoute>(
  socketPath: string,
  route: R,
  ...[body, timeoutMs]: ControlApi[R]['body'] extends undefined ? [body?: undefined, timeoutMs?: number] : [body: ControlApi[R]['body'], timeoutMs?: number]
): Promise<ControlApi[R]['reply']> {
  const [method, path] = route.split(' ') as ['GET' | 'POST', string]
  if (process.platform === 'win32') return callPipes<ControlApi[R]['reply']>(socketPath, method, path, body, timeoutMs)
  let target = socketPath
  if (runsAsRoot()) {
    // a missing socket is left to the request, which says the daemon is not running; its directory decides who could make one
    target = await assertTrustedPathOrDir(socketPath, { what: 'control socket' }).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' || e.code === 'ENOTDIR' ? socketPath : Promise.reject(e)))
  }
  return controlRequest<ControlApi[R]['reply']>(target, method, path, body, timeoutMs)
}
