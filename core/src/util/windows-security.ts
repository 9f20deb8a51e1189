/**
 * The Windows form of the trusted-path rule (trusted-path.ts), judged in pure JS on a file's security descriptor
 * as SDDL (owner and DACL, as ConvertSecurityDescriptorToStringSecurityDescriptorW writes them, sddl.h): an elevated
 * ngrokd uses only files that SYSTEM, Administrators or TrustedInstaller alone can change. The descriptor is read by
 * windows-security-ffi.ts.
 */

/** SDDL aliases and the string SIDs they stand for (sddl.h SDDL_LOCAL_SYSTEM, SDDL_BUILTIN_ADMINISTRATORS, …). */
const SID_ALIASES: Record<string, string> = {
  SY: 'S-1-5-18', // LocalSystem
  BA: 'S-1-5-32-544', // BUILTIN\Administrators
  BU: 'S-1-5-32-545', // BUILTIN\Users
  BG: 'S-1-5-32-546', // BUILTIN\Guests
  PU: 'S-1-5-32-547', // BUILTIN\Power Users
  WD: 'S-1-1-0', // Everyone
  AU: 'S-1-5-11', // Authenticated Users
  IU: 'S-1-5-4', // INTERACTIVE
  AN: 'S-1-5-7', // ANONYMOUS LOGON
  LS: 'S-1-5-19', // LocalService
  NS: 'S-1-5-20', // NetworkService
  OW: 'S-1-3-4', // OWNER RIGHTS
  CO: 'S-1-3-0', // CREATOR OWNER
  CG: 'S-1-3-1', // CREATOR GROUP
}
/** NT SERVICE\TrustedInstaller, owner of C:\ and of Windows' own folders. */
export const TRUSTED_INSTALLER_SID = 'S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464'
/** Who may own, and hold write rights on, what an elevated ngrokd trusts. */
const TRUSTED_SIDS = new Set([SID_ALIASES.SY!, SID_ALIASES.BA!, TRUSTED_INSTALLER_SID])

/** Names of the well-known SIDs, for messages. */
const SID_NAMES: Record<string, string> = {
  'S-1-5-18': 'SYSTEM', 'S-1-5-32-544': 'Administrators', 'S-1-5-32-545': 'Users', 'S-1-5-32-546': 'Guests',
  'S-1-5-32-547': 'Power Users', 'S-1-1-0': 'Everyone', 'S-1-5-11': 'Authenticated Users', 'S-1-5-4': 'INTERACTIVE',
  'S-1-5-7': 'ANONYMOUS LOGON', 'S-1-5-19': 'LocalService', 'S-1-5-20': 'NetworkService', 'S-1-3-4': 'OWNER RIGHTS',
  'S-1-3-0': 'CREATOR OWNER', 'S-1-3-1': 'CREATOR GROUP',
}
/** `Users (S-1-5-32-545)`, or the SID alone. */
const describeSid = (sid: string) => (SID_NAMES[sid] ? `${SID_NAMES[sid]} (${sid})` : sid)

/** The string SID of an SDDL trustee: an alias (`BA`) or a SID (`S-1-5-32-544`), upper-cased. */
function sidOf(trustee: string): string {
  const t = trustee.trim().toUpperCase()
  return SID_ALIASES[t] ?? t
}

// Access rights — winnt.h
const FILE_WRITE_DATA = 0x2 // FILE_ADD_FILE on a directory
const FILE_APPEND_DATA = 0x4 // FILE_ADD_SUBDIRECTORY on a directory
const FILE_DELETE_CHILD = 0x40
const DELETE = 0x10000
const WRITE_DAC = 0x40000
const WRITE_OWNER = 0x80000
const GENERIC_ALL = 0x10000000
const GENERIC_EXECUTE = 0x20000000
const GENERIC_WRITE = 0x40000000
const GENERIC_READ = 0x80000000
const FILE_ALL_ACCESS = 0x1f01ff // STANDARD_RIGHTS_REQUIRED | SYNCHRONIZE | 0x1FF
const FILE_GENERIC_READ = 0x120089
const FILE_GENERIC_WRITE = 0x120116
const FILE_GENERIC_EXECUTE = 0x1200a0

