import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { StableAssignments } from './stable-assignments.js'

describe('StableAssignments', () => {
  it('gives the same slot back, skips reserved slots, and fails only the keys it cannot serve', () => {
    const s = new StableAssignments(10, 13)
    const { results, changed } = s.assign(['a', 'b', 'c', 'd'], new Set([11]))
    assert.equal(changed, true)
    assert.deepEqual(results, [{ key: 'a', slot: 10 }, { key: 'b', slot: 12 }, { key: 'c', slot: 13 }, { key: 'd', exhausted: true }])
    assert.deepEqual(s.assign(['b']), { results: [{ key: 'b', slot: 12 }], changed: false })
  })

  it('keeps a released slot for its key while never-used slots remain, then recycles the oldest released', () => {
    const s = new StableAssignments(1, 4)
    s.assign(['a', 'b'])
    assert.equal(s.release(['b', 'a']), true)
    assert.equal(s.release(['a']), false, 'releasing twice changes nothing')
    assert.deepEqual(s.assign(['c', 'd']).results, [{ key: 'c', slot: 3 }, { key: 'd', slot: 4 }])
    assert.deepEqual(s.assign(['e']).results, [{ key: 'e', slot: 2, recycledFrom: 'b' }], 'b was released first')
    assert.deepEqual(s.assign(['a']).results, [{ key: 'a', slot: 1 }], 'a kept its slot and is active again')
    assert.equal(s.lookup('b'), undefined)
  })

  it('restores saved entries with their release order, dropping out-of-range, invalid and duplicate ones', () => {
    const s = new StableAssignments(100, 200)
    const dropped = s.restore(
      [
        { key: 'low', slot: 99, active: true },
        { key: 'odd', slot: 101, active: true },
        { key: 'x', slot: 102, active: false, released: 7 },
        { key: 'y', slot: 104, active: false, released: 3 },
        { key: 'x', slot: 106, active: true },
        { key: 'z', slot: 102, active: true },
      ],
      (slot) => slot % 2 === 0,
    )
    assert.deepEqual(dropped, ['low', 'odd', 'x', 'z'])
    assert.deepEqual(s.entries(), [
      { key: 'x', slot: 102, active: false, released: 2 },
      { key: 'y', slot: 104, active: false, released: 1 },
    ])
  })
})
