/**
 * The ngrokd block of a hosts file, parsed and rendered as pure text. The block is:
 *
 *   # BEGIN ngrokd managed block (do not edit)
 *   10.107.0.2<TAB>api.prod
 *   10.107.0.3<TAB>db.prod
 *   # END ngrokd managed block
 *
 * Rules:
 * - Every byte outside the block is kept as it is. Files are handled as bytes
 *   ({@link updateHostsBytes}): each byte is one character of a latin1 view, so text that is not
 *   UTF-8 survives unchanged. The block is ASCII and uses the file's line ending (that of its first
 *   line; LF for a file without one), so a CRLF file stays CRLF.
 * - A marker line is recognised by its prefix after trimming (`# BEGIN ngrokd managed block`,
 *   `# END ngrokd managed block`), so a hand-retyped remark in parentheses still matches; any other text after the
 *   END marker is a line appended to a file the block ended ({@link splitGluedEnd}), kept as the user's.
 * - A BEGIN pairs with the first END after it with no BEGIN in between. Unpaired markers are
 *   "stray": left in place as the user's lines (nothing is ever deleted on a guess) and reported
 *   by `parseHostsBlock` for `doctor`. When there are several complete blocks, the first is
 *   rewritten and the others removed.
 * - With no block, one is appended. A file without a final newline gets one before the block, and
 *   the block then ends without one: that missing newline records that ngrokd added the one before,
 *   so removing the block restores the file byte for byte.
 */
import type { NameRecord } from '../contracts/name-resolver.js'
import { NgrokdError } from '../errors/ngrokd-error.js'
import { validateHostname } from '../protocol/endpoints.js'
import { isIpv4 } from '../util/ipv4.js'

/** The default daemon's markers. */
export const HOSTS_BLOCK_BEGIN = markersOf().begin
export const HOSTS_BLOCK_END = markersOf().end

/** Whose block: the default daemon's, or a named instance's (`instance: work`), each with its own markers. */
export interface HostsBlockOptions {
  instance?: string
}

interface Markers {
  begin: string
  end: string
  /** A line is this block's marker when it starts with one of these (after trimming). */
  beginPrefix: string
  endPrefix: string
}

/**
 * The default block's markers, or `# BEGIN ngrokd instance work managed block (do not edit)` …
 * `# END ngrokd instance work managed block` for instance `work`: no instance's prefix is a prefix
 * of another's, so each daemon sees the others' blocks as lines of the user's, never edits them.
 */
function markersOf({ instance }: HostsBlockOptions = {}): Markers {
  const who = instance ? `ngrokd instance ${instance}` : 'ngrokd'
  const beginPrefix = `# BEGIN ${who} managed block`
  const endPrefix = `# END ${who} managed block`
  return { begin: `${beginPrefix} (do not edit)`, end: endPrefix, beginPrefix, endPrefix }
}

export interface HostsUpdate {
  text: string
  changed: boolean
  /** Our hostnames that the user's own lines (outside the block) also name, sorted. */
  userConflicts: string[]
}

export interface HostsBytesUpdate {
  data: Buffer
  changed: boolean
  /** Our hostnames that the user's own lines (outside the block) also name, sorted. */
  userConflicts: string[]
}

export interface HostsBlockInfo {
  /** Records of the complete block(s), in file order. */
  records: NameRecord[]
  /** Complete BEGIN…END pairs; 0 or 1 in a well-formed file. */
  blocks: number
  /** 1-based line numbers of unpaired markers. */
  strayMarkers: number[]
  /** 1-based line numbers of lines inside a block that are not `<ipv4> <hostname>`. */
  invalidLines: number[]
  /** Hostnames (lower-case) named by lines outside the block(s). */
  userHostnames: Set<string>
}

interface Line {
  text: string
  eol: '' | '\n' | '\r\n'
  /** Split off the END marker's line by {@link splitGluedEnd}: in the file it is part of the line before. */
  glued?: true
}

interface Parsed {
  lines: Line[]
  blocks: Array<{ begin: number; end: number }>
  strays: number[]
  eol: '\n' | '\r\n'
}

function splitLines(text: string): Line[] {
  const lines: Line[] = []
  let start = 0
  while (start < text.length) {
    const nl = text.indexOf('\n', start)
    if (nl === -1) {
      lines.push({ text: text.slice(start), eol: '' })
      break
    }
    const crlf = nl > start && text[nl - 1] === '\r'
    lines.push({ text: text.slice(start, crlf ? nl - 1 : nl), eol: crlf ? '\r\n' : '\n' })
    start = nl + 1
  }
  return lines
}

