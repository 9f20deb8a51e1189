import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { servicedNodePath } from './service-action.js'

test("the service runs node by the link on PATH that leads to this one (an upgrade keeps it valid), else by this one's path", () => {
  const dir = mkdtempSync(join(tmpdir(), 'ngrokd-node-path-'))
  try {
    const cellar = join(dir, 'Cellar/node/24.1.0/bin')
    mkdirSync(cellar, { recursive: true })
    const real = join(cellar, 'node')
    writeFileSync(real, '')
    const bin = join(dir, 'bin')
    mkdirSync(bin)
    symlinkSync(real, join(bin, 'node'))
    // a folder that is a link (merged /usr: /bin → /usr/bin) names the same file, not a link to it
    symlinkSync(cellar, join(dir, 'linked-folder'))
    const other = join(dir, 'other')
    mkdirSync(other)
    writeFileSync(join(other, 'node'), '')
    assert.equal(servicedNodePath(real, [other, join(dir, 'linked-folder'), 'relative', bin].join(':')), join(bin, 'node'))
    assert.equal(servicedNodePath(real, [cellar, bin].join(':')), real, 'this node itself comes first on PATH')
    assert.equal(servicedNodePath(real, [other, join(dir, 'linked-folder')].join(':')), real)
    assert.equal(servicedNodePath(real, ''), real)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
