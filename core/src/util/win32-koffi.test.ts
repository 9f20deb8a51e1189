// koffi.proto() registers a named prototype as a global type: the declaration smoke tests parse without names, so
// any of them can run in one process, together and more than once.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { koffi } from './koffi.js'
import { parseKoffiPrototypes } from './win32-koffi.js'
import { parsePipeSecurityPrototypes, PIPE_SECURITY_PROTOTYPES } from '../control/windows-pipe-security-ffi.js'
import { parseScmPrototypes, SCM_PROTOTYPES, SERVICE_DISPATCH_PROTOTYPES } from '../service/windows-service-ffi.js'
import { parseRegistryPrototypes } from '../names/windows-nrpt-ffi.js'

describe('parseKoffiPrototypes', () => {
  it('parses one function twice, and one that another declaration of it already named', () => {
    const getLastError = { prototype: 'uint32_t __stdcall GetLastError()' }
    assert.equal(parseKoffiPrototypes(koffi, [getLastError, getLastError]), 2)
    assert.equal(parseKoffiPrototypes(koffi, [getLastError]), 1)
    koffi.proto('uint32_t ngrokd_named_elsewhere(int x)') // a module that named it for real
    assert.equal(parseKoffiPrototypes(koffi, [{ prototype: 'uint32_t ngrokd_named_elsewhere(int x)' }]), 1)
  })

  it('still fails on an unknown type, and on text without a function name', () => {
    assert.throws(() => parseKoffiPrototypes(koffi, [{ prototype: 'DWORD_TYPO __stdcall GetTickCount()' }]))
    assert.throws(() => parseKoffiPrototypes(koffi, [{ prototype: 'uint32_t' }]), /not a C prototype \(no function name before its arguments\): "uint32_t"/)
  })

  it("core's Windows declarations parse together in one process, twice", () => {
    for (let round = 0; round < 2; round++) {
      assert.equal(parsePipeSecurityPrototypes(), PIPE_SECURITY_PROTOTYPES.length)
      assert.equal(parseScmPrototypes(), SCM_PROTOTYPES.length + SERVICE_DISPATCH_PROTOTYPES.length)
      assert.equal(parseRegistryPrototypes(), 7)
    }
  })
})
