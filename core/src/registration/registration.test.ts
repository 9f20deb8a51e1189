// Registration's rules that need no API. Against an API — registering, reusing, renewing, recovering,
// deregistering — it is tested on the cloud simulator: test/src/core-on-simulator/registration.test.ts.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Registration, machineIdOf } from './registration.js'
import { NgrokApiClient } from '../api/ngrok-api-client.js'
import { isNgrokdError } from '../errors/index.js'
import { silentLogger } from '../contracts/logger.js'

describe('Registration without an API', () => {
  it('credentials() before ensure() is an error', () => {
    const unreachable: typeof fetch = async () => assert.fail('credentials() must not call the API')
    const api = new NgrokApiClient({ apiKey: 'k', fetchImpl: unreachable })
    const reg = new Registration({ api, stateDir: join(tmpdir(), 'ngrokd-reg-never-written'), logger: silentLogger, hostname: 'build-07' })
    assert.throws(() => reg.credentials(), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CERT'))
  })

  it('machineIdOf reads only ngrokd metadata', () => {
    assert.equal(machineIdOf({ metadata: '{"ngrokd_machine_id":"abc","hostname":"h"}' }), 'abc')
    assert.equal(machineIdOf({ metadata: '{"owned-by":"ngrok-operator"}' }), undefined)
    assert.equal(machineIdOf({ metadata: 'not json' }), undefined)
    assert.equal(machineIdOf({}), undefined)
  })
})
