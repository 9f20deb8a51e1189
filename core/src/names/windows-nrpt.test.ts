import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import * as N from './windows-nrpt.js'
import { hkeyLocalMachine, parseRegistryPrototypes, REGISTRY_ABI } from './windows-nrpt-ffi.js'
import { FakeRegistry } from './windows-nrpt.test-helper.js'

/** What mingw-w64's headers say, per target (made by drivers/windows-wintun/probe/regenerate.mjs). */
const fixture = (): Record<string, Record<string, number>> => JSON.parse(readFileSync(new URL('./windows-abi.json', import.meta.url), 'utf8')).targets

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex')

describe('NRPT rules', () => {
  it('registry constants match mingw-w64 (winnt.h, winreg.h, winerror.h)', () => {
    for (const v of Object.values(fixture())) {
      assert.equal(v.REG_SZ, N.REG_SZ)
      assert.equal(v.REG_DWORD, N.REG_DWORD)
      assert.equal(v.REG_MULTI_SZ, N.REG_MULTI_SZ)
      assert.equal(v.ERROR_FILE_NOT_FOUND, N.ERROR_FILE_NOT_FOUND)
      assert.equal(v.ERROR_ACCESS_DENIED, N.ERROR_ACCESS_DENIED)
      assert.equal(v.HKEY_LOCAL_MACHINE, 0x80000002)
      for (const [name, value] of Object.entries(REGISTRY_ABI)) assert.equal(value, v[name], name)
    }
    assert.equal(hkeyLocalMachine(8), 0xffffffff80000002n, '(HKEY)(ULONG_PTR)(LONG)0x80000002, sign-extended')
    assert.equal(hkeyLocalMachine(4), 0x80000002n)
  })

  it('encodes REG_MULTI_SZ, REG_SZ and REG_DWORD byte for byte', () => {
    assert.deepEqual(N.encodeRegMultiSz(['.prod']), hex('2e00 7000 7200 6f00 6400 0000 0000'))
    assert.deepEqual(N.encodeRegMultiSz(['.a', '.b']), hex('2e00 6100 0000 2e00 6200 0000 0000'))
    assert.deepEqual(N.encodeRegMultiSz([]), hex('0000'))
    assert.deepEqual(N.encodeRegSz('10.107.0.1'), hex('3100 3000 2e00 3100 3000 3700 2e00 3000 2e00 3100 0000'))
    assert.deepEqual(N.encodeRegSz(''), hex('0000'))
    assert.deepEqual(N.encodeRegDword(8), hex('08000000'))
    assert.deepEqual(N.decodeRegMultiSz(N.encodeRegMultiSz(['.a', '.bc'])), ['.a', '.bc'])
    assert.throws(() => N.encodeRegMultiSz(['']), RangeError)
  })

  it('one rule per suffix: the values Add-DnsClientNrptRule writes, under a stable GUID key', () => {
    const rule = N.nrptRule({ suffix: 'prod', servers: ['10.107.0.1'] })
    assert.equal(rule.namespace, '.prod')
    assert.match(rule.keyPath, /^SYSTEM\\CurrentControlSet\\Services\\Dnscache\\Parameters\\DnsPolicyConfig\\\{[0-9A-F]{8}-[0-9A-F]{4}-5[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}\}$/)
    assert.equal(N.nrptRule({ suffix: '*.PROD', servers: ['10.107.0.1'] }).keyPath, rule.keyPath)
    assert.deepEqual(
      rule.values.map((v) => [v.name, v.type, v.data.toString('hex')]),
      [
        ['Name', N.REG_MULTI_SZ, '2e00700072006f006400' + '0000' + '0000'],
        ['GenericDNSServers', N.REG_SZ, N.encodeRegSz('10.107.0.1').toString('hex')],
        ['ConfigOptions', N.REG_DWORD, '08000000'],
        ['Version', N.REG_DWORD, '02000000'],
        ['IPSECCARestriction', N.REG_SZ, '0000'],
        ['Comment', N.REG_SZ, N.encodeRegSz('ngrokd').toString('hex')],
      ],
    )
    assert.throws(() => N.nrptRule({ suffix: 'prod', servers: ['10.107.0.1:5353'] }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID') && /drops a port/.test(String(e.hint)))
    assert.throws(() => N.nrptRule({ suffix: 'bad suffix', servers: ['10.107.0.1'] }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID'))
  })

  it('applies, removes idempotently, flushes, and reports ACCESS_DENIED as a permission error', () => {
    const reg = new FakeRegistry()
    const nrpt = new N.WindowsNrpt(reg)
    const rules = nrpt.apply({ suffixes: ['prod', 'demo'], servers: ['10.107.0.1'] })
    assert.deepEqual([...reg.keys.keys()], rules.map((r) => r.keyPath))
    assert.equal(reg.flushes, 1)
    nrpt.remove(['prod', 'demo'])
    nrpt.remove(['prod'])
    assert.equal(reg.keys.size, 0)
    assert.equal(nrpt.groupPolicyOverrides(), false)
    reg.keys.set(N.NRPT_GROUP_POLICY_ROOT, [])
    assert.equal(nrpt.groupPolicyOverrides(), true)
    reg.denied = true
    assert.throws(() => nrpt.apply({ suffixes: ['prod'], servers: ['10.107.0.1'] }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_PERMISSION') && /Administrator/.test(String(e.hint)))
  })

  it('the advapi32 and dnsapi declarations parse', () => {
    assert.equal(parseRegistryPrototypes(), 7)
  })

  it('keeps a record in state_dir of the rules it wrote, which a later run (after a crash) reads and removes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ngrokd-nrpt-record-'))
    try {
      const record = join(dir, N.NRPT_RECORD_FILE)
      const registry = new FakeRegistry()
      const first = new N.WindowsNrpt(registry, record)
      first.apply({ suffixes: ['prod', 'demo'], servers: ['10.107.0.1'] })
      first.remove(['demo'])
      assert.deepEqual(JSON.parse(readFileSync(record, 'utf8')), { namespaces: ['.prod'] })
      // killed here: its rule stays in the registry, and the next run learns of it from the record
      const next = new N.WindowsNrpt(registry, record)
      assert.deepEqual(next.recorded(), ['.prod'])
      next.remove(next.recorded())
      assert.equal(registry.keys.size, 0)
      assert.deepEqual(next.recorded(), [])
      assert.equal(existsSync(record), false, 'no rule, no record')
      writeFileSync(record, '{"namespaces": [".prod", "../x", 7]')
      assert.deepEqual(next.recorded(), [], 'a torn record names nothing')
      writeFileSync(record, '{"namespaces": [".prod", "../x", 7]}')
      assert.deepEqual(next.recorded(), ['.prod'], 'what is not a namespace is passed over')
      registry.denied = true
      assert.throws(() => next.apply({ suffixes: ['demo'], servers: ['10.107.0.1'] }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_PERMISSION'))
      assert.deepEqual(next.recorded(), ['.demo', '.prod'], 'recorded before it was tried: a rule may exist only if its name is recorded')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
