// probe/regenerate.mjs run without Wine keeps the fixture's previous `wine` block (probe/wine-block.mjs): writing
// null there broke the tests that read Wine's answers (abi.test.ts).
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { packageRoot, readAbiFixture, type AbiFixture } from '../testing/read-fixture.test-helper.js'

type KeptWineBlock = (fixturePath: string, say: (line: string) => void) => AbiFixture['wine']

async function keptWineBlock(): Promise<KeptWineBlock> {
  const module = (await import(pathToFileURL(join(packageRoot(), 'probe', 'wine-block.mjs')).href)) as { keptWineBlock: KeptWineBlock }
  return module.keptWineBlock
}

describe('probe/regenerate.mjs without Wine', () => {
  it('keeps the committed fixture\'s wine block, and says so', async () => {
    const kept = await keptWineBlock()
    const said: string[] = []
    const block = kept(join(packageRoot(), 'probe', 'windows-abi.json'), (line) => said.push(line))
    assert.deepEqual(block, readAbiFixture().wine)
    assert.ok(block, 'the committed fixture has a wine block')
    assert.deepEqual(said, [`wine not found: kept the wine block of the previous run (${block.version}); install wine64 and run again to renew it`])
  })

  it('writes null, saying why, when there is no previous block to keep', async () => {
    const kept = await keptWineBlock()
    const dir = mkdtempSync(join(tmpdir(), 'ngrokd-wine-block-'))
    try {
      const said: string[] = []
      const say = (line: string) => said.push(line)
      assert.equal(kept(join(dir, 'missing.json'), say), null)
      writeFileSync(join(dir, 'null.json'), JSON.stringify({ wine: null }))
      assert.equal(kept(join(dir, 'null.json'), say), null)
      writeFileSync(join(dir, 'bad.json'), '{')
      assert.equal(kept(join(dir, 'bad.json'), say), null)
      assert.equal(said.length, 3)
      assert.match(said[0]!, /^wine not found and there is no previous probe\/windows-abi\.json: "wine" is null, and the tests that read Wine's answers fail; install wine64/)
      assert.match(said[1]!, /the previous probe\/windows-abi\.json has no wine block/)
      assert.match(said[2]!, /the previous probe\/windows-abi\.json cannot be read \(/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
