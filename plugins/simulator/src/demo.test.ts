import assert from 'node:assert/strict'
import { it } from 'node:test'
import { demoCommandLine } from './demo.js'

it('the demo names itself as the user started it: npm run demo from a clone, whose ngrokd is on no PATH, takes its flags after --', () => {
  assert.equal(demoCommandLine(['--shell'], { npm_lifecycle_event: 'demo' }), 'npm run demo -- --shell')
  assert.equal(demoCommandLine(['--shell'], {}), 'ngrokd demo --shell')
  assert.equal(demoCommandLine(['--shell'], { npm_lifecycle_event: 'test' }), 'ngrokd demo --shell', 'another script that runs ngrokd')
})
