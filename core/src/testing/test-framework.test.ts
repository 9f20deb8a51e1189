import { afterEach, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { TestFramework } from './test-framework.js'

const globals = globalThis as Record<string, unknown>

describe('TestFramework', () => {
  afterEach(() => {
    TestFramework.reset()
    for (const name of ['describe', 'it', 'beforeAll', 'afterAll', 'before', 'after']) delete globals[name]
  })

  it('names the missing function and how to provide it', () => {
    TestFramework.reset()
    assert.throws(() => TestFramework.afterAll, { message: 'Missing definition for `afterAll` – set `TestFramework.afterAll` or define it globally' })
    assert.throws(() => TestFramework.describe, { message: 'Missing definition for `describe` – set `TestFramework.describe` or define it globally' })
  })

  it('falls back to globals: vitest/jest names first, then mocha names', () => {
    const afterAll = () => 'afterAll'
    const after = () => 'after'
    globals.after = after
    assert.equal(TestFramework.afterAll, after)
    globals.afterAll = afterAll
    assert.equal(TestFramework.afterAll, afterAll)
  })

  it('prefers what was set over globals, by setter or use()', () => {
    globals.it = () => 'global'
    const mine = () => 'mine'
    TestFramework.it = mine
    assert.equal(TestFramework.it, mine)
    const describeFn = () => 'describe'
    const before = () => 'before'
    TestFramework.use({ describe: describeFn, beforeAll: before })
    assert.equal(TestFramework.describe, describeFn)
    assert.equal(TestFramework.beforeAll, before)
    assert.equal(TestFramework.it, mine, 'use() leaves unnamed functions alone')
    TestFramework.reset()
    assert.equal(TestFramework.it, globals.it)
  })
})
