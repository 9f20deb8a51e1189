import { randomUUID } from 'node:crypto'
import { constants } from 'node:fs'
import { lstat, mkdir, open, rename, rm } from 'node:fs/promises'
import { hostname as osHostname } from 'node:os'
import { join } from 'node:path'
import { NgrokdError, formatError, isNgrokdError } from '../errors/index.js'
import { silentLogger, type Logger } from '../contracts/logger.js'
import type { AtomicWriteOptions } from '../util/atomic-file.js'
import { writeStateFile } from '../util/state-dir-guard.js'
import { notAFileError, notAFileKind, stateDirProblem } from '../util/state-dir-problem.js'
import type { NgrokApiClient } from '../api/ngrok-api-client.js'
import { isNgrokApiError } from '../api/ngrok-api-error.js'
import { DEFAULT_INGRESS_ENDPOINT, normalizeIngressEndpoint } from '../api/ingress-endpoint.js'
import type { Operator, OperatorCreate } from '../api/types.js'
import { CORE_VERSION } from '../version.js'
import { parseCertificate, type CertificateInfo } from '../cert/parse-certificate.js'
import type { KeyAndCsr } from '../cert/csr.js'

const DAY_MS = 86_400_000
/** ngrok's operator re-keys when less than 30 days remain (PROTOCOL.md §3). */
export const DEFAULT_RENEW_BEFORE_MS = 30 * DAY_MS
/** The most by which a CA is taken to backdate `notBefore` (Let's Encrypt's is an hour; ngrok's is not published). */
const MAX_BACKDATE_MS = 60 * 60_000
/** `description` is at most 255 bytes (ngrok API, KubernetesOperatorCreate). */
const MAX_DESCRIPTION_BYTES = 255
/** The key under which the machine id is kept in the operator's `metadata` JSON. */
export const MACHINE_ID_METADATA_KEY = 'ngrokd_machine_id'

/**
 * What client.crt.next holds while ngrok is asked for the certificate of client.key.next ({@link Registration}'s
 * stageNewPair): the room of a certificate with its chain and of the operator.json written after it (a file system
 * block each, 4 KiB on ext4 and tmpfs), taken before the registration exists: a state dir with room for the key alone
 * fails before ngrok is asked, never after a registration was created. Not a certificate: finishPairWrite drops it, with
 * the key, after a stop.
 */
const CERT_ROOM = '# ngrokd: room kept for the certificate of client.key.next and operator.json while ngrok is asked for them; not a certificate\n'.padEnd(8191, '#') + '\n'

/** Files ngrokd keeps in its state directory for the registration. */
export const REGISTRATION_FILES = {
  operator: 'operator.json',
  key: 'client.key',
  cert: 'client.crt',
  machineId: 'machine-id',
  /** A new key and certificate on their way in (see `save`); gone once both are in place. */
  nextKey: 'client.key.next',
  nextCert: 'client.crt.next',
} as const

/** What `Registration` needs of the API client (an `NgrokApiClient`, or a fake in tests). */
export type OperatorApi = Pick<NgrokApiClient, 'createOperator' | 'getOperator' | 'updateOperator' | 'deleteOperator' | 'listOperators'>

export interface RegistrationOptions {
  api: OperatorApi
  /** Holds operator.json, client.key (0600), client.crt and machine-id. Created 0700 when missing. */
  stateDir: string
  logger?: Logger
  /** Default `ngrokd on <hostname>`. */
  description?: string
  /** CEL endpoint selectors. Default `['true']` (every kubernetes-bound endpoint of the account). */
  selectors?: string[]
  /** The ngrok region (`registration.region`). Default `global`. */
  region?: string
  /** `deployment.name` (`registration.deployment_name`). Default `ngrokd`; `deployment.version` is always {@link CORE_VERSION}. */
  deploymentName?: string
  /** Overrides the `machine-id` file (which is otherwise made once with a random UUID). */
  machineId?: string
  /** Renew when less than this is left. Default 30 days. */
  renewBeforeMs?: number
  /** Clock, ms since the epoch. Default Date.now. */
  now?: () => number
  /** Default os.hostname(). Stored in the operator's metadata for people reading the dashboard. */
  hostname?: string
  /** Writes one state file. Default writeStateFile; tests inject a failing one. */
  writeFile?: (path: string, data: string, options: AtomicWriteOptions) => Promise<void>
}

/** A change to the registration that ngrok refused or did not answer (`Registration.updatePending`). */
export interface RegistrationUpdatePending {
  /** What differs from ngrok's copy: `endpoint selectors`, `description`, `metadata`, `region`, `deployment`… */
  changed: string[]
  /** The first refusal, ISO 8601. */
  since: string
  /** The last refusal, one line. */
  error: string
  /** When it is tried again, ISO 8601. */
  retryAt: string
}

export interface RegistrationInfo {
  operatorId: string
  /**
   * `host:port` of the binding ingress from the latest registration reply (`:443` appended when the
   * API gave no port); undefined when the API named none — the caller decides what to dial then.
   */
  ingressEndpoint?: string
  certPem: string
  /** Secret: never log it. */
  keyPem: string
  notAfter: Date
}

export interface ClientCredentials {
  certPem: string
  keyPem: string
}

/** What a machine id looks like, in the `machine-id` file and in operator.json. */
const MACHINE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/

/** Contents of operator.json. The key and certificate live in their own files. */
interface StoredOperator {
  version: 1
  operatorId: string
  machineId: string
  /** '' when the API named none. */
  ingressEndpoint: string
  notBefore: string
  notAfter: string
  fingerprint256: string
  savedAt: string
}

interface Loaded {
  stored?: StoredOperator
  keyPem?: string
  certPem?: string
}

interface Current {
  operatorId: string
  machineId: string
  ingressEndpoint?: string
  certPem: string
  keyPem: string
  cert: CertificateInfo
  /** When this process received `cert` from the API (not known for one read from disk). */
  receivedAt?: number
}

