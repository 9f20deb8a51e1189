import * as N from './windows-nrpt.js'

/** The registry calls of NRPT on a map of keys, for tests: `denied` refuses writes with ERROR_ACCESS_DENIED. */
export class FakeRegistry implements N.NrptRegistry {
  keys = new Map<string, N.RegistryValue[]>()
  flushes = 0
  denied = false
  writeKey(keyPath: string, values: readonly N.RegistryValue[]) {
    if (this.denied) return { status: N.ERROR_ACCESS_DENIED, call: 'RegCreateKeyExW' }
    this.keys.set(keyPath, [...values])
    return { status: N.ERROR_SUCCESS, call: 'RegSetValueExW' }
  }
  deleteKey(keyPath: string) {
    return this.keys.delete(keyPath) ? N.ERROR_SUCCESS : N.ERROR_FILE_NOT_FOUND
  }
  openKey(keyPath: string) {
    return this.keys.has(keyPath) ? N.ERROR_SUCCESS : N.ERROR_FILE_NOT_FOUND
  }
  flushDns() {
    this.flushes++
    return true
  }
}
