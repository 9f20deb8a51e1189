/**
 * Optional NRPT (Name Resolution Policy Table) rules: one per endpoint suffix (`.prod`), sending that namespace's
 * queries to ngrokd's DNS server. A local rule is a registry key
 * `HKLM\SYSTEM\CurrentControlSet\Services\Dnscache\Parameters\DnsPolicyConfig\<rule GUID>` holding what
 * `Add-DnsClientNrptRule -Namespace .prod -NameServers <ip>` writes; removed on stop. Pure: the registry calls are
 * windows-nrpt-ffi.ts (koffi) or a fake, behind `NrptRegistry`.
 *
 * Facts that shape it: a port in a name server is dropped by Windows (the rule then black-holes its namespace), so
 * servers are bare IPs and the DNS server must listen on port 53; when domain Group Policy defines NRPT rules
 * (`HKLM\SOFTWARE\Policies\Microsoft\Windows NT\DNSClient\DnsPolicyConfig`), local rules are ignored.
 */
import { createHash } from 'node:crypto'
import { readFileSync, rmSync } from 'node:fs'
import { writeFileAtomicSync } from '../util/atomic-file.js'
import { ipFamily } from '../util/ip-family.js'
import { NgrokdError, PermissionError, SyscallError } from '../errors/ngrokd-error.js'

export const NRPT_LOCAL_ROOT = 'SYSTEM\\CurrentControlSet\\Services\\Dnscache\\Parameters\\DnsPolicyConfig'
export const NRPT_GROUP_POLICY_ROOT = 'SOFTWARE\\Policies\\Microsoft\\Windows NT\\DNSClient\\DnsPolicyConfig'

export const REG_SZ = 1 // winnt.h
export const REG_DWORD = 4 // winnt.h (REG_DWORD_LITTLE_ENDIAN)
export const REG_MULTI_SZ = 7 // winnt.h
export const ERROR_SUCCESS = 0 // winerror.h
export const ERROR_FILE_NOT_FOUND = 2 // winerror.h: RegDeleteTreeW / RegOpenKeyExW of an absent key
export const ERROR_ACCESS_DENIED = 5 // winerror.h

/** ConfigOptions bit: the rule names generic DNS servers (GenericDNSServers) — what Add-DnsClientNrptRule writes. */
export const NRPT_CONFIG_GENERIC_DNS_SERVERS = 0x8
export const NRPT_RULE_VERSION = 2
/** Marks a rule as ngrokd's (Add-DnsClientNrptRule writes Comment too); nothing else is ever removed. */
export const NRPT_COMMENT = 'ngrokd'
/**
 * The file in `state_dir` naming the namespaces whose rules ngrokd wrote (`{"namespaces": [".prod"]}`): rules outlive
 * a reboot, so the next start, or `ngrokd cleanup`, removes the ones a killed daemon left.
 */
export const NRPT_RECORD_FILE = 'nrpt-rules.json'

export interface RegistryValue {
  name: string
  type: typeof REG_SZ | typeof REG_DWORD | typeof REG_MULTI_SZ
  data: Buffer
}

/** REG_SZ: UTF-16LE with its terminating NUL (the size passed to RegSetValueExW includes it). */
export function encodeRegSz(value: string): Buffer {
  if (value.includes('\0')) throw new RangeError('a REG_SZ value cannot hold NUL')
  return Buffer.from(`${value}\0`, 'utf16le')
}

/** REG_MULTI_SZ: each string UTF-16LE with its NUL, then one more NUL (so an empty list is one NUL, two bytes). */
export function encodeRegMultiSz(values: readonly string[]): Buffer {
  for (const v of values) if (v === '' || v.includes('\0')) throw new RangeError('a REG_MULTI_SZ item cannot be empty or hold NUL')
  return Buffer.from(values.map((v) => `${v}\0`).join('') + '\0', 'utf16le')
}

export function encodeRegDword(value: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(value >>> 0)
  return b
}