/**
 * What `load()` found: the registration to use, and `outOfDate` (the error that stopped it) when ngrok's copy may differ
 * from the desired state and could not be brought in line (the API did not answer, or refused the update).
 */
interface LoadOutcome {
  current: Current
  outOfDate?: unknown
  /** What differs, when ngrok was asked to update it and refused or did not answer. */
  changed?: string[]
}

/**
 * A registration left out of date is compared with ngrok's again, and a renewal that failed asked for again, after this
 * wait, doubled at each failure in a row up to {@link UPDATE_RETRY_MAX_MS} ({@link retryWaitMs}).
 */
const UPDATE_RETRY_FIRST_MS = 60_000
const UPDATE_RETRY_MAX_MS = 3_600_000

/** The wait after the `failures`th failure in a row: a minute, doubled at each, at most an hour. */
function retryWaitMs(failures: number): number {
  return Math.min(UPDATE_RETRY_FIRST_MS * 2 ** (failures - 1), UPDATE_RETRY_MAX_MS)
}

/**
 * Whether a retry set for `at` after `failures` failures is due at `now`. A wait longer than {@link retryWaitMs} gives is
 * a clock set back since (a clock that was ahead, corrected by NTP): due now, not after the step's size.
 */
function isDue({ at, failures }: { at: number; failures: number }, now: number): boolean {
  return now >= at || at - now > retryWaitMs(failures)
}

/** The API of a Registration that only reads saved state ({@link Registration.readSaved}): calling it is a bug. */
const OFFLINE_API: OperatorApi = new Proxy({} as OperatorApi, {
  get: (_, method) => () => Promise.reject(new Error(`registration: ${String(method)} called while reading saved state`)),
})

/** The CSR code (node-forge's ASN.1) loads when a key is made, not on every start that reuses one. */
const csrCode = () => import('../cert/csr.js')

/** A registration file that cannot be read or written in `stateDir`: why (a full disk, a read-only one) and the fix, by its errno. */
function stateError(what: string, path: string, stateDir: string, cause: unknown): NgrokdError {
  const problem = stateDirProblem(stateDir, cause)
  return new NgrokdError(problem?.code ?? 'NGROKD_ERR_STATE', `registration: cannot ${what} ${path}${problem ? `: ${problem.why}` : ''}`, {
    cause,
    hint: problem?.hint ?? 'check that the state directory is a writable directory owned by the user running ngrokd',
  })
}

/**
 * How long a certificate that came already due for renewal is used before another is asked for (ngrokd's choice): one
 * asked for at once would come due too, and every poll would re-key and PATCH the registration.
 */
const DUE_ON_ARRIVAL_RETRY_MS = 60 * 60_000

/** How far the issuer's clock may be ahead of ours before a certificate that is not valid yet is called out. */
const CLOCK_SKEW_TOLERANCE_MS = 5 * 60_000

/**
 * The error for a client certificate whose validity starts well after `nowMs`: this machine's clock is behind the
 * issuer's, and the ingress refuses the certificate until then (every connection is closed unanswered).
 * Undefined when it is valid by this clock, give or take {@link CLOCK_SKEW_TOLERANCE_MS}.
 */
export function notYetValidError(cert: Pick<CertificateInfo, 'notBefore'>, nowMs: number): NgrokdError | undefined {
  const ahead = cert.notBefore.getTime() - nowMs
  if (ahead <= CLOCK_SKEW_TOLERANCE_MS) return undefined
  return new NgrokdError(
    'NGROKD_ERR_CERT',
    `the client certificate is valid only from ${cert.notBefore.toISOString()}, ${Math.round(ahead / 60_000)} min after this machine's clock (${new Date(nowMs).toISOString()}): its clock is behind`,
    { hint: 'set the clock right (timedatectl set-ntp true, or your NTP service); until then the ingress refuses every connection' },
  )
}

/** A registration file that is a link, a directory or a device: ngrokd's own files are plain files. */
function notARegistrationFile(path: string, what: string, cause?: unknown): NgrokdError {
  return notAFileError('registration', path, what, 'ngrokd writes its registration files itself (a missing key or certificate is made anew and registered)', cause)
}

function truncateUtf8(text: string, maxBytes: number): string {
  const buf = Buffer.from(text, 'utf8')
  if (buf.length <= maxBytes) return text
  return buf.subarray(0, maxBytes).toString('utf8').replace(/\uFFFD+$/, '')
}

/** The machine id in an operator's metadata, if it is ngrokd's JSON. */
export function machineIdOf(op: Pick<Operator, 'metadata'>): string | undefined {
  if (!op.metadata) return undefined
  try {
    const m = JSON.parse(op.metadata) as unknown
    const id = typeof m === 'object' && m !== null ? (m as Record<string, unknown>)[MACHINE_ID_METADATA_KEY] : undefined
    return typeof id === 'string' ? id : undefined
  } catch {
    return undefined
  }
}

function sameList(a: readonly string[] | undefined, b: readonly string[]): boolean {
  return !!a && a.length === b.length && a.every((x, i) => x === b[i])
}

/** The desired registration: every field ngrok's operator sends, on create and on every PATCH. */
type DesiredState = Required<Pick<OperatorCreate, 'description' | 'metadata' | 'enabled_features' | 'region' | 'deployment'>> & {
  binding: { endpoint_selectors: string[]; csr: string }
}

