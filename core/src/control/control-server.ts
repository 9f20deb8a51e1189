import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { connect, type Socket } from 'node:net'
import { chmod, chown, lstat, mkdir, stat, unlink } from 'node:fs/promises'
import { execFileSync } from 'node:child_process'
import { dirname } from 'node:path'
import type { Logger } from '../contracts/logger.js'
import { NgrokdError, formatError, isNgrokdError } from '../errors/ngrokd-error.js'
import type { PeerCheck } from './peer-access.js'
import { darwinPeerCheck, loadDarwinGetsockopt } from './peer-cred-darwin.js'
import { linuxPeerCheck, loadLinuxGetsockopt } from './peer-cred-linux.js'
import { ADMINISTRATORS_SID, controlPipes, readOnlyRoutes, windowsPipeName } from './windows-pipe-security.js'
import type { PipeSecurity } from './windows-pipe-security-ffi.js'
import { requireCommonJs } from '../util/commonjs.js'
import { nearestExisting } from '../util/nearest-existing.js'
import { assertTrustedPath, makeTrustedDirs, runsAsRoot } from '../util/trusted-path.js'

const { createServer } = requireCommonJs('node:http') as typeof import('node:http') // see requireCommonJs

export type ControlHandler = (body: unknown) => Promise<unknown> | unknown

export interface ControlRoutes {
  [route: `${'GET' | 'POST'} /${string}`]: ControlHandler
}

export interface ControlServerOptions {
  socketPath: string
  /** Group allowed to use the socket besides root (mode 0660 then; 0600 otherwise). */
  group?: string
  logger: Logger
  routes: ControlRoutes
  /** Bounds on clients; the defaults are CONTROL_LIMITS (tests shorten the timeouts). */
  limits?: Partial<ControlLimits>
  /**
   * Who may talk and what they may do, asked for each connection before a byte is read: every route, the
   * GET routes, or nothing (the connection is closed). Default: the peer's credentials (Linux SO_PEERCRED,
   * macOS LOCAL_PEERCRED): root and the daemon's own user change things, `group` reads.
   */
  peerCheck?: PeerCheck
  /** The OS whose transport is used (tests give `win32` on Linux). Default process.platform. */
  platform?: NodeJS.Platform
  /** Windows: the DACL calls; default through koffi (tests give a recording fake). */
  pipeSecurity?: () => Promise<PipeSecurity>
  /** Windows: where each pipe is listened on; default its `\\.\pipe\` path (tests map them onto Unix sockets). */
  pipeListenPath?: (pipePath: string) => string
}

export type { PeerAccess, PeerCheck } from './peer-access.js'

export interface ControlLimits {
  /** Connections open at once; past it a new connection is closed as soon as it is accepted. */
  maxConnections: number
  /** Time for a client to send the whole request head. */
  headersTimeoutMs: number
  /** Time for a client to send the whole request, head and body. */
  requestTimeoutMs: number
  /** A connection with no traffic either way for this long is closed (also an idle keep-alive one). */
  idleTimeoutMs: number
}

/**
 * Every client of the control API is a local command (`ngrokd status`, `reload`, ...) that sends one
 * small request at once, so these are far above what a real client needs and keep a slow or stuck one
 * from holding descriptors: before them 800 half-open requests held 800 descriptors indefinitely.
 */
export const CONTROL_LIMITS: ControlLimits = {
  maxConnections: 64,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  idleTimeoutMs: 60_000,
}

const MAX_BODY = 64 * 1024

/**
 * Connections kept for root and the daemon's own user (at most half of `maxConnections`): members of
 * control.group, who may only read, never fill the socket for them.
 */
const PRIVILEGED_SLOTS = 8

/**
 * The control API: HTTP/1.1 over a Unix socket, JSON in and out. The socket is created with mode
 * 0600 — the umask is narrowed around listen() so there is no moment when it is wider — and then
 * opened to `group` (0660) if one is configured.
 */
export class ControlServer {
  private servers: Server[] = []
  /** Between a start() that succeeded and close(): what {@link repair} keeps listening. */
  private serving = false
  /** Servers a repair stopped listening, whose connections may still be finishing (`closed` once they have): close() ends them. */
  private retired: Array<{ server: Server; closed: Promise<void> }> = []
  /** Connections whose peer may only read (control.group): they get the GET routes. */
  private readonly readOnly = new WeakSet<Socket>()
  /** How many of those are open. */
  private readers = 0
  /** Requests of each connection whose reply is not written out yet (see handle). */
  private readonly unanswered = new WeakMap<Socket, number>()

