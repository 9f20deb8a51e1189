import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { publicDomainOf } from './public-domain.js'

describe('publicDomainOf (the public suffix list, through tldts)', () => {
  it('names the registrable public domain of a name under an ICANN suffix, and nothing for private names', () => {
    assert.equal(publicDomainOf('github.com'), 'github.com')
    assert.equal(publicDomainOf('api.github.com'), 'github.com')
    assert.equal(publicDomainOf('x.co.uk'), 'x.co.uk')
    assert.equal(publicDomainOf('status.demo-app.ngrok.app'), 'ngrok.app')
    assert.equal(publicDomainOf('db.default'), undefined)
    assert.equal(publicDomainOf('good-one.e2e'), undefined)
  })
})