/**
 * ngrokd's registration as a ngrok Kubernetes operator and its client certificate (PROTOCOL.md §2–3).
 *
 * - `ensure()` reuses the registration in `stateDir` while the API still has it, else finds an
 *   earlier one of this machine (machine id in `metadata`) and re-keys it, else creates one.
 *   A new key is saved before the API is asked for its certificate, so a state dir that cannot take
 *   it asks ngrok nothing; a create whose result cannot be saved still is deleted again: no orphans.
 * - `renewIfNeeded()` re-keys and PATCHes a new CSR when less than `renewBeforeMs` remain; the old
 *   pair stays in use until the new one is saved.
 * - A registration ngrok's copy of which may differ from the desired state (an update ngrok refused or did not
 *   answer, a start on the saved one while the API was down) serves as it is; `renewIfNeeded()` compares it again
 *   when due (`updatePending` says what waits).
 * - `credentials()` is the current pair: read it for every new connection, so rotation needs no restart.
 * - Key material is never logged; the key file is written 0600 from its first byte.
 *
 * ```ts
 * const registration = new Registration({ api, stateDir: '/var/lib/ngrokd', logger })
 * const { operatorId, ingressEndpoint } = await registration.ensure()
 * setInterval(() => registration.renewIfNeeded().catch(log), 3_600_000)
 * tls.connect({ ...registration.credentials(), … })
 * ```
 */
/** operator.json files already said to be unreadable in this process. */
const saidUnreadable = new Set<string>()

export class Registration {
  private readonly api: OperatorApi
  private readonly stateDir: string
  private readonly logger: Logger
  private readonly selectors: string[]
  private readonly region: string
  private readonly deploymentName: string
  private readonly renewBeforeMs: number
  private readonly now: () => number
  private readonly hostname: string
  private readonly description: string
  private readonly machineIdOption?: string
  private readonly writeFile: (path: string, data: string, options: AtomicWriteOptions) => Promise<void>
  private current?: Current
  /**
   * Set while ngrok's copy of the registration may differ from the desired state: when to compare again, after how many
   * failures; with what changed, since when and why not, when ngrok refused or did not answer an update.
   */
  private updateDue?: { at: number; failures: number; refused?: { changed: string[]; since: number; error: string } }
  /** Set while a renewal has failed: when to ask again, after how many failures in a row ({@link retryWaitMs}). */
  private renewalDue?: { at: number; failures: number }
  private queue: Promise<unknown> = Promise.resolve()
  /** The unreadable `binding.ingress_endpoint` said last (once per value). */
  private saidUnreadableIngress?: string
  /** The fingerprint of the certificate last said to have come due for renewal (once per certificate). */
  private saidDueOnArrival?: string

  constructor(options: RegistrationOptions) {
    this.api = options.api
    this.stateDir = options.stateDir
    this.logger = (options.logger ?? silentLogger).child({ component: 'registration' })
    this.selectors = options.selectors && options.selectors.length > 0 ? [...options.selectors] : ['true']
    this.region = options.region ?? 'global'
    this.deploymentName = options.deploymentName ?? 'ngrokd'
    this.renewBeforeMs = options.renewBeforeMs ?? DEFAULT_RENEW_BEFORE_MS
    this.now = options.now ?? Date.now
    this.hostname = options.hostname ?? osHostname()
    this.description = truncateUtf8(options.description ?? `ngrokd on ${this.hostname}`, MAX_DESCRIPTION_BYTES)
    if (options.machineId !== undefined) this.machineIdOption = options.machineId
    this.writeFile = options.writeFile ?? writeStateFile
  }

  /**
   * The registration saved in `stateDir` when its certificate is usable (it matches the key and has
   * not expired), read without asking the API: what a restart dials the ingress with until
   * `ensure()` has confirmed it. Undefined when there is none.
   */
  static async readSaved(options: Pick<RegistrationOptions, 'stateDir' | 'logger' | 'now'>): Promise<RegistrationInfo | undefined> {
    const reader = new Registration({ ...options, api: OFFLINE_API })
    const loaded = await reader.readState()
    const cert = reader.usableLocalCert(loaded)
    if (!loaded.stored || !cert) return undefined
    const { operatorId, machineId, ingressEndpoint } = loaded.stored
    return reader.toInfo({ operatorId, machineId, ...(ingressEndpoint ? { ingressEndpoint } : {}), certPem: loaded.certPem!, keyPem: loaded.keyPem!, cert })
  }

  /** The loaded registration, or undefined before `ensure()`. */
  get info(): RegistrationInfo | undefined {
    return this.current && this.toInfo(this.current)
  }

  /** Registers (or reuses the registration) and loads a valid client certificate. Safe to call again. */
  ensure(): Promise<RegistrationInfo> {
    return this.exclusive(async () => {
      this.current = this.settle(await this.load())
      try {
        await this.renewLocked(false)
      } catch (e) {
        // a certificate that is still valid keeps working; renewIfNeeded() tries again later
        if (this.current.cert.remainingMs(this.now()) <= 0) throw e
        this.logger.warn({ operatorId: this.current.operatorId, err: e }, 'renewing the client certificate failed; using the current one')
      }
      this.sayIfNotYetValid(this.current.cert)
      return this.toInfo(this.current)
    })
  }

  /**
   * Re-keys when less than `renewBeforeMs` (30 days) remain, as ngrok's operator does; a certificate
   * whose whole lifetime is under 1.5 × that, once a third of its lifetime is used (less than two thirds
   * remain), so a short-lived certificate is used before it is renewed, not renewed on every call.
   * Also tries again, when due, to bring ngrok's copy of the registration in line. Resolves true when the certificate
   * changed (renewed, or re-issued with an update).
   */
  renewIfNeeded(): Promise<boolean> {
    return this.exclusive(async () => {
      const before = this.current
      if (before && this.updateDue && isDue(this.updateDue, this.now())) {
        try {
          this.current = this.settle(await this.load())
        } catch (e) {
          this.postponeUpdate(e)
          throw e
        }
      }
      const renewed = await this.renewLocked(false)
      return renewed || (before !== undefined && this.current!.certPem !== before.certPem)
    })
  }

  /** Re-keys now, whatever the remaining validity (e.g. after the ingress rejected the certificate). */
  renewNow(): Promise<void> {
    return this.exclusive(async () => {
      await this.renewLocked(true)
    })
  }