/** A UTF-8 byte order mark, as a decoded string or as the three bytes of a latin1 view. */
const BOM = /^(?:\uFEFF|\u00EF\u00BB\u00BF)/

function markerOf(line: string, markers: Markers): 'begin' | 'end' | undefined {
  const t = line.replace(BOM, '').trim()
  // the default prefix is also the start of no instance's: `# BEGIN ngrokd instance` differs at "instance"
  if (t.startsWith(markers.beginPrefix)) return 'begin'
  if (t.startsWith(markers.endPrefix)) return 'end'
  return undefined
}

/**
 * A block that ends the file ends without a newline; a program that then appends a line (`echo … >> /etc/hosts`)
 * glues it to the END marker: `# END ngrokd managed block192.168.1.5 nas.lan`. What follows the marker, unless it
 * is a remark in parentheses, is that line, the user's: it is split off, and the marker then counts as ending with
 * a newline (the one before the block now separates the user's lines, and stays when the block goes).
 */
function splitGluedEnd(lines: Line[], markers: Markers): Line[] {
  const eol = lines.find((l) => l.eol !== '')?.eol || '\n'
  const out: Line[] = []
  for (const line of lines) {
    const at = line.text.indexOf(markers.endPrefix)
    const rest = at === -1 ? '' : line.text.slice(at + markers.endPrefix.length)
    // a retyped marker may carry a remark after a space, `(…)` as BEGIN's does; anything else after it is a line of the user's
    if (at === -1 || rest.trim() === '' || /^\s*\(/.test(rest) || markerOf(line.text, markers) !== 'end') {
      out.push(line)
      continue
    }
    out.push({ text: line.text.slice(0, at + markers.endPrefix.length), eol }, { text: rest, eol: line.eol, glued: true })
  }
  return out
}

function parse(text: string, markers: Markers): Parsed {
  const lines = splitGluedEnd(splitLines(text), markers)
  const blocks: Parsed['blocks'] = []
  const strays: number[] = []
  let pending = -1
  lines.forEach((line, i) => {
    const m = markerOf(line.text, markers)
    if (m === 'begin') {
      if (pending !== -1) strays.push(pending)
      pending = i
    } else if (m === 'end') {
      if (pending === -1) strays.push(i)
      else blocks.push({ begin: pending, end: i })
      pending = -1
    }
  })
  if (pending !== -1) strays.push(pending)
  const eol = lines.find((l) => l.eol !== '')?.eol || '\n'
  return { lines, blocks, strays: strays.sort((a, b) => a - b), eol }
}

/**
 * `<address> <name> <name>…` of one hosts line, comments stripped; undefined for blank/comment lines.
 * Fields are split on ASCII white space only, as the C library does: in a latin1 view a byte of a
 * UTF-8 character (0x85, 0xA0) is not a separator.
 */
function fieldsOf(line: string): string[] | undefined {
  const hash = line.indexOf('#')
  const fields = (hash === -1 ? line : line.slice(0, hash)).split(/[ \t\v\f\r]+/).filter((f) => f !== '')
  return fields.length >= 2 ? fields : undefined
}

function insideBlock(blocks: Parsed['blocks']): (i: number) => boolean {
  return (i) => blocks.some((b) => i >= b.begin && i <= b.end)
}

/** Reads the block(s) of a hosts file (its bytes, or text) and what `doctor` needs to judge them. */
export function parseHostsBlock(content: string | Uint8Array, options: HostsBlockOptions = {}): HostsBlockInfo {
  const { lines, blocks, strays } = parse(typeof content === 'string' ? content : latin1(content), markersOf(options))
  // 1-based line numbers in the file: a glued line split off the END marker is on the marker's line
  const lineNumber: number[] = []
  lines.forEach((line, i) => lineNumber.push(i === 0 ? 1 : lineNumber[i - 1]! + (line.glued ? 0 : 1)))
  const records: NameRecord[] = []
  const invalidLines: number[] = []
  const userHostnames = new Set<string>()
  for (const b of blocks) {
    for (let i = b.begin + 1; i < b.end; i++) {
      const f = fieldsOf(lines[i]!.text)
      if (!f) {
        if (lines[i]!.text.trim() !== '') invalidLines.push(lineNumber[i]!)
        continue
      }
      const [address, ...names] = f
      if (!isIpv4(address!) || names.some((n) => validateHostname(n) !== undefined)) {
        invalidLines.push(lineNumber[i]!)
        continue
      }
      for (const hostname of names) records.push({ hostname, address: address! })
    }
  }
  const inBlock = insideBlock(blocks)
  lines.forEach((line, i) => {
    if (inBlock(i)) return
    for (const n of fieldsOf(line.text)?.slice(1) ?? []) userHostnames.add(n.toLowerCase())
  })
  return { records, blocks: blocks.length, strayMarkers: strays.map((i) => lineNumber[i]!), invalidLines, userHostnames }
}

/** Validated, de-duplicated and sorted by hostname; throws on anything unsafe to write. */
function checkRecords(records: readonly NameRecord[]): NameRecord[] {
  const byName = new Map<string, string>()
  for (const r of records) {
    const reason = validateHostname(r?.hostname)
    if (reason !== undefined) {
      throw new NgrokdError('NGROKD_ERR_HOSTNAME_INVALID', `hosts file: refusing hostname ${JSON.stringify(r?.hostname)}: ${reason}`, {
        hint: 'rename the endpoint in ngrok to name.namespace form, e.g. http://api.prod',
      })
    }
    if (typeof r.address !== 'string' || !isIpv4(r.address)) {
      throw new NgrokdError('NGROKD_ERR_HOSTS_FILE', `hosts file: refusing address ${JSON.stringify(r.address)} for ${r.hostname}: not ipv4`)
    }
    const seen = byName.get(r.hostname)
    if (seen !== undefined && seen !== r.address) {
      throw new NgrokdError('NGROKD_ERR_HOSTS_FILE', `hosts file: ${r.hostname} given two addresses (${seen} and ${r.address})`)
    }
    byName.set(r.hostname, r.address)
  }
  return [...byName.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([hostname, address]) => ({ hostname, address }))
}

/** `out.push(...from.slice(start, end))` without spreading: a hosts file may have 100,000s of lines. */
function pushAll(out: Line[], from: readonly Line[], start = 0, end = from.length): void {
  for (let i = start; i < end; i++) out.push(from[i]!)
}

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1')
}

