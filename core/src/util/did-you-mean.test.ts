import { test } from 'node:test'
import assert from 'node:assert/strict'
import { didYouMean } from './did-you-mean.js'

test('didYouMean: a typo, a swap of two letters, another spelling of the same name; nothing for a stranger', () => {
  assert.equal(didYouMean('confg', ['config', 'instance', 'json']), 'config')
  assert.equal(didYouMean('jsno', ['config', 'instance', 'json']), 'json', 'two neighbouring letters swapped are one edit')
  assert.equal(didYouMean('stauts', ['status', 'list', 'run']), 'status')
  assert.equal(didYouMean('poll-interval', ['poll_interval', 'selectors']), 'poll_interval')
  assert.equal(didYouMean('LOG_FORMAT', ['log-format']), 'log-format')
  assert.equal(didYouMean('verbose', ['config', 'instance', 'json']), undefined)
  assert.equal(didYouMean('x', ['config']), undefined)
})