  /**
   * Writes the loaded registration again (machine-id, client key and certificate, operator.json) after its files were
   * removed under the daemon (its state dir was): a restart then reuses this operator instead of registering another.
   * Resolves false before `ensure()`.
   */
  saveAgain(): Promise<boolean> {
    return this.exclusive(async () => {
      if (!this.current) return false
      if (!this.machineIdOption) await this.writeState('machineId', this.current.machineId + '\n', 0o644)
      await this.save(this.current)
      return true
    })
  }

  /** The current certificate and key. Throws before `ensure()` resolved. */
  credentials(): ClientCredentials {
    if (!this.current) {
      throw new NgrokdError('NGROKD_ERR_CERT', 'registration: no client certificate loaded', { hint: 'call ensure() before connecting' })
    }
    return { certPem: this.current.certPem, keyPem: this.current.keyPem }
  }

  /**
   * Deletes the registration at ngrok and removes the state files (for `uninstall`). Without local
   * state, deletes every registration carrying this machine's id. Resolves the ids it deleted.
   */
  deregister(): Promise<string[]> {
    return this.exclusive(async () => {
      const ids = new Set<string>()
      const loaded = this.current ? undefined : await this.readState()
      const operatorId = this.current?.operatorId ?? loaded?.stored?.operatorId
      if (operatorId) {
        ids.add(operatorId)
      } else {
        const machineId = this.machineIdOption ?? (await this.readMachineIdFile())
        if (machineId) for (const op of await this.api.listOperators()) if (machineIdOf(op) === machineId) ids.add(op.id)
      }
      const deleted: string[] = []
      for (const id of ids) {
        if (await this.api.deleteOperator(id)) deleted.push(id)
        this.logger.info({ operatorId: id }, 'deregistered from ngrok')
      }
      for (const file of Object.values(REGISTRATION_FILES)) {
        const path = join(this.stateDir, file)
        await rm(path, { force: true }).catch((e: unknown) => {
          throw stateError('remove', path, this.stateDir, e)
        })
      }
      this.current = undefined
      return deleted
    })
  }

