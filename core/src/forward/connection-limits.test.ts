import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { ConnectionLimits, openFilesIssue, openFilesLimit } from './connection-limits.js'

describe('ConnectionLimits', () => {
  it('admits up to the per-listener limit, then names the limit hit; release() frees a slot', () => {
    const limits = new ConnectionLimits({ maxConnections: 10, maxConnectionsPerEndpoint: 2 })
    assert.equal(limits.admit(0), undefined)
    assert.equal(limits.admit(1), undefined)
    assert.equal(limits.admit(2), 'max_connections_per_endpoint')
    assert.equal(limits.open, 2, 'a refusal takes no slot')
    limits.release()
    assert.equal(limits.open, 1)
    assert.equal(limits.limitOf('max_connections_per_endpoint'), 2)
  })

  it('the global limit counts across listeners and is checked first', () => {
    const limits = new ConnectionLimits({ maxConnections: 3, maxConnectionsPerEndpoint: 2 })
    assert.equal(limits.admit(0), undefined) // listener a
    assert.equal(limits.admit(1), undefined) // listener a
    assert.equal(limits.admit(0), undefined) // listener b
    assert.equal(limits.admit(0), 'max_connections') // listener c, nothing open there
    assert.equal(limits.admit(5), 'max_connections')
    limits.release()
    assert.equal(limits.admit(0), undefined)
    assert.equal(limits.limitOf('max_connections'), 3)
  })

  it('no limits by default; release() never goes below zero', () => {
    const limits = new ConnectionLimits()
    for (let i = 0; i < 1000; i++) assert.equal(limits.admit(i), undefined)
    assert.equal(limits.open, 1000)
    const none = new ConnectionLimits()
    none.release()
    assert.equal(none.open, 0)
  })

  it('rejects limits that are not whole numbers ≥ 1 with a coded error', () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      assert.throws(() => new ConnectionLimits({ maxConnections: bad }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID'))
      assert.throws(() => new ConnectionLimits({ maxConnectionsPerEndpoint: bad }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID'))
    }
  })
})

describe('open files against forwarder.max_connections', () => {
  const limits = (soft: string) => () => `Limit                     Soft Limit           Hard Limit           Units     \nMax open files            ${soft}                524288               files     \n`
  it('reads the soft limit of /proc/self/limits; unlimited or unreadable is no limit', () => {
    assert.equal(openFilesLimit('self', limits('1024')), 1024)
    assert.equal(openFilesLimit('self', limits('unlimited')), undefined)
    assert.equal(openFilesLimit('self', () => { throw new Error('ENOENT') }), undefined)
    if (process.platform === 'linux') {
      assert.ok((openFilesLimit() ?? 0) > 0, 'this process has one')
      assert.equal(openFilesLimit(process.pid), openFilesLimit(), 'a pid reads that process\'s')
    }
  })

  it('two descriptors a connection and a reserve: a limit under that is said with the most it allows', () => {
    assert.equal(openFilesIssue(10_000, 524_288), undefined)
    assert.equal(openFilesIssue(10_000, 20_256), undefined)
    const issue = openFilesIssue(10_000, 1_024)
    assert.match(issue?.message ?? '', /^forwarder\.max_connections 10000 needs about 20256 open files .* this process may open 1024 \(RLIMIT_NOFILE\): connections past about 384 would be dropped unseen$/)
    assert.match(openFilesIssue(10_000, 1_024, 'the daemon (pid 7)')?.message ?? '', /and the daemon \(pid 7\) may open 1024/)
    assert.match(issue?.hint ?? '', /LimitNOFILE=.*forwarder\.max_connections to at most 384$/)
    assert.equal(openFilesIssue(Infinity, 1_024), undefined, 'no limit set: nothing to compare')
  })
})
