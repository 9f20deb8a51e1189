// The `wine` block of probe/windows-abi.json when regenerate.mjs runs without Wine: the committed tests read Wine's
// answers from it (the loopback LUID row, the calls Wine lacks), so a run without Wine keeps the previous one.
import { existsSync, readFileSync } from 'node:fs'

/**
 * The previous fixture's `wine` block, or null when there is none (no file, no block, unreadable JSON). `say` gets
 * one line for stderr either way: what was kept, or why nothing was.
 */
export function keptWineBlock(fixturePath, say) {
  let previous = null
  let why = 'there is no previous probe/windows-abi.json'
  if (existsSync(fixturePath)) {
    try {
      previous = JSON.parse(readFileSync(fixturePath, 'utf8')).wine ?? null
      why = 'the previous probe/windows-abi.json has no wine block'
    } catch (e) {
      why = `the previous probe/windows-abi.json cannot be read (${e.message})`
    }
  }
  if (previous !== null && typeof previous === 'object') {
    say(`wine not found: kept the wine block of the previous run (${previous.version}); install wine64 and run again to renew it`)
    return previous
  }
  say(`wine not found and ${why}: "wine" is null, and the tests that read Wine's answers fail; install wine64 and run again`)
  return null
}