/** The two-letter rights of an SDDL ACE (sddl.h SDDL_*) as access masks (winnt.h, iads.h ADS_RIGHT_*, winreg.h KEY_*). */
const RIGHTS: Record<string, number> = {
  GA: GENERIC_ALL, GR: GENERIC_READ, GW: GENERIC_WRITE, GX: GENERIC_EXECUTE,
  RC: 0x20000, SD: DELETE, WD: WRITE_DAC, WO: WRITE_OWNER, // READ_CONTROL, DELETE, WRITE_DAC, WRITE_OWNER
  CC: 0x1, DC: 0x2, LC: 0x4, SW: 0x8, RP: 0x10, WP: 0x20, DT: 0x40, LO: 0x80, CR: 0x100, // ADS_RIGHT_*: the same bits as FILE_*
  FA: FILE_ALL_ACCESS, FR: FILE_GENERIC_READ, FW: FILE_GENERIC_WRITE, FX: FILE_GENERIC_EXECUTE,
  KA: 0xf003f, KR: 0x20019, KW: 0x20006, KX: 0x20019, // KEY_ALL_ACCESS, KEY_READ, KEY_WRITE, KEY_EXECUTE
}

/**
 * An ACE's access mask with generic rights mapped the way a file's are (the file object's GENERIC_MAPPING: GENERIC_WRITE
 * → FILE_GENERIC_WRITE, GENERIC_ALL → FILE_ALL_ACCESS). Undefined for a right this table does not know: refused.
 */
export function accessMask(rights: string): number | undefined {
  let mask = 0
  const text = rights.trim()
  if (/^0x[0-9a-f]+$/i.test(text) || /^\d+$/.test(text)) mask = Number(text)
  else if (/^([A-Z]{2})*$/.test(text)) {
    for (let i = 0; i < text.length; i += 2) {
      const bits = RIGHTS[text.slice(i, i + 2)]
      if (bits === undefined) return undefined
      mask = (mask | bits) >>> 0
    }
  } else return undefined
  if (mask & GENERIC_ALL) mask |= FILE_ALL_ACCESS
  if (mask & GENERIC_WRITE) mask |= FILE_GENERIC_WRITE
  if (mask & GENERIC_READ) mask |= FILE_GENERIC_READ
  if (mask & GENERIC_EXECUTE) mask |= FILE_GENERIC_EXECUTE
  return mask >>> 0
}

export interface Ace {
  /** `A` allow, `D` deny, `OA`/`XA`/`ZA` the object and callback forms of allow, … (sddl.h SDDL_ACCESS_ALLOWED, …). */
  type: string
  /** Two-letter flags: `OI`, `CI`, `NP`, `IO`, `ID`, … */
  flags: string[]
  rights: string
  /** The string SID (aliases resolved). */
  sid: string
}

export interface ParsedSddl {
  /** The owner's string SID; undefined when the descriptor has none. */
  owner?: string
  /** undefined: no DACL, or a NULL one (`D:NO_ACCESS_CONTROL`): everyone may do anything. */
  dacl?: Ace[]
}

/**
 * The owner and DACL of an SDDL string (`O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)`). ACE strings are cut at their
 * balanced parentheses, as a conditional ACE's expression holds `;` and `(`.
 * @throws RangeError for SDDL this parser does not read.
 */
export function parseSddl(sddl: string): ParsedSddl {
  const out: ParsedSddl = {}
  // a section starts at a letter and colon outside an ACE's parentheses
  const sections: Array<[string, string]> = []
  let depth = 0
  let start = -1
  let key = ''
  let quoted = false
  for (let i = 0; i < sddl.length; i++) {
    const c = sddl[i]!
    if (c === '"') quoted = !quoted
    if (quoted || c === '"') continue
    if (c === '(') depth++
    else if (c === ')') depth--
    else if (depth === 0 && /[OGDS]/.test(c) && sddl[i + 1] === ':') {
      if (start >= 0) sections.push([key, sddl.slice(start, i)])
      key = c
      start = i + 2
      i++
    }
  }
  if (start >= 0) sections.push([key, sddl.slice(start)])
  if (!sections.length || depth !== 0) throw new RangeError(`unreadable SDDL ${JSON.stringify(sddl)}`)
  for (const [k, body] of sections) {
    if (k === 'O') out.owner = sidOf(body)
    if (k !== 'D') continue
    const aceStart = body.indexOf('(')
    const control = aceStart < 0 ? body : body.slice(0, aceStart)
    if (/NO_ACCESS_CONTROL/.test(control)) continue // a NULL DACL
    const aces: Ace[] = []
    for (const text of topLevelGroups(aceStart < 0 ? '' : body.slice(aceStart))) {
      const fields = text.split(';')
      if (fields.length < 6) throw new RangeError(`unreadable ACE (${text}) in ${JSON.stringify(sddl)}`)
      aces.push({ type: fields[0]!.trim().toUpperCase(), flags: fields[1]!.match(/../g) ?? [], rights: fields[2]!, sid: sidOf(fields[5]!) })
    }
    out.dacl = aces
  }
  return out
}