export function decodeRegMultiSz(data: Buffer): string[] {
  const text = data.toString('utf16le')
  const end = text.indexOf('\0\0')
  return (end === -1 ? text : text.slice(0, end)).split('\0').filter((s) => s !== '')
}

/** `.prod` for `prod`, `.prod` or `*.prod`: the namespace form NRPT matches as a suffix. */
export function nrptNamespace(suffix: string): string {
  const bare = suffix.replace(/^\*?\./, '').toLowerCase()
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(bare)) {
    throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `nrpt: ${JSON.stringify(suffix)} is not a DNS suffix`, { hint: 'e.g. prod, for names like api.prod' })
  }
  return `.${bare}`
}

/** The rule's key name: a GUID derived from the namespace, so the same suffix always names the same key. */
export function nrptRuleKeyName(namespace: string): string {
  const h = createHash('sha256').update(`ngrokd nrpt\0${namespace}`).digest('hex')
  const variant = ((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16)
  return `{${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}}`.toUpperCase()
}

export interface NrptRule {
  /** `HKLM\` relative key path. */
  keyPath: string
  namespace: string
  values: RegistryValue[]
}

/** The key and values of one rule: Name, GenericDNSServers, ConfigOptions, Version, IPSECCARestriction, Comment. */
export function nrptRule({ suffix, servers }: { suffix: string; servers: readonly string[] }): NrptRule {
  const namespace = nrptNamespace(suffix)
  if (servers.length === 0) throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', 'nrpt: no DNS server address given', { hint: 'the address ngrokd’s DNS server listens on (port 53)' })
  for (const s of servers) {
    if (ipFamily(s) === 0) {
      throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `nrpt: DNS server ${JSON.stringify(s)} is not an IP address`, {
        hint: 'a bare IPv4 or IPv6 address: Windows drops a port and the rule then answers nothing',
      })
    }
  }
  return {
    keyPath: `${NRPT_LOCAL_ROOT}\\${nrptRuleKeyName(namespace)}`,
    namespace,
    values: [
      { name: 'Name', type: REG_MULTI_SZ, data: encodeRegMultiSz([namespace]) },
      { name: 'GenericDNSServers', type: REG_SZ, data: encodeRegSz(servers.join(';')) },
      { name: 'ConfigOptions', type: REG_DWORD, data: encodeRegDword(NRPT_CONFIG_GENERIC_DNS_SERVERS) },
      { name: 'Version', type: REG_DWORD, data: encodeRegDword(NRPT_RULE_VERSION) },
      { name: 'IPSECCARestriction', type: REG_SZ, data: encodeRegSz('') },
      { name: 'Comment', type: REG_SZ, data: encodeRegSz(NRPT_COMMENT) },
    ],
  }
}

/** The registry calls NRPT needs, under HKEY_LOCAL_MACHINE (64-bit view). Results are Win32 error codes. */
export interface NrptRegistry {
  /** RegCreateKeyExW + RegSetValueExW per value + RegCloseKey. */
  writeKey(keyPath: string, values: readonly RegistryValue[]): { status: number; call: string }
  /** RegDeleteTreeW(HKLM, keyPath) then RegDeleteKeyExW: ERROR_FILE_NOT_FOUND when there is no such key. */
  deleteKey(keyPath: string): number
  /** RegOpenKeyExW(KEY_READ): ERROR_SUCCESS when the key exists. */
  openKey(keyPath: string): number
  /** DnsFlushResolverCache, so cached answers from before the rule go. */
  flushDns(): boolean
}

/**
 * Adds and removes ngrokd's NRPT rules.
 *
 * ```ts
 * const nrpt = new WindowsNrpt(await loadNrptRegistry())
 * nrpt.apply({ suffixes: ['prod'], servers: ['10.107.0.1'] })   // on start
 * nrpt.remove(['prod'])                                         // on stop
 * ```
 */