  // ---- internals -------------------------------------------------------------------------

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn)
    this.queue = run.catch(() => undefined)
    return run
  }

  private toInfo(c: Current): RegistrationInfo {
    return { operatorId: c.operatorId, ...(c.ingressEndpoint ? { ingressEndpoint: c.ingressEndpoint } : {}), certPem: c.certPem, keyPem: c.keyPem, notAfter: c.cert.notAfter }
  }

  private path(file: keyof typeof REGISTRATION_FILES): string {
    return join(this.stateDir, REGISTRATION_FILES[file])
  }

  /** A change to the registration that ngrok refused or did not answer, for status; undefined once it took it. */
  get updatePending(): RegistrationUpdatePending | undefined {
    const due = this.updateDue
    if (!due?.refused) return undefined
    const { changed, since, error } = due.refused
    return { changed, since: new Date(since).toISOString(), error, retryAt: new Date(due.at).toISOString() }
  }

  /** `outcome`'s registration; when it is out of date, a comparison with ngrok's is due again later ({@link postponeUpdate}). */
  private settle(outcome: LoadOutcome): Current {
    if (outcome.outOfDate === undefined) this.updateDue = undefined
    else this.postponeUpdate(outcome.outOfDate, outcome.changed)
    return outcome.current
  }

  /**
   * The next comparison with ngrok's copy after a failure. `changed`: what ngrok refused to update, or did not answer an
   * update of: a minute, doubled at each such failure, at most an hour. Undefined when ngrok could not be asked (the API
   * down): a minute, so that the comparison follows soon after the API answers again.
   */
  private postponeUpdate(error: unknown, changed?: string[]): void {
    const failures = changed ? (this.updateDue?.failures ?? 0) + 1 : 1
    const waitMs = retryWaitMs(failures)
    const said = formatError(error).split('\n')[0]!
    const now = this.now() // one reading: the first refusal's `since` and its `at` are a wait apart exactly
    const refused = changed ? { changed, since: this.updateDue?.refused?.since ?? now, error: said } : this.updateDue?.refused
    this.updateDue = { at: now + waitMs, failures, ...(refused ? { refused } : {}) }
    this.logger.debug({ err: error, retryInMs: waitMs }, `registration: compared with ngrok's again in ${waitMs / 60_000} min`)
  }

  private async load(): Promise<LoadOutcome> {
    try {
      await mkdir(this.stateDir, { recursive: true, mode: 0o700 })
    } catch (e) {
      throw stateError('create', this.stateDir, this.stateDir, e)
    }
    const machineId = await this.machineId()
    const loaded = await this.readState()
    if (loaded.stored) {
      const { operatorId } = loaded.stored
      let op: Operator | undefined
      try {
        op = await this.api.getOperator(operatorId)
      } catch (e) {
        if (!isNgrokApiError(e, 404)) {
          // the API is down or failing: a saved, still valid registration keeps the data path working
          const cert = this.usableLocalCert(loaded)
          if (!cert) throw e
          this.logger.warn({ operatorId, err: e }, 'ngrok API unavailable; using the saved registration until it answers again')
          const ingressEndpoint = loaded.stored.ingressEndpoint || undefined
          return { current: { operatorId, machineId, ...(ingressEndpoint ? { ingressEndpoint } : {}), certPem: loaded.certPem!, keyPem: loaded.keyPem!, cert }, outOfDate: e }
        }
        this.logger.warn({ operatorId }, `operator ${operatorId} no longer exists at ngrok (deleted?): registering anew`)
      }
      if (op) return this.adopt(op, loaded, machineId)
    }
    return { current: await this.registerFresh(machineId) }
  }

  /**
   * The API still has our registration: keep the local pair when it is usable, else re-key. When the
   * registration differs from the desired state (selectors, description, region, deployment), the
   * whole state is PATCHed with a CSR for the current key, as ngrok's operator does on every update. An update ngrok
   * refuses or does not answer leaves the registration as ngrok has it, which keeps working (as ngrok's operator goes
   * on polling when its update fails): it is out of date, and tried again later.
   */
  private async adopt(op: Operator, loaded: Loaded, machineId: string): Promise<LoadOutcome> {
    const cert = this.usableLocalCert(loaded)
    if (!cert || !op.binding || !op.enabled_features?.includes('bindings')) {
      this.logger.warn({ operatorId: op.id }, 'local client certificate missing or unusable; requesting a new one')
      return { current: await this.rekey(op, machineId) }
    }
    const drift = this.driftFrom(op, machineId)
    // a certificate works only at the ingress that issued it (ngrok-operator internal/mux/header.go): when ngrok names
    // another, a certificate is asked for with the update, as ngrok's operator asks on every start
    const savedIngress = loaded.stored?.ingressEndpoint || undefined
    if (savedIngress !== this.ingressEndpointOf(op)) drift.push('ingress endpoint')
    if (drift.length > 0) {
      let updated: Operator
      try {
        updated = await this.api.updateOperator(op.id, this.desiredState(machineId, (await csrCode()).makeCsr(loaded.keyPem!)))
      } catch (e) {
        // an operator gone at ngrok registers anew (load's caller); a stop is no refusal
        if (isNgrokApiError(e, 404) || isNgrokdError(e, 'NGROKD_ERR_ABORTED')) throw e
        this.logger.warn(
          { operatorId: op.id, changed: drift, err: e },
          `updating the registration at ngrok failed (${drift.join(', ')} changed): ${formatError(e)}; serving with the registration as ngrok has it, and trying again later`,
        )
        return { current: await this.reuse(op, loaded, machineId, cert), outOfDate: e, changed: drift }
      }
      this.logger.info({ operatorId: op.id, changed: drift }, `registration updated at ngrok (${drift.join(', ')})`)
      return { current: await this.persist(updated, machineId, loaded.keyPem!) }
    }
    return { current: await this.reuse(op, loaded, machineId, cert) }
  }

  /**
   * The saved pair with the ingress it was saved with, which issued its certificate (when ngrok names another, the
   * update that asks for a certificate there failed: it is tried again later); operator.json written again when the
   * machine id changed.
   */
  private async reuse(op: Operator, loaded: Loaded, machineId: string, cert: CertificateInfo): Promise<Current> {
    const ingressEndpoint = loaded.stored?.ingressEndpoint || undefined
    const current: Current = { operatorId: op.id, machineId, ...(ingressEndpoint ? { ingressEndpoint } : {}), certPem: loaded.certPem!, keyPem: loaded.keyPem!, cert }
    if (loaded.stored?.machineId !== machineId) {
      await this.writeState('operator', JSON.stringify(this.storedOf(current), null, 2) + '\n', 0o644)
    }
    this.logger.info({ operatorId: op.id, ingressEndpoint, notAfter: cert.notAfter.toISOString() }, 'reusing ngrok registration')
    return current
  }

  /**
   * `binding.ingress_endpoint` of a reply as `host:port`; undefined when the API named none, or one ngrokd cannot read
   * (said at error once per value). Such a value costs no registration: connections go to `ingress.endpoint` or the
   * documented default, as when the API names none (ngrok's operator keeps its registration too, and fails to dial).
   */
  private ingressEndpointOf(op: Operator): string | undefined {
    const value = op.binding?.ingress_endpoint?.trim()
    if (!value) return undefined
    try {
      return normalizeIngressEndpoint(value)
    } catch (e) {
      if (this.saidUnreadableIngress !== value) {
        this.saidUnreadableIngress = value
        this.logger.error(
          { operatorId: op.id, err: e },
          `${(e as Error).message}: keeping the registration; connections go to ingress.endpoint when it is set, else to ${DEFAULT_INGRESS_ENDPOINT}`,
        )
      }
      return undefined
    }
  }

  private usableLocalCert(loaded: Loaded): CertificateInfo | undefined {
    if (!loaded.keyPem || !loaded.certPem) return undefined
    try {
      const cert = parseCertificate(loaded.certPem)
      if (!cert.matchesKey(loaded.keyPem)) return undefined
      if (cert.remainingMs(this.now()) <= 0) return undefined
      return cert
    } catch {
      return undefined
    }
  }

  /** No usable saved registration: adopt an earlier one of this machine, or create one. */
  private async registerFresh(machineId: string): Promise<Current> {
    // the new pair's room is taken before ngrok is asked anything: a state dir that cannot take it fails here, not after a create
    const pair = await this.stageNewPair()
    const mine = (await this.droppingNextPairOnFailure(() => this.api.listOperators()))
      .filter((op) => machineIdOf(op) === machineId)
      .sort((a, b) => (b.created_at ?? '').localeCompare(a.created_at ?? ''))
    if (mine.length > 0) {
      const [newest, ...others] = mine
      if (others.length > 0) {
        this.logger.warn({ operatorId: newest!.id, others: others.map((o) => o.id) }, 'several registrations carry this machine id; reusing the newest')
      }
      this.logger.info({ operatorId: newest!.id }, 'found an earlier registration of this machine; re-keying it')
      return this.rekey(newest!, machineId, pair)
    }

    const op = await this.droppingNextPairOnFailure(() => this.api.createOperator(this.desiredState(machineId, pair.csrPem)))
    this.logger.info({ operatorId: op.id }, 'registered with ngrok')
    try {
      return await this.persist(op, machineId, pair.keyPem, { staged: true })
    } catch (e) {
      // a registration we cannot use must not stay behind: delete it, then report the first failure
      try {
        await this.api.deleteOperator(op.id)
        this.logger.warn({ operatorId: op.id }, 'saving the new registration failed; deleted it at ngrok')
      } catch (deleteError) {
        this.logger.error({ operatorId: op.id, err: deleteError }, 'saving the new registration failed and deleting it failed too; delete it in the ngrok dashboard')
      }
      throw e
    }
  }

  /** New key + CSR PATCHed onto `op` with the whole desired state, then saved. `pair`: one {@link stageNewPair} saved. */
  private async rekey(op: Pick<Operator, 'id'>, machineId: string, pair?: KeyAndCsr): Promise<Current> {
    const { keyPem, csrPem } = pair ?? (await this.stageNewPair())
    const updated = await this.droppingNextPairOnFailure(() => this.api.updateOperator(op.id, this.desiredState(machineId, csrPem)))
    return this.persist(updated, machineId, keyPem, { staged: true })
  }

  /**
   * A new key and its CSR, saved before the API is asked for its certificate: the key (0600, fsync'd) as
   * client.key.next, and the room of its certificate as client.crt.next ({@link CERT_ROOM}, which {@link save} replaces).
   * A state dir that cannot take them (full, read-only) is a local error, and ngrok is not asked for a registration
   * this machine could not keep. A stop before the certificate comes leaves a key without a certificate that parses,
   * which finishPairWrite drops: the old pair stands.
   */
  private async stageNewPair(): Promise<KeyAndCsr> {
    const pair = (await csrCode()).generateKeyAndCsr()
    await this.writeState('nextKey', pair.keyPem, 0o600)
    await this.droppingNextPairOnFailure(() => this.writeState('nextCert', CERT_ROOM, 0o644))
    return pair
  }

  /** `step`'s result; when it fails, the .next files are removed: no certificate came for the staged key, the old pair stands. */
  private async droppingNextPairOnFailure<T>(step: () => Promise<T>): Promise<T> {
    try {
      return await step()
    } catch (e) {
      await this.dropNextPair()
      throw e
    }
  }

  /** Removes client.key.next and client.crt.next, before a rename made them the pair's: the old pair stands. */
  private async dropNextPair(): Promise<void> {
    for (const file of ['nextKey', 'nextCert'] as const) await rm(this.path(file), { force: true }).catch(() => {})
  }

  /**
   * The whole desired state, as ngrok's operator sends it on create and on every PATCH: description,
   * metadata, enabled_features, region, deployment, and both binding fields together (PROTOCOL.md §2).
   * How the API merges half a `binding` is undocumented, so it is never sent.
   */
  private desiredState(machineId: string, csrPem: string): DesiredState {
    return {
      description: this.description,
      metadata: this.metadata(machineId),
      enabled_features: ['bindings'],
      region: this.region,
      deployment: { name: this.deploymentName, version: CORE_VERSION },
      binding: { endpoint_selectors: this.selectors, csr: csrPem },
    }
  }

  /** The fields of `op` that differ from the desired state (the CSR aside). */
  private driftFrom(op: Operator, machineId: string): string[] {
    const drift: string[] = []
    if (!sameList(op.binding?.endpoint_selectors, this.selectors)) drift.push('endpoint selectors')
    if (op.description !== this.description) drift.push('description')
    if (machineIdOf(op) !== machineId || op.metadata !== this.metadata(machineId)) drift.push('metadata')
    if (!sameList(op.enabled_features, ['bindings'])) drift.push('enabled features')
    if (op.region !== undefined && op.region !== this.region) drift.push('region')
    if (op.deployment?.name !== this.deploymentName || op.deployment?.version !== CORE_VERSION) drift.push('deployment')
    return drift
  }

  private async renewLocked(force: boolean): Promise<boolean> {
    const current = this.current
    if (!current) {
      throw new NgrokdError('NGROKD_ERR_CERT', 'registration: nothing to renew', { hint: 'call ensure() first' })
    }
    if (!force && !this.needsRenewal(current)) return false
    if (!force && this.renewalDue && !isDue(this.renewalDue, this.now())) return false // failed lately: not on every poll
    if (!force && current.receivedAt !== undefined && this.needsRenewal(current, current.receivedAt)) {
      // due the moment it came: another asked for at once would come due too (this machine's clock is ahead of ngrok's)
      this.sayDueOnArrival(current)
      if (this.now() - current.receivedAt < DUE_ON_ARRIVAL_RETRY_MS) return false
    }
    const remainingDays = Math.floor(current.cert.remainingMs(this.now()) / DAY_MS)
    this.logger.info({ operatorId: current.operatorId, remainingDays }, 'renewing the client certificate')
    let next: Current
    try {
      try {
        next = await this.rekey({ id: current.operatorId }, current.machineId)
      } catch (e) {
        if (!isNgrokApiError(e, 404)) throw e
        this.logger.warn({ operatorId: current.operatorId }, 'registration vanished at ngrok during renewal; registering anew')
        next = await this.registerFresh(current.machineId)
      }
    } catch (e) {
      const failures = (this.renewalDue?.failures ?? 0) + 1
      const waitMs = retryWaitMs(failures)
      this.renewalDue = { at: this.now() + waitMs, failures }
      this.logger.debug({ err: e, retryInMs: waitMs }, `renewal: asked again in ${waitMs / 60_000} min`)
      throw e
    }
    this.renewalDue = undefined
    this.current = next // swap only after the new pair is saved
    this.logger.info(
      { operatorId: next.operatorId, fingerprint256: next.cert.fingerprint256, notAfter: next.cert.notAfter.toISOString() },
      'client certificate renewed',
    )
    this.sayIfNotYetValid(next.cert)
    return true
  }

  private sayIfNotYetValid(cert: CertificateInfo): void {
    const error = notYetValidError(cert, this.now())
    if (error) this.logger.error({ err: error }, error.message)
  }

  /**
   * Due when less than `renewBeforeMs` remains, or (a short certificate) two thirds of its lifetime. The lifetime
   * counts from `notBefore`, or from when it was received if that is later, by at most {@link MAX_BACKDATE_MS}: CAs
   * backdate `notBefore` for clock skew (a minute or more), which would make a certificate of a few minutes due the
   * moment it is issued; a certificate issued long before it came (a year's with 25 days left) is judged by its whole
   * year, as it is after a restart, which no longer knows when it came.
   */
  private needsRenewal({ cert, receivedAt }: Current, at: number = this.now()): boolean {
    const notBefore = cert.notBefore.getTime()
    const lifetime = cert.notAfter.getTime() - Math.max(notBefore, Math.min(receivedAt ?? -Infinity, notBefore + MAX_BACKDATE_MS))
    const threshold = Math.min(this.renewBeforeMs, (lifetime * 2) / 3)
    return cert.remainingMs(at) < threshold
  }

  /** Says once per certificate, at error, that `current`'s came already due for renewal (or expired), and why. */
  private sayDueOnArrival({ operatorId, cert, receivedAt }: Current): void {
    if (this.saidDueOnArrival === cert.fingerprint256) return
    this.saidDueOnArrival = cert.fingerprint256
    const clock = new Date(receivedAt ?? this.now()).toISOString()
    const days = Math.floor(cert.remainingMs(receivedAt ?? this.now()) / DAY_MS)
    const state = days < 0 ? 'had expired' : `was due for renewal (${days} days left)`
    const error = new NgrokdError(
      'NGROKD_ERR_CERT',
      `the client certificate ngrok issued for ${operatorId} (valid ${cert.notBefore.toISOString()} to ${cert.notAfter.toISOString()}) ${state} by this machine's clock (${clock}) when it came: the clock is ahead of ngrok's; asking for another in ${DUE_ON_ARRIVAL_RETRY_MS / 60_000} min, not on every poll`,
      { hint: `set the clock right (timedatectl set-ntp true, or your NTP service)${days < 0 ? '; until then the ingress refuses every connection' : ''}` },
    )
    this.logger.error({ err: error }, error.message)
  }

  /**
   * Checks the API's reply against our key, then writes key (0600), certificate, operator.json. `staged`: the key and
   * the room of its certificate are saved already ({@link stageNewPair}), and removed when the reply is refused.
   */
  private async persist(op: Operator, machineId: string, keyPem: string, { staged = false }: { staged?: boolean } = {}): Promise<Current> {
    const current = staged ? await this.droppingNextPairOnFailure(async () => this.checkedReply(op, machineId, keyPem)) : this.checkedReply(op, machineId, keyPem)
    await this.save(current, { staged })
    this.logger.debug({ operatorId: op.id, fingerprint256: current.cert.fingerprint256 }, 'registration saved')
    return current
  }

  /** The registration of the API's reply `op`, when its certificate is for `keyPem`. */
  private checkedReply(op: Operator, machineId: string, keyPem: string): Current {
    const certPem = op.binding?.cert?.cert
    if (!certPem) {
      throw new NgrokdError('NGROKD_ERR_API', `ngrok api: operator ${op.id} came back without binding.cert`, {
        hint: 'the account may not be enabled for kubernetes bindings',
      })
    }
    const cert = parseCertificate(certPem)
    if (!cert.matchesKey(keyPem)) {
      throw new NgrokdError('NGROKD_ERR_CERT', `registration: the certificate ngrok returned for ${op.id} is not for our key`)
    }
    const ingressEndpoint = this.ingressEndpointOf(op)
    return {
      operatorId: op.id,
      machineId,
      ...(ingressEndpoint ? { ingressEndpoint } : {}),
      certPem,
      keyPem,
      cert,
      receivedAt: this.now(),
    }
  }

  /** Writes the key (0600), the certificate and operator.json of `c`; with `staged`, into what {@link stageNewPair} saved. */
  private async save(c: Current, { staged = false }: { staged?: boolean } = {}): Promise<void> {
    // The new pair is written whole under its .next names, then each is renamed over the old one: a crash at any
    // point leaves the old pair, or a new one readState() completes. operator.json last, which load() checks.
    // Until the renames begin, a failure removes the .next files: the old pair stands, and a new key without its
    // certificate is no pair (finishPairWrite would drop it at the next start). Once they begin, the .next files are
    // what finishPairWrite completes: kept.
    await this.droppingNextPairOnFailure(async () => {
      if (staged) await this.removeState('nextCert') // the room kept for the certificate, given back for its write
      else await this.writeState('nextKey', c.keyPem, 0o600)
      await this.writeState('nextCert', c.certPem, 0o644)
    })
    await this.renameState('nextKey', 'key')
    await this.renameState('nextCert', 'cert')
    await this.writeState('operator', JSON.stringify(this.storedOf(c), null, 2) + '\n', 0o644)
  }

  private storedOf(c: Current): StoredOperator {
    return {
      version: 1,
      operatorId: c.operatorId,
      machineId: c.machineId,
      ingressEndpoint: c.ingressEndpoint ?? '',
      notBefore: c.cert.notBefore.toISOString(),
      notAfter: c.cert.notAfter.toISOString(),
      fingerprint256: c.cert.fingerprint256,
      savedAt: new Date(this.now()).toISOString(),
    }
  }

  private metadata(machineId: string): string {
    return JSON.stringify({ [MACHINE_ID_METADATA_KEY]: machineId, hostname: this.hostname })
  }

  private async writeState(file: keyof typeof REGISTRATION_FILES, data: string, mode: number): Promise<void> {
    const path = this.path(file)
    try {
      await this.writeFile(path, data, { mode })
    } catch (e) {
      throw isNgrokdError(e) ? e : stateError('write', path, this.stateDir, e)
    }
  }

  private async removeState(file: keyof typeof REGISTRATION_FILES): Promise<void> {
    await rm(this.path(file), { force: true }).catch((e: unknown) => Promise.reject(stateError('remove', this.path(file), this.stateDir, e)))
  }

  private async renameState(from: keyof typeof REGISTRATION_FILES, to: keyof typeof REGISTRATION_FILES): Promise<void> {
    try {
      await rename(this.path(from), this.path(to))
    } catch (e) {
      throw stateError('write', this.path(to), this.stateDir, e)
    }
  }

  /**
   * Completes a pair write that a crash cut short ({@link persist}): a new certificate saved whole, with its key
   * (saved beside it, or already renamed in place), is put in place; what is left of a pair that was not
   * whole is removed, and the old pair stays.
   */
  private async finishPairWrite(): Promise<void> {
    const nextCert = await this.readOptional('nextCert')
    const nextKey = await this.readOptional('nextKey')
    if (nextCert === undefined && nextKey === undefined) return
    const key = nextKey ?? (await this.readOptional('key'))
    let whole = false
    try {
      whole = nextCert !== undefined && key !== undefined && parseCertificate(nextCert).matchesKey(key)
    } catch {
      whole = false // a certificate that does not parse was cut off
    }
    if (whole) {
      if (nextKey !== undefined) await this.renameState('nextKey', 'key')
      await this.renameState('nextCert', 'cert')
      this.logger.warn({ stateDir: this.stateDir }, 'finished saving the client key and certificate that a stop cut short')
      return
    }
    for (const file of ['nextKey', 'nextCert'] as const) await this.removeState(file)
  }

  /**
   * The text of one registration file, or undefined when there is none. With `tightenMode` (the client key), a file
   * others may read is narrowed to 0600, and said so. A link or anything but a file is refused: ngrokd writes
   * these files itself, and a change of mode would reach whatever a link leads to.
   */
  private async readOptional(file: keyof typeof REGISTRATION_FILES, { tightenMode = false }: { tightenMode?: boolean } = {}): Promise<string | undefined> {
    const path = this.path(file)
    let handle
    try {
      // Windows has neither flag (Node's fs.constants): a link there is refused by the lstat below
      handle = await open(path, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0))
      if (process.platform === 'win32' && (await lstat(path)).isSymbolicLink()) {
        await handle.close()
        throw Object.assign(new Error(`${path} is a symbolic link`), { code: 'ELOOP' })
      }
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      if (code === 'ENOENT') return undefined
      if (code === 'ELOOP') throw notARegistrationFile(path, 'a symbolic link', e)
      throw stateError('read', path, this.stateDir, e)
    }
    try {
      const st = await handle.stat()
      if (!st.isFile()) throw notARegistrationFile(path, notAFileKind(st))
      if (tightenMode && (st.mode & 0o077) !== 0) {
        this.logger.warn({ path, mode: (st.mode & 0o777).toString(8) }, 'client key was readable by others; setting mode 0600')
        await handle.chmod(0o600)
      }
      return await handle.readFile('utf8')
    } catch (e) {
      throw isNgrokdError(e) ? e : stateError('read', path, this.stateDir, e)
    } finally {
      await handle.close()
    }
  }

  private async readState(): Promise<Loaded> {
    const loaded: Loaded = {}
    const text = await this.readOptional('operator')
    if (text !== undefined) {
      try {
        const s = JSON.parse(text) as Partial<StoredOperator>
        if (typeof s.operatorId !== 'string' || !s.operatorId) throw new Error('no operatorId')
        loaded.stored = s as StoredOperator
      } catch {
        // read at the start (the saved registration) and again to register: said once per file
        if (!saidUnreadable.has(this.path('operator'))) this.logger.warn({ path: this.path('operator') }, 'operator.json is unreadable; looking for the registration by machine id')
        saidUnreadable.add(this.path('operator'))
      }
    }
    await this.finishPairWrite()
    loaded.keyPem = await this.readOptional('key', { tightenMode: true })
    loaded.certPem = await this.readOptional('cert')
    return loaded
  }

  private async readMachineIdFile(): Promise<string | undefined> {
    const text = (await this.readOptional('machineId'))?.trim()
    return text && MACHINE_ID.test(text) ? text : undefined
  }

  /**
   * The stable machine id: the option, else the `machine-id` file, made once with a random UUID. A file that is
   * there but holds no id (damaged) is moved aside to `machine-id.corrupt-<time>` with a warning, as a corrupt
   * allocations.json is, and the id the saved registration (operator.json) carries replaces it: that id is what
   * finds this machine's registration at ngrok once operator.json is lost. A new id only when there is none.
   */
  private async machineId(): Promise<string> {
    if (this.machineIdOption) return this.machineIdOption
    const text = await this.readOptional('machineId')
    const existing = text?.trim()
    if (existing && MACHINE_ID.test(existing)) return existing
    // missing or corrupt: the id the saved registration carries is this machine's (it finds the registration at ngrok)
    const saved = await this.savedMachineId()
    const id = saved ?? randomUUID()
    if (text !== undefined) {
      const path = this.path('machineId')
      const aside = `${path}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`
      try {
        await rename(path, aside)
      } catch (cause) {
        throw new NgrokdError('NGROKD_ERR_STATE', `registration: ${path} is corrupt (not a machine id) and cannot be moved aside`, {
          cause,
          hint: saved ? `write the saved registration's id into it: echo ${saved} > ${path}` : `delete ${path}; ngrokd then makes a new machine id`,
        })
      }
      this.logger.warn(
        { path, movedTo: aside, machineId: id },
        saved
          ? `registration: ${path} is corrupt (not a machine id); moved it to ${aside} and took back the id the saved registration (${this.path('operator')}) carries, ${id}`
          : `registration: ${path} is corrupt (not a machine id); moved it to ${aside}, and no saved registration carries the old id: a new one is made, ${id} (a registration at ngrok that only the old id names is not found by this one)`,
      )
    }
    await this.writeState('machineId', id + '\n', 0o644)
    if (!saved) this.logger.info({ machineId: id }, 'created machine id')
    else if (text === undefined) this.logger.info({ machineId: id }, `registration: ${this.path('machineId')} was missing; wrote back the id the saved registration (${this.path('operator')}) carries, ${id}`)
    return id
  }

  /** The machine id the saved registration (operator.json) carries, when it is readable and holds one. */
  private async savedMachineId(): Promise<string | undefined> {
    try {
      const { machineId } = JSON.parse((await this.readOptional('operator')) ?? '{}') as Partial<StoredOperator>
      return typeof machineId === 'string' && MACHINE_ID.test(machineId) ? machineId : undefined
    } catch {
      return undefined // unreadable: readState says so, once
    }
  }
}
