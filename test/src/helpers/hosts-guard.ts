import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { HOSTS_FILE } from './hosts-file.js'

/**
 * Every test file shares the namespace's /etc/hosts and must leave it as it found it: `take()` in
 * `before`, `assertRestored()` in `after` once the daemons have stopped cleanly (a clean stop removes
 * the managed block byte-exact). A file left changed is restored after the failed assertion.
 */
export function snapshotHostsFile(path = HOSTS_FILE): { take(): void; assertRestored(): void } {
  let before: string | undefined
  return {
    take() {
      before = readFileSync(path, 'utf8')
    },
    assertRestored() {
      if (before === undefined) return
      const now = readFileSync(path, 'utf8')
      // put it back first so one failure does not spill into the next file, then fail
      if (now !== before) writeFileSync(path, before)
      assert.equal(now, before, `${path} is back to what it was before the test file ran`)
    },
  }
}
