import { readFileSync } from 'node:fs'

/** Inside the test namespace this is a private copy bind-mounted over the real path. */
export const HOSTS_FILE = '/etc/hosts'

/** Marker lines of ngrokd's managed block: `# BEGIN ngrokd …` / `# END ngrokd …`. */
const BEGIN = /^#\s*BEGIN ngrokd\b/
const END = /^#\s*END ngrokd\b/

export interface HostsSnapshot {
  text: string
  /** How many BEGIN / END marker lines the file has (exactly one of each when a block is present). */
  begins: number
  ends: number
  /** `<ip> <hostname>` lines inside managed blocks, in file order. */
  blockLines: Array<{ address: string; hostnames: string[]; raw: string }>
  /** hostname → every address a line anywhere in the file gives it (duplicates show as repeats). */
  addressesOf: Map<string, string[]>
}

export function readHosts(path = HOSTS_FILE): HostsSnapshot {
  return parseHosts(readFileSync(path, 'utf8'))
}

/** Parses a hosts file the way the resolver (glibc `files`) reads it: `#` starts a comment. */
export function parseHosts(text: string): HostsSnapshot {
  const snapshot: HostsSnapshot = { text, begins: 0, ends: 0, blockLines: [], addressesOf: new Map() }
  let inBlock = false
  for (const raw of text.split(/\r?\n/)) {
    const trimmed = raw.trim()
    if (BEGIN.test(trimmed)) {
      snapshot.begins++
      inBlock = true
      continue
    }
    if (END.test(trimmed)) {
      snapshot.ends++
      inBlock = false
      continue
    }
    const fields = trimmed.replace(/#.*/, '').trim().split(/\s+/).filter(Boolean)
    if (fields.length < 2) continue
    const [address, ...hostnames] = fields as [string, ...string[]]
    if (inBlock) snapshot.blockLines.push({ address, hostnames, raw })
    for (const h of hostnames) {
      const list = snapshot.addressesOf.get(h) ?? []
      list.push(address)
      snapshot.addressesOf.set(h, list)
    }
  }
  return snapshot
}

/** hostname → address from the managed block; throws if the block names a hostname twice. */
export function managedRecords(snapshot: HostsSnapshot): Map<string, string> {
  const records = new Map<string, string>()
  for (const line of snapshot.blockLines) {
    for (const h of line.hostnames) {
      if (records.has(h)) throw new Error(`hosts file: ${h} appears twice in the managed block`)
      records.set(h, line.address)
    }
  }
  return records
}