export class WindowsNrpt {
  /** `record`: the path of the {@link NRPT_RECORD_FILE} kept beside the rules; none, none kept. */
  constructor(
    private readonly registry: NrptRegistry,
    private readonly record?: string,
  ) {}

  /** The namespaces (`.prod`) the record names: rules this or an earlier run wrote and did not remove. */
  recorded(): string[] {
    if (!this.record) return []
    try {
      const { namespaces } = JSON.parse(readFileSync(this.record, 'utf8')) as { namespaces?: unknown }
      return Array.isArray(namespaces) ? namespaces.filter((n): n is string => typeof n === 'string').flatMap((n) => namespaceOrNone(n)) : []
    } catch {
      return [] // none yet, or torn: its rules are written again and recorded at the next apply
    }
  }

  /** Writes one rule per suffix (idempotent: the same key is rewritten) and flushes the DNS cache. */
  apply({ suffixes, servers }: { suffixes: readonly string[]; servers: readonly string[] }): NrptRule[] {
    const rules = suffixes.map((suffix) => nrptRule({ suffix, servers }))
    // recorded before it is written: a crash in between leaves a name whose rule may be absent, never a rule unnamed
    this.saveRecord(new Set([...this.recorded(), ...rules.map((r) => r.namespace)]))
    for (const rule of rules) {
      const { status, call } = this.registry.writeKey(rule.keyPath, rule.values)
      if (status !== ERROR_SUCCESS) throw registryError(call, status, `HKLM\\${rule.keyPath}`)
    }
    this.registry.flushDns()
    return rules
  }

  /** Deletes the rules of these suffixes (and their names from the record); an absent rule is fine. */
  remove(suffixes: readonly string[]): void {
    const left = new Set(this.recorded())
    try {
      for (const suffix of suffixes) {
        const namespace = nrptNamespace(suffix)
        const keyPath = `${NRPT_LOCAL_ROOT}\\${nrptRuleKeyName(namespace)}`
        const status = this.registry.deleteKey(keyPath)
        if (status !== ERROR_SUCCESS && status !== ERROR_FILE_NOT_FOUND) throw registryError('RegDeleteTreeW', status, `HKLM\\${keyPath}`)
        left.delete(namespace)
      }
    } finally {
      this.saveRecord(left)
      this.registry.flushDns()
    }
  }

  /** The record names `namespaces`; none, no file. */
  private saveRecord(namespaces: ReadonlySet<string>): void {
    if (!this.record) return
    if (namespaces.size > 0) writeFileAtomicSync(this.record, Buffer.from(`${JSON.stringify({ namespaces: [...namespaces].sort() })}\n`), { mode: 0o600 })
    else rmSync(this.record, { force: true })
  }

  /** True when domain Group Policy defines NRPT rules: local rules are then ignored by Windows. */
  groupPolicyOverrides(): boolean {
    return this.registry.openKey(NRPT_GROUP_POLICY_ROOT) === ERROR_SUCCESS
  }
}

/** `[namespace]` when `text` is one (a record another version wrote may hold anything), else `[]`. */
function namespaceOrNone(text: string): string[] {
  try {
    return [nrptNamespace(text)]
  } catch {
    return []
  }
}

/** The registry calls NRPT needs, through koffi (Windows only; loaded when called). */
export async function loadWindowsNrptRegistry(systemRoot: string = process.env.SystemRoot ?? 'C:\\Windows'): Promise<NrptRegistry> {
  return (await import('./windows-nrpt-ffi.js')).loadNrptRegistry(systemRoot)
}

function registryError(call: string, status: number, key: string): NgrokdError {
  if (status === ERROR_ACCESS_DENIED) {
    return new PermissionError(`nrpt: ${call} ${key} refused: ERROR_ACCESS_DENIED (5)`, { hint: 'run ngrokd as Administrator (an elevated prompt, or the ngrokd Windows service)' })
  }
  return new SyscallError(call, status, status === ERROR_FILE_NOT_FOUND ? 'ERROR_FILE_NOT_FOUND' : `Win32 error ${status}`, { detail: key })
}
