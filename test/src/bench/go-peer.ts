import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { managedRecords, readHosts } from '../helpers/hosts-file.js'
import { deleteLink, linkExists } from '../helpers/ip-link.js'

/**
 * The original Go daemon (public repository ishanj12/ngrokd, built unmodified by
 * test/scripts/build-go-peer.sh), run against the bench's simulator for a row beside ngrokd's.
 *
 * It cannot be configured the way ngrokd is, so each start works around what it hard-wires, inside the
 * bench's own network namespace and a mount namespace of the peer's own (`unshare --mount`):
 * - it always calls https://api.ngrok.com: its /etc/hosts (a private file bind-mounted over the path)
 *   maps that name to 127.0.0.1, where the simulator serves its API over HTTPS on port 443
 *   ({@link GO_PEER_API}) with a certificate for the name from its CA, which `SSL_CERT_FILE` names;
 * - it verifies the ingress's certificate only when /etc/ssl/certs/ngrok/ exists (otherwise it skips the
 *   check): a directory holding the simulator's CA there is bind-mounted over /etc/ssl/certs;
 * - it creates a `dummy` link, which some kernels lack, but reuses a link of the configured name: a
 *   bridge is made first;
 * - it writes the hosts file named by `NGROKD_HOSTS_PATH` (a file of its own here, read by the bench),
 *   and keeps its key, certificate and operator id beside `server.client_cert`.
 * It keeps no endpoint list across starts (it polls before it listens), answers SIGTERM by exiting at
 * once (Go's default), and logs lines per connection to stdout (kept in its log file).
 */

/** Where the Go peer finds the API: the simulator's HTTPS listener for this name and port (its URL is fixed). */
export const GO_PEER_API = { names: ['api.ngrok.com'], port: 443 }

export interface GoPeerOptions {
  /** The built binary (`--peer PATH`). */
  bin: string
  /** The simulator: its API key, CA (PEM) and the ingress endpoint it advertises. */
  sim: { apiKey: string; caCertPem: string; ingressPort: number }
  /** Link and subnet of its own (not ngrokd's: the two never share addresses). */
  interfaceName: string
  subnet: string
}

/** Safety net for a stop; the peer exits on SIGTERM at once. Not a figure. */
const STOP_SAFETY_MS = 10_000

/** Why `bin` cannot be the peer, or undefined when it is an executable file. */
export function peerBinaryProblem(bin: string): string | undefined {
  if (!existsSync(bin)) return `${bin} does not exist (build it with test/scripts/build-go-peer.sh GIT_DIR OUT_DIR)`
  if (!statSync(bin).isFile()) return `${bin} is not a file`
  try {
    accessSync(bin, constants.X_OK)
  } catch {
    return `${bin} is not executable`
  }
  return undefined
}

/** The commit the binary was built from (written beside it by build-go-peer.sh), or null. */
export function peerCommit(bin: string): string | null {
  try {
    return readFileSync(`${bin}.commit`, 'utf8').trim() || null
  } catch {
    return null
  }
}

export class GoPeer {
  readonly dir: string
  /** The hosts file it writes its managed block to (`NGROKD_HOSTS_PATH`). */
  readonly hostsFile: string
  readonly logFile: string
  child!: ChildProcess
  private readonly configFile: string
  private readonly certsDir: string
  private readonly resolverHosts: string