  constructor(private readonly options: ControlServerOptions) {}

  private get limits(): ControlLimits {
    return { ...CONTROL_LIMITS, ...this.options.limits }
  }

  async start(): Promise<void> {
    const platform = this.options.platform ?? process.platform
    if (platform === 'win32') return this.startPipes()
    const { socketPath, logger, group } = this.options
    // a group that does not exist fails before there is a socket to undo
    const gid = group ? groupId(group) : undefined
    // as root, a directory another user may write would let them swap the socket for a link before its chmod/chown;
    // and nothing is made through their link or in their folder on the way there
    await assertSocketFolderPossible(socketPath)
    if (runsAsRoot()) {
      await makeTrustedDirs(dirname(socketPath), { what: 'control socket directory' })
      await assertTrustedPath(dirname(socketPath), { what: 'control socket directory' })
    } else await mkdir(dirname(socketPath), { recursive: true })
    await removeStaleSocket(socketPath)
    const server = this.newServer(this.options.routes)
    const peerCheck = this.options.peerCheck ?? (await this.platformPeerCheck())
    if (peerCheck) {
      const { maxConnections } = this.limits
      const maxReaders = maxConnections - Math.min(PRIVILEGED_SLOTS, Math.floor(maxConnections / 2))
      server.on('connection', (socket: Socket) => {
        const access = peerCheck(socket)
        if (!access) socket.destroy()
        else if (access === 'read') {
          if (this.readers >= maxReaders) return void socket.destroy()
          this.readers++
          socket.once('close', () => this.readers--)
          this.readOnly.add(socket)
        }
      })
    }
    const previousUmask = process.umask(0o177)
    try {
      await listenOn(server, socketPath)
    } finally {
      process.umask(previousUmask)
    }
    this.servers = [server]
    try {
      await chmod(socketPath, 0o600)
      if (gid !== undefined) {
        await chown(socketPath, process.getuid?.() ?? 0, gid)
        await chmod(socketPath, 0o660)
      }
    } catch (e) {
      await this.close() // the server, and the socket file with it
      const code = (e as NodeJS.ErrnoException).code
      throw new NgrokdError('NGROKD_ERR_CONTROL', `cannot give the control socket ${socketPath} to control.group "${group}": ${code ?? formatError(e)}`, {
        cause: e,
        hint:
          code === 'EPERM'
            ? 'giving a file to a group needs CAP_CHOWN: a systemd unit made by `ngrokd service install` before control.group was set lacks it; run `ngrokd service install` again, or unset control.group'
            : 'check the socket directory, or unset control.group',
      })
    }
    this.serving = true
    logger.debug({ socket: socketPath }, 'control socket listening')
  }

  /**
   * The socket file removed under the daemon (`rm`, a cleanup of /run) leaves it listening where no client finds it:
   * it is made again. Resolves a sentence for the log saying so, or undefined when the file is there (or on Windows,
   * whose pipes have no file, or before start()).
   */
  async repair(): Promise<string | undefined> {
    if (!this.serving || (this.options.platform ?? process.platform) === 'win32') return undefined
    const { socketPath } = this.options
    // servers gone too: an earlier repair's start() failed (the folder refused), tried again now
    const gone = this.servers.length === 0 || (await lstat(socketPath).then(() => false, (e: NodeJS.ErrnoException) => e.code === 'ENOENT' || e.code === 'ENOTDIR'))
    if (!gone) return undefined
    // the old server stops listening; its connections (a set-api-key waiting on the API) finish on it, and close() ends them
    for (const server of this.servers) this.retired.push({ server, closed: new Promise<void>((resolve) => server.close(() => resolve())) })
    this.servers = []
    await this.start()
    return `the control socket ${socketPath} was removed under the daemon: made it again`
  }

  /**
   * Windows: the control API on named pipes (windows-pipe-security.ts): `\\.\pipe\<name>` for every route,
   * SYSTEM and Administrators only, and with `control.group` a `-read` pipe for the GET routes that the
   * group may open. Each pipe's DACL and owner (Administrators, what clients check) are set right after listen(),
   * before the daemon answers anything.
   */
  private async startPipes(): Promise<void> {
    const { logger, group } = this.options
    const security = await (this.options.pipeSecurity ?? defaultPipeSecurity)()
    const pipes = controlPipes({ socket: windowsPipeName(this.options.socketPath), ...(group ? { readerSid: security.groupSid(group) } : {}) })
    const listenPath = this.options.pipeListenPath ?? ((p: string) => p)
    try {
      for (const pipe of pipes) {
        const server = this.newServer(pipe.routes === 'all' ? this.options.routes : (readOnlyRoutes(this.options.routes) as ControlRoutes))
        this.servers.push(server)
        await listenOn(server, listenPath(pipe.path))
        security.applyDacl(pipe.path, pipe.sddl, ADMINISTRATORS_SID)
        logger.debug({ pipe: pipe.path, routes: pipe.routes }, 'control pipe listening')
      }
    } catch (e) {
      await this.close()
      throw e
    }
  }