/**
 * The bytes of a hosts file with the ngrokd block holding exactly `records` (or without a block when
 * `records` is empty); every other byte is kept. Pure: the caller reads and writes the file.
 *
 * ```ts
 * const { data, changed } = updateHostsBytes(await readFile('/etc/hosts'), [{ hostname: 'api.prod', address: '10.107.0.2' }])
 * ```
 */
export function updateHostsBytes(original: Uint8Array, records: readonly NameRecord[], options: HostsBlockOptions = {}): HostsBytesUpdate {
  const { text, changed, userConflicts } = updateHostsText(latin1(original), records, options)
  return { data: Buffer.from(text, 'latin1'), changed, userConflicts }
}

/**
 * {@link updateHostsBytes} on text: returns `original` with the ngrokd block holding exactly
 * `records`. Every character outside the block is kept, so a latin1 view of bytes round-trips.
 */
export function updateHostsText(original: string, records: readonly NameRecord[], options: HostsBlockOptions = {}): HostsUpdate {
  const sorted = checkRecords(records)
  const markers = markersOf(options)
  const { lines, blocks, eol } = parse(original, markers)

  const inBlock = insideBlock(blocks)
  const ours = new Set(sorted.map((r) => r.hostname))
  const conflicts = new Set<string>()
  lines.forEach((line, i) => {
    if (inBlock(i)) return
    for (const n of fieldsOf(line.text)?.slice(1) ?? []) if (ours.has(n.toLowerCase())) conflicts.add(n.toLowerCase())
  })

  const blockLines = (lastEol: Line['eol']): Line[] => [
    { text: markers.begin, eol },
    ...sorted.map((r): Line => ({ text: `${r.address}\t${r.hostname}`, eol })),
    { text: markers.end, eol: lastEol },
  ]

  const out: Line[] = []
  if (blocks.length === 0) {
    pushAll(out, lines)
    if (sorted.length > 0) {
      const last = out[out.length - 1]
      if (last && last.eol === '') {
        out[out.length - 1] = { ...last, eol }
        pushAll(out, blockLines(''))
      } else {
        pushAll(out, blockLines(eol))
      }
    }
  } else {
    let i = 0
    blocks.forEach((b, n) => {
      pushAll(out, lines, i, b.begin)
      const endEol = lines[b.end]!.eol
      if (n === 0 && sorted.length > 0) {
        pushAll(out, blockLines(endEol))
      } else if (endEol === '' && out.length > 0) {
        // This block ended the file without a newline: the newline before it was ours.
        out[out.length - 1] = { ...out[out.length - 1]!, eol: '' }
      }
      i = b.end + 1
    })
    pushAll(out, lines, i)
  }

  const text = out.map((l) => l.text + l.eol).join('')
  return { text, changed: text !== original, userConflicts: [...conflicts].sort() }
}
