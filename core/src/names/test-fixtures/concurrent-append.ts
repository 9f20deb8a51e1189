/**
 * The lost-update race: another program appends lines to the hosts file (append-lines.ts) while a
 * resolver rewrites its block again and again. Used by the unprivileged tests (plain file, and the
 * in-place path forced by a failing rename) and by the privileged child (a real bind mount).
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { NameRecord, NameResolver } from '../../contracts/name-resolver.js'

/** Two sets published in turn: every publish changes the block, growing and shrinking the file. */
export const RACE_SETS: NameRecord[][] = [
  [
    { hostname: 'api.prod', address: '10.107.0.2' },
    { hostname: 'db.prod', address: '10.107.0.3' },
  ],
  [
    { hostname: 'api.prod', address: '10.107.0.2' },
    { hostname: 'db.prod', address: '10.107.0.3' },
    { hostname: 'web.staging-with-a-longer-name', address: '10.107.0.4' },
  ],
]

/**
 * Starts the appender on `file`; once it has written its first line, publishes the sets in turn
 * `rewrites` times (each publish must change the file), a burst of appended lines starting with each
 * publish, then stops the appender and waits for it to exit. Returns how many lines it appended and the
 * records published last.
 */
export async function rewriteWhileAppending(resolver: NameResolver, file: string, rewrites: number): Promise<{ appended: number; last: NameRecord[] }> {
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js'
  const script = fileURLToPath(new URL(`./append-lines${ext}`, import.meta.url))
  const execArgv = process.execArgv.filter((a) => !a.startsWith('--test'))
  const child = spawn(process.execPath, [...execArgv, script, file], { stdio: ['pipe', 'pipe', 'inherit'] })
  const exited = once(child, 'exit')
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]()
  try {
    const first = await lines.next()
    if (first.value !== 'started') throw new Error(`append-lines did not start: ${String(first.value)}`)
    let last = RACE_SETS[0]!
    for (let i = 0; i < rewrites; i++) {
      last = RACE_SETS[(i + 1) % 2]!
      child.stdin!.write('\n') // a burst, racing this publish
      const { changed } = await resolver.publish({ records: last })
      if (!changed) throw new Error(`publish #${i} changed nothing`)
      const burst = await lines.next() // the burst is written (during the publish, or just after it)
      if (burst.value !== 'burst') throw new Error(`append-lines did not append: ${String(burst.value)}`)
    }
    child.stdin!.end()
    const count = await lines.next()
    const [code] = await exited
    if (code !== 0) throw new Error(`append-lines exited with ${String(code)}`)
    return { appended: Number(count.value), last }
  } finally {
    child.kill()
  }
}

/** The numbers of the lines append-lines wrote, in file order. */
export function appendedNumbers(text: string): number[] {
  return [...text.matchAll(/^10\.99\.\d+\.\d+\tw(\d+)\.appended\.test$/gm)].map((m) => Number(m[1]))
}

/** What the appender wrote, lines 0 … count-1. */
export function appendedText(count: number): string {
  let out = ''
  for (let i = 0; i < count; i++) out += `10.99.${Math.floor(i / 250)}.${(i % 250) + 1}\tw${i}.appended.test\n`
  return out
}