/** The contents of each top-level `( … )` group of `text`; a conditional ACE's quoted strings are passed over. */
function topLevelGroups(text: string): string[] {
  const groups: string[] = []
  let depth = 0
  let start = 0
  let quoted = false
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '"') quoted = !quoted
    if (quoted || text[i] === '"') continue
    if (text[i] === '(') {
      if (depth++ === 0) start = i + 1
    } else if (text[i] === ')' && --depth === 0) groups.push(text.slice(start, i))
  }
  return groups
}

export interface WindowsJudgement {
  why: string
  fix: string
}

/**
 * Why a user other than SYSTEM, Administrators and TrustedInstaller could change the file or folder `path` whose
 * security descriptor is `sddl`, or undefined when none could:
 * - its owner must be one of the three (an owner may always rewrite the DACL);
 * - no allow ACE that applies to the object itself (inherit-only `IO` ones are skipped, except on the target, whose
 *   children inherit them) may give anyone else a right
 *   to change it: FILE_WRITE_DATA or FILE_APPEND_DATA (on the `target`: writing the file, adding to the folder),
 *   FILE_DELETE_CHILD, DELETE, WRITE_DAC, WRITE_OWNER, or generic rights that map to them. On a folder above the
 *   target, adding a file or folder (FILE_ADD_FILE, FILE_ADD_SUBDIRECTORY) cannot touch the existing child, and
 *   C:\ and C:\ProgramData grant it to users; deleting or re-ACLing can — except on a folder that `holdsCode`: a DLL
 *   added beside a program is loaded before System32's, and a `node_modules` added on a module's way up is searched
 *   before the installed one;
 * - a descriptor without a DACL, or with a NULL one, lets everyone do everything.
 * Deny ACEs are not counted in the file's favour: the rule stays the stricter one.
 */
export function untrustedWindowsBecause(path: string, sddl: string, isTarget: boolean, holdsCode = false): WindowsJudgement | undefined {
  const fixAcl = `icacls "${path}" /inheritance:r /grant:r *S-1-5-18:(OI)(CI)F *S-1-5-32-544:(OI)(CI)F`
  let parsed: ParsedSddl
  try {
    parsed = parseSddl(sddl)
  } catch {
    return { why: `has a security descriptor ngrokd cannot read (${sddl})`, fix: fixAcl }
  }
  const { owner, dacl } = parsed
  if (owner === undefined || !TRUSTED_SIDS.has(owner)) {
    return { why: `is owned by ${owner === undefined ? 'no one' : describeSid(owner)} (not SYSTEM, Administrators or TrustedInstaller)`, fix: `icacls "${path}" /setowner *S-1-5-32-544` }
  }
  if (dacl === undefined) return { why: 'has no DACL (everyone may change it)', fix: fixAcl }
  const harmful = DELETE | WRITE_DAC | WRITE_OWNER | FILE_DELETE_CHILD | (isTarget || holdsCode ? FILE_WRITE_DATA | FILE_APPEND_DATA : 0)
  for (const ace of dacl) {
    if (!/^(A|OA|XA|ZA)$/.test(ace.type)) continue // deny and audit ACEs grant nothing
    // inherit-only: not the object's own; but on the target folder what it passes on is what every file ngrokd makes in it
    // gets (ngrokd sets no DACL of its own on those), CREATOR OWNER's and OWNER RIGHTS' aside (the creator is ngrokd)
    const inherited = ace.flags.includes('OI') || ace.flags.includes('CI')
    if (ace.flags.includes('IO') && !(isTarget && inherited && ace.sid !== SID_ALIASES.CO && ace.sid !== SID_ALIASES.OW)) continue
    if (TRUSTED_SIDS.has(ace.sid)) continue
    const mask = accessMask(ace.rights)
    if (mask !== undefined && (mask & harmful) === 0) continue
    const right = mask === undefined ? `rights ${ace.rights} ngrokd does not know` : `write access (${ace.rights}, 0x${(mask & harmful).toString(16)})`
    return { why: `gives ${describeSid(ace.sid)} ${right}`, fix: fixAcl }
  }
  return undefined
}
