import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, parse } from 'node:path'
import { nearestExisting } from './nearest-existing.js'

test('nearestExisting: the path when it exists, else the nearest folder above it that does', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ngrokd-nearest-'))
  try {
    mkdirSync(join(dir, 'a'))
    writeFileSync(join(dir, 'a', 'file'), '')
    assert.equal(nearestExisting(join(dir, 'a')), join(dir, 'a'))
    assert.equal(nearestExisting(join(dir, 'a', 'file')), join(dir, 'a', 'file'))
    assert.equal(nearestExisting(join(dir, 'a', 'b', 'c')), join(dir, 'a'))
    assert.equal(nearestExisting(join(dir, 'x', '..', 'a', 'b')), join(dir, 'a'), 'made absolute and normal first')
    const root = parse(dir).root
    assert.equal(nearestExisting(root), root)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
