import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DocSamples } from './doc-samples.js'

describe('DocSamples', () => {
  test('the driver guide holds every block the third-party test builds, and the package.json parses', () => {
    const samples = DocSamples.read()
    for (const name of ['ngrokd-driver-sample/package.json', 'ngrokd-driver-sample/index.js', 'ngrokd-driver-sample/test/conformance.test.js', 'ngrokd.yaml', 'status']) {
      assert.ok(samples.get(name).trim().length > 0, `${name} is not empty`)
    }
    const manifest = JSON.parse(samples.get('ngrokd-driver-sample/package.json')) as { name: string; files: string[] }
    assert.equal(manifest.name, 'ngrokd-driver-sample')
    assert.ok(manifest.files.includes('index.js'))
  })

  test('reads marked blocks only, whole, and refuses unknown names and ambiguous variants', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ngrokd-doc-samples-'))
    try {
      const path = join(dir, 'guide.md')
      const guide = [
        'Intro.',
        '```js',
        'unmarked()',
        '```',
        '<!-- sample: a.js -->',
        '````js',
        'const fence = "```"',
        'f(1); f(1)',
        '````',
        '<!-- sample: b.txt -->',
        '```',
        'two',
        'lines',
        '```',
        '',
      ].join('\n')
      writeFileSync(path, guide)
      const samples = DocSamples.read(path)
      assert.deepEqual(samples.names, ['a.js', 'b.txt'])
      assert.equal(samples.get('a.js'), 'const fence = "```"\nf(1); f(1)\n')
      assert.equal(samples.get('b.txt'), 'two\nlines\n')
      assert.throws(() => samples.get('c'), /no block marked <!-- sample: c -->/)
      assert.equal(samples.variant('b.txt', ['two', '2'], ['lines', 'rows']), '2\nrows\n')
      assert.throws(() => samples.variant('a.js', ['f(1)', 'g']), /occurs 2 times/)
      assert.throws(() => samples.variant('b.txt', ['three', '3']), /occurs 0 times/)
      writeFileSync(path, `${guide}<!-- sample: a.js -->\n\`\`\`\nagain\n\`\`\`\n`)
      assert.throws(() => DocSamples.read(path), /sample a\.js appears twice/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