  private newServer(routes: ControlRoutes): Server {
    const limits = this.limits
    // connectionsCheckingInterval: how often Node looks for requests past their timeouts (default 30 s)
    const checkEveryMs = Math.max(10, Math.min(1000, limits.headersTimeoutMs / 2))
    const server = createServer({ connectionsCheckingInterval: checkEveryMs }, (req, res) => void this.handle(routes, req, res))
    server.maxConnections = limits.maxConnections
    server.headersTimeout = limits.headersTimeoutMs
    server.requestTimeout = limits.requestTimeoutMs
    server.setTimeout(limits.idleTimeoutMs, (socket) => socket.destroy())
    return server
  }

  /** The peer's credentials on each connection: SO_PEERCRED on Linux, LOCAL_PEERCRED on macOS. */
  private async platformPeerCheck(): Promise<PeerCheck | undefined> {
    const refused = (why: string) => this.options.logger.warn({ socket: this.options.socketPath }, `control socket: connection refused: ${why}`)
    // without control.group the 0600 socket lets in only root and the daemon's own user, who may do everything
    if (process.platform === 'linux') return this.options.group ? linuxPeerCheck(await loadLinuxGetsockopt(), refused) : undefined
    if (process.platform !== 'darwin') return undefined
    const gid = this.options.group ? groupId(this.options.group) : undefined
    return darwinPeerCheck(await loadDarwinGetsockopt(), gid, refused)
  }

  async close(): Promise<void> {
    this.serving = false
    const retired = this.retired
    this.retired = []
    for (const { server, closed } of retired) {
      server.closeAllConnections?.()
      await closed
    }
    const servers = this.servers
    if (servers.length === 0) return
    this.servers = []
    for (const server of servers) {
      server.closeAllConnections?.()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
    // a pipe goes with its last handle; a Unix socket's file stays unless removed
    if ((this.options.platform ?? process.platform) !== 'win32') await unlink(this.options.socketPath).catch(() => {})
  }

  private async handle(routes: ControlRoutes, req: IncomingMessage, res: ServerResponse): Promise<void> {
    // a client sends a request and reads its reply: one that pipelines requests without reading would make
    // the daemon hold every reply. A kept-alive client's next request can arrive before the daemon has seen its
    // last reply written out (libuv reads before it completes writes), so one such request is let through; a
    // third while two are unanswered closes the connection.
    const socket = req.socket
    const pending = this.unanswered.get(socket) ?? 0
    if (pending >= 2) return void socket.destroy()
    this.unanswered.set(socket, pending + 1)
    res.once('close', () => this.unanswered.set(socket, (this.unanswered.get(socket) ?? 1) - 1))
    const route = `${req.method} ${(req.url ?? '/').split('?')[0]}` as keyof ControlRoutes
    const handler = routes[route]
    const reply = (status: number, body: unknown): void => {
      const text = JSON.stringify(body)
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
      res.end(text)
    }
    if (!handler) return reply(404, { error: { code: 'NGROKD_ERR_CONTROL', message: `no route ${route}` } })
    if (req.method !== 'GET' && this.readOnly.has(req.socket)) {
      const uid = process.getuid?.()
      return reply(403, {
        error: {
          code: 'NGROKD_ERR_PERMISSION',
          message: `${route} changes the daemon: only root${uid ? ` or uid ${uid}, the daemon's own user,` : ''} may; control.group may read`,
          hint: 'run the command with sudo',
        },
      })
    }
    let body: unknown
    try {
      if (req.method === 'POST') {
        const chunks: Buffer[] = []
        let size = 0
        for await (const chunk of req) {
          size += (chunk as Buffer).length
          if (size > MAX_BODY) return reply(413, { error: { code: 'NGROKD_ERR_CONTROL', message: 'request body too large' } })
          chunks.push(chunk as Buffer)
        }
        const text = Buffer.concat(chunks).toString('utf8')
        body = text ? JSON.parse(text) : undefined
      }
    } catch (e) {
      return reply(400, { error: { code: 'NGROKD_ERR_CONTROL', message: `the request body is not JSON: ${(e as Error).message}` } })
    }
    try {
      reply(200, (await handler(body)) ?? null) // a handler that returns nothing answers JSON null
    } catch (e) {
      // a coded error is the daemon's answer (a key the API refused); anything else is a bug in the handler
      const err = e as Error & { code?: string; hint?: string }
      reply(isNgrokdError(e) ? 400 : 500, { error: { code: err.code ?? 'NGROKD_ERR_CONTROL', message: err.message, hint: err.hint } })
    }
  }
}

/** listen() on a socket or pipe path, as a coded error naming it. */
async function listenOn(server: Server, path: string): Promise<void> {
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(path, () => {
        server.off('error', reject)
        resolve()
      })
    })
  } catch (e) {
    throw new NgrokdError('NGROKD_ERR_CONTROL', `cannot listen on control socket ${path}: ${(e as Error).message}`, {
      cause: e,
      hint: (e as NodeJS.ErrnoException).code === 'EADDRINUSE' ? 'another ngrokd (or another program) holds it: stop it, or set control.socket to another name' : 'set control.socket to a path in a directory you can write, or run as root',
    })
  }
}

