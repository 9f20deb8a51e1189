import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { judgeInterruptedWrite, tornThenAppended } from './interrupted-write.js'

const b = (s: string) => Buffer.from(s, 'latin1')
const OLD = b('127.0.0.1 localhost\n# mine\n10.0.0.9 after.example\n')
const GROWN = b('127.0.0.1 localhost\n# mine\n10.0.0.9 after.example\n# BEGIN ngrokd\n10.107.0.2\tapi.prod\n# END ngrokd\n')

describe('judgeInterruptedWrite', () => {
  it('knows the old and the new content', () => {
    assert.equal(judgeInterruptedWrite(OLD, OLD, GROWN), 'old')
    assert.equal(judgeInterruptedWrite(GROWN, OLD, GROWN), 'new')
    assert.equal(judgeInterruptedWrite(b(''), b(''), GROWN), 'old')
  })

  it('calls torn what a growing write leaves on the way: padding, then new bytes over old ones', () => {
    for (let pad = 1; pad < GROWN.length - OLD.length; pad += 7) {
      assert.equal(judgeInterruptedWrite(Buffer.concat([OLD, Buffer.alloc(pad, 0x0a)]), OLD, GROWN), 'torn', `padding ${pad}`)
    }
    const padded = Buffer.concat([OLD, Buffer.alloc(GROWN.length - OLD.length, 0x0a)])
    for (let cut = 1; cut < GROWN.length; cut += 5) {
      const file = Buffer.concat([GROWN.subarray(0, cut), padded.subarray(cut)])
      if (!file.equals(GROWN)) assert.equal(judgeInterruptedWrite(file, OLD, GROWN), 'torn', `cut at ${cut}`)
    }
  })

  it('calls torn what a shrinking write leaves before the cut, and pages a crash left zero', () => {
    const shrunk = b('# hosts\n127.0.0.1 localhost\n')
    const file = Buffer.concat([shrunk, GROWN.subarray(shrunk.length)]) // the new content over the old one, not yet cut
    assert.equal(judgeInterruptedWrite(file, GROWN, shrunk), 'torn')
    const zeros = Buffer.from(GROWN)
    zeros.fill(0, 10, 30)
    assert.equal(judgeInterruptedWrite(zeros, OLD, GROWN), 'torn')
  })

  it('calls changed what has a byte neither content has there, or a length the write never passes through', () => {
    assert.equal(judgeInterruptedWrite(Buffer.concat([GROWN, b('10.0.0.10 admin.example\n')]), OLD, GROWN), 'changed', 'a line added after the write')
    const edited = Buffer.from(GROWN)
    edited[5] = 0x39 // 127.0.0.9
    assert.equal(judgeInterruptedWrite(edited, OLD, GROWN), 'changed', 'a byte edited')
    assert.equal(judgeInterruptedWrite(OLD.subarray(0, OLD.length - 1), OLD, GROWN), 'changed', 'shorter than both')
    assert.equal(judgeInterruptedWrite(b(''), OLD, GROWN), 'changed', 'emptied by hand')
  })
})

describe('tornThenAppended', () => {
  const admin = b('10.1.1.1 admin-added.local\n')
  const shrunk = b('# hosts\n127.0.0.1 localhost\n')
  const torn = Buffer.concat([shrunk, GROWN.subarray(shrunk.length)]) // a shrinking write cut before its truncate

  it('finds the whole lines appended to a torn file, for the restore to keep after the old content', () => {
    assert.deepEqual(tornThenAppended(Buffer.concat([torn, admin]), GROWN, shrunk), admin)
    assert.deepEqual(tornThenAppended(Buffer.concat([torn, admin, admin]), GROWN, shrunk), Buffer.concat([admin, admin]))
    // a growing write cut with its tail still a zero block, then a line appended
    const zeroTail = Buffer.concat([GROWN.subarray(0, 50), OLD.subarray(50), Buffer.alloc(GROWN.length - OLD.length)])
    assert.equal(judgeInterruptedWrite(zeroTail, OLD, GROWN), 'torn')
    assert.deepEqual(tornThenAppended(Buffer.concat([zeroTail, admin]), OLD, GROWN), admin)
  })

  it('finds nothing when the file is not torn underneath, or what follows is not whole lines', () => {
    assert.equal(tornThenAppended(Buffer.concat([GROWN, admin]), GROWN, shrunk), undefined, 'the old content and a line: kept as it is')
    assert.equal(tornThenAppended(Buffer.concat([shrunk, admin]), GROWN, shrunk), undefined, 'the new content and a line')
    assert.equal(tornThenAppended(Buffer.concat([torn, b('10.1.1.1 half')]), GROWN, shrunk), undefined, 'no line end')
    const edited = Buffer.concat([torn, admin])
    edited[3] = 0x39
    assert.equal(tornThenAppended(edited, GROWN, shrunk), undefined, 'a byte edited in the torn part')
  })
})
