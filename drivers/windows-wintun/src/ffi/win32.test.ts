// koffi parses every declaration on any OS (nothing is loaded), and koffi's own layout of the structs equals the
// mingw-w64 numbers on a 64-bit host (same LLP64-compatible alignment for the fixed-size types used).
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import koffi from 'koffi'
import { isNgrokdError } from '@ngrokd/core/driver'
import { ALL_PROTOTYPES, declareWin32Types, loadWintun, parseWin32Prototypes } from './win32.js'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { packageRoot, readAbiFixture } from '../testing/read-fixture.test-helper.js'

const x64 = readAbiFixture().targets.x86_64!

describe('ffi/win32.ts declarations', () => {
  it('parses every prototype, each __stdcall', () => {
    assert.equal(parseWin32Prototypes(), ALL_PROTOTYPES.length)
    for (const p of ALL_PROTOTYPES) assert.match(p.prototype, / __stdcall \w+\(/, p.prototype)
    assert.throws(() => parseWin32Prototypes([{ dll: 'x', header: 'x', prototype: 'DWORD __stdcall Oops(MIB_UNICASTIPADDRES_ROW *Row)' }]))
  })

  it("parses in one process with core's Windows declarations, each more than once (all declare GetLastError)", async () => {
    // core's modules by the files its build:test writes, as probe/regenerate.mjs reads their prototypes
    const core = (file: string) => import(pathToFileURL(join(packageRoot(), '../../core/dist-test', file)).href)
    const parsers: Array<() => number> = [
      parseWin32Prototypes,
      (await core('control/windows-pipe-security-ffi.js')).parsePipeSecurityPrototypes,
      (await core('service/windows-service-ffi.js')).parseScmPrototypes,
      (await core('names/windows-nrpt-ffi.js')).parseRegistryPrototypes,
    ]
    for (let round = 0; round < 2; round++) for (const parse of parsers) assert.ok(parse() > 0, parse.name)
  })

  it('declares MIB_UNICASTIPADDRESS_ROW with the layout mingw-w64 gives', { skip: process.arch === 'x64' || process.arch === 'arm64' ? false : 'needs a 64-bit host' }, () => {
    declareWin32Types()
    assert.equal(koffi.sizeof('MIB_UNICASTIPADDRESS_ROW'), x64['sizeof MIB_UNICASTIPADDRESS_ROW'])
    for (const field of ['Address', 'InterfaceLuid', 'InterfaceIndex', 'PrefixOrigin', 'SuffixOrigin', 'ValidLifetime', 'PreferredLifetime', 'OnLinkPrefixLength', 'SkipAsSource', 'DadState', 'ScopeId', 'CreationTimeStamp']) {
      assert.equal(koffi.offsetof('MIB_UNICASTIPADDRESS_ROW', field), x64[`MIB_UNICASTIPADDRESS_ROW.${field}`], field)
    }
    assert.equal(koffi.sizeof('SOCKADDR_INET'), x64['sizeof SOCKADDR_INET'])
    assert.equal(koffi.sizeof('NET_LUID'), x64['sizeof NET_LUID'])
    assert.equal(koffi.sizeof('GUID'), 16)
  })

  it('loading wintun.dll that is not there is NGROKD_ERR_DRIVER_LIBRARY with the wintun.net hint', () => {
    assert.throws(
      () => loadWintun('C:\\Program Files\\ngrokd\\wintun.dll', 'C:\\Windows'),
      (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_DRIVER_LIBRARY') && /wintun\.net/.test(String(e.hint)),
    )
  })
})