async function defaultPipeSecurity(): Promise<PipeSecurity> {
  return (await import('./windows-pipe-security-ffi.js')).systemPipeSecurity()
}

/**
 * A socket file left by a crashed daemon is removed (true); one that still answers means another ngrokd
 * is running, which is an error. Anything that is not a socket is never deleted.
 */
export async function removeStaleSocket(path: string): Promise<boolean> {
  const st = await lstat(path).catch(() => undefined)
  if (!st) return false
  if (!st.isSocket()) {
    throw new NgrokdError('NGROKD_ERR_CONTROL', `${path} exists and is not a socket`, { hint: 'remove it or set control.socket to another path' })
  }
  const alive = await new Promise<boolean>((resolve) => {
    const s = connect(path)
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })
  if (alive) {
    throw new NgrokdError('NGROKD_ERR_CONTROL', `another ngrokd is already running on ${path}`, { hint: 'stop it first (ngrokd status shows it), or set control.socket to another path' })
  }
  await unlink(path)
  return true
}

/**
 * Refuses a `control.socket` whose folder cannot be there: it, or the nearest path above it that exists, is not a
 * directory (`/etc/hostname/x.sock`) — an error naming the key and its fix, not mkdir's bare EEXIST or ENOTDIR.
 * @throws NgrokdError `NGROKD_ERR_CONFIG_INVALID`
 */
export async function assertSocketFolderPossible(socketPath: string): Promise<void> {
  const at = nearestExisting(dirname(socketPath))
  const st = await stat(at).catch(() => undefined)
  if (st === undefined || st.isDirectory()) return
  throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `control.socket ${socketPath}: its folder cannot be made, as ${at} is not a directory`, {
    hint: 'set control.socket to a path in a folder of its own, such as /run/ngrokd/ngrokd.sock',
  })
}

/**
 * A group's id: a number as given; else from getent (Linux) or, on macOS, which has no getent, Directory Services.
 * Throws NGROKD_ERR_CONTROL naming the group when it does not exist (the daemon asks before it creates anything).
 */
export function groupId(group: string): number {
  if (/^\d+$/.test(group)) return Number(group)
  // by full path: ngrokd runs as root and takes no program from PATH
  try {
    if (process.platform === 'darwin') {
      // "PrimaryGroupID: 20"
      const line = execFileSync('/usr/bin/dscl', ['.', '-read', `/Groups/${group}`, 'PrimaryGroupID'], { encoding: 'utf8' }).trim()
      const gid = Number(line.split(/\s+/).pop())
      if (Number.isInteger(gid)) return gid
      throw new Error(line)
    }
    const line = execFileSync('/usr/bin/getent', ['group', group], { encoding: 'utf8' }).trim()
    return Number(line.split(':')[2])
  } catch (cause) {
    const missing = (cause as NodeJS.ErrnoException).code === 'ENOENT' ? (cause as { path?: string }).path : undefined
    if (missing) throw new NgrokdError('NGROKD_ERR_CONTROL', `control.group "${group}": ${missing} is not there to look the group up`, { cause, hint: 'give control.group as a number (its gid)' })
    throw new NgrokdError('NGROKD_ERR_CONTROL', `control.group "${group}" does not exist`, { hint: 'create the group (groupadd) or fix control.group' })
  }
}