  private constructor(readonly options: GoPeerOptions) {
    this.dir = mkdtempSync(join(tmpdir(), 'ngrokd-bench-go-peer-'))
    const state = join(this.dir, 'state')
    mkdirSync(state, { mode: 0o700 })
    this.hostsFile = join(this.dir, 'hosts')
    this.logFile = join(this.dir, 'peer.log')
    this.configFile = join(state, 'config.yml')
    // what it trusts: the simulator's CA, for the API (SSL_CERT_FILE) and, from ngrok/, for the ingress
    this.certsDir = join(this.dir, 'ssl-certs')
    mkdirSync(join(this.certsDir, 'ngrok'), { recursive: true })
    writeFileSync(join(this.certsDir, 'ngrok', 'simulator-ca.crt'), options.sim.caCertPem)
    writeFileSync(join(this.certsDir, 'ca-certificates.crt'), options.sim.caCertPem)
    // what its resolver reads: localhost for the ingress, api.ngrok.com for the API
    this.resolverHosts = join(this.dir, 'resolver-hosts')
    writeFileSync(this.resolverHosts, `127.0.0.1\tlocalhost\n127.0.0.1\t${GO_PEER_API.names.join(' ')}\n`)
    writeFileSync(this.hostsFile, '')
    // its config (YAML; JSON is YAML): api.url is ignored by it, so none is given
    const config = {
      api: { key: options.sim.apiKey },
      ingressEndpoint: `localhost:${options.sim.ingressPort}`,
      server: { socket_path: join(state, 'ngrokd.sock'), client_cert: join(state, 'tls.crt'), client_key: join(state, 'tls.key') },
      bound_endpoints: { poll_interval: 3600, selectors: ['true'] },
      net: { interface_name: options.interfaceName, subnet: options.subnet, listen_interface: 'virtual' },
    }
    writeFileSync(this.configFile, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 })
  }

  /** Makes its link and spawns it with a fresh state dir. */
  static start(options: GoPeerOptions): GoPeer {
    const peer = new GoPeer(options)
    peer.spawn()
    return peer
  }

  /** performance.now() just before the last spawn. */
  startedAt = 0

  get pid(): number {
    if (this.child.pid === undefined) throw new Error('go peer: no pid')
    return this.child.pid
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null
  }

  /** Starts it again with the same state dir (its saved registration); the previous process must have exited. */
  restart(): void {
    if (this.running) throw new Error('go peer: restart() while it still runs')
    writeFileSync(this.hostsFile, '')
    this.spawn()
  }

  private spawn(): void {
    const { interfaceName } = this.options
    if (!linkExists(interfaceName)) ipLink(['add', interfaceName, 'type', 'bridge'])
    ipLink(['set', interfaceName, 'up'])
    const log = openSync(this.logFile, 'a')
    // unshare execs sh, which execs the peer: the child's pid is the peer's own (its CPU and RSS are read there)
    const script = 'mount --bind "$1" /etc/ssl/certs && mount --bind "$2" /etc/hosts && exec "$3" -config "$4"'
    this.startedAt = performance.now()
    this.child = spawn('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'go-peer', this.certsDir, this.resolverHosts, this.options.bin, this.configFile], {
      stdio: ['ignore', log, log],
      env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', SSL_CERT_FILE: join(this.certsDir, 'ca-certificates.crt'), NGROKD_HOSTS_PATH: this.hostsFile },
    })
    closeSync(log)
  }

  /** hostname → address from its hosts block (empty until its first poll is done). */
  records(): Map<string, string> {
    try {
      return managedRecords(readHosts(this.hostsFile))
    } catch {
      return new Map() // being rewritten
    }
  }

  /**
   * Waits until its hosts block names every hostname: it writes the block after its listeners are up.
   * The timeout is a safety net, not a figure.
   */
  async waitServing(hostnames: string[], safetyMs = 60_000): Promise<Map<string, string>> {
    const deadline = Date.now() + safetyMs
    for (;;) {
      const records = this.records()
      if (hostnames.every((h) => records.has(h))) return records
      if (!this.running) throw new Error(`go peer exited (${this.child.exitCode ?? this.child.signalCode}) before serving ${hostnames.join(', ')}\n${this.logTail(15)}`)
      if (Date.now() > deadline) throw new Error(`go peer: ${hostnames.join(', ')} not in its hosts file within ${safetyMs} ms\n${this.logTail(15)}`)
      await new Promise((r) => setTimeout(r, 20))
    }
  }

  /** Sockets it holds open (listeners, its API connection, forwarded connections): /proc/<pid>/fd. */
  openSockets(): number {
    let n = 0
    for (const fd of readdirSync(`/proc/${this.pid}/fd`)) {
      try {
        if (readlinkSync(`/proc/${this.pid}/fd/${fd}`).startsWith('socket:')) n++
      } catch {
        // closed meanwhile
      }
    }
    return n
  }

  logTail(lines: number): string {
    try {
      return readFileSync(this.logFile, 'utf8').split('\n').slice(-lines - 1).join('\n')
    } catch {
      return ''
    }
  }

  /** SIGTERM (it exits at once), SIGKILL after a safety net. */
  async stop(): Promise<void> {
    if (!this.running) return
    const exited = once(this.child, 'exit')
    this.child.kill('SIGTERM')
    const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_SAFETY_MS)
    await exited
    clearTimeout(timer)
  }

  /** Stops it, deletes its link (with the addresses it left) and its temp dir. */
  async dispose(): Promise<void> {
    await this.stop()
    deleteLink(this.options.interfaceName)
    if (process.env.NGROKD_E2E_KEEP === '1') {
      process.stderr.write(`# go peer: kept ${this.dir}\n`)
      return
    }
    rmSync(this.dir, { recursive: true, force: true })
  }
}

/** `ip link ARGS`, throwing with iproute2's message. */
function ipLink(args: string[]): void {
  try {
    execFileSync('ip', ['link', ...args], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' })
  } catch (e) {
    throw new Error(`ip link ${args.join(' ')}: ${((e as { stderr?: string }).stderr ?? String(e)).trim()}`)
  }
}
