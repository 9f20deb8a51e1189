// Registration's rules that need no API. Against an API — registering, reusing, renewing, recovering,
// deregistering — it is tested on the cloud simulator: test/src/core-on-simulator/registration.test.ts.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Registration, machineIdOf, type RegistrationOptions } from './registration.js'
import { writeFileAtomic } from '../util/atomic-file.js'
import { NgrokApiClient } from '../api/ngrok-api-client.js'
import { isNgrokdError } from '../errors/index.js'
import { silentLogger } from '../contracts/logger.js'
import { recordingLogger } from '../testing/recording-logger.js'

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

describe('a state dir that cannot take the new key and certificate', () => {
  for (const file of ['client.key.next', 'client.crt.next']) {
    it(`asks the API nothing when ${file} cannot be written: the pair's room is taken before ngrok is asked for a registration (none is created to be deleted)`, async () => {
      const stateDir = await mkdtemp(join(tmpdir(), 'ngrokd-reg-full-'))
      try {
        const calls: string[] = []
        const fetchImpl: typeof fetch = async (input, init) => {
          calls.push(`${init?.method ?? 'GET'} ${String(input)}`)
          return new Response('{}', { status: 500 })
        }
        const writeFile: RegistrationOptions['writeFile'] = async (path, data, options) => {
          if (path.endsWith(file)) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' })
          await writeFileAtomic(path, data, options)
        }
        const reg = new Registration({ api: new NgrokApiClient({ apiKey: 'k', fetchImpl }), stateDir, logger: silentLogger, hostname: 'build-07', writeFile })
        const e = await reg.ensure().then(() => assert.fail('ensure() must fail'), (err: unknown) => err)
        assert.ok(isNgrokdError(e, 'NGROKD_ERR_STATE'))
        assert.equal(e.message, `registration: cannot write ${join(stateDir, file)}: no space left on its device (ENOSPC)`)
        assert.equal(e.hint, `free space on the file system of ${stateDir} (df -h ${stateDir}), or set state_dir to a directory on another file system`)
        assert.deepEqual(calls, [])
        assert.deepEqual((await readdir(stateDir)).sort(), ['machine-id'], 'no half of a new pair is left')
      } finally {
        await rm(stateDir, { recursive: true, force: true })
      }
    })
  }
})

describe('a corrupt or missing machine-id file', () => {
  /** An API that refuses every call (401, not retried): these tests look only at what happens before the first. */
  const refusing = () => {
    const calls: string[] = []
    const fetchImpl: typeof fetch = async (input, init) => {
      calls.push(`${init?.method ?? 'GET'} ${String(input)}`)
      return new Response(JSON.stringify({ error_code: 'ERR_NGROK_401', status_code: 401, msg: 'refused by the test' }), { status: 401, headers: { 'content-type': 'application/json' } })
    }
    return { calls, api: new NgrokApiClient({ apiKey: 'k', fetchImpl }) }
  }
  const corrupt = randomBytes(300)

  it('is moved aside with a warning, and the id the saved registration carries is taken back', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'ngrokd-reg-machine-id-'))
    try {
      await writeFile(join(stateDir, 'machine-id'), corrupt)
      await writeFile(join(stateDir, 'operator.json'), JSON.stringify({ version: 1, operatorId: 'k8sop_saved', machineId: 'the-old-id', ingressEndpoint: '', notBefore: '', notAfter: '', fingerprint256: '', savedAt: '' }))
      const logger = recordingLogger()
      const { api } = refusing()
      await assert.rejects(new Registration({ api, stateDir, logger, hostname: 'build-07' }).ensure())
      assert.equal(await readFile(join(stateDir, 'machine-id'), 'utf8'), 'the-old-id\n')
      const aside = (await readdir(stateDir)).filter((f) => f.startsWith('machine-id.corrupt-'))
      assert.equal(aside.length, 1, 'moved aside, as a corrupt allocations.json is')
      assert.deepEqual(await readFile(join(stateDir, aside[0]!)), corrupt)
      const warning = logger.at('warn').find((r) => r.msg.includes('machine-id'))
      assert.match(warning?.msg ?? '', new RegExp(`${join(stateDir, 'machine-id')} is corrupt .*moved it to .*${aside[0]}.*the saved registration .*the-old-id`))
    } finally {
      await rm(stateDir, { recursive: true, force: true })
    }
  })

  it('without a saved registration, is moved aside and a new id made, said in the warning', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'ngrokd-reg-machine-id-'))
    try {
      await writeFile(join(stateDir, 'machine-id'), corrupt)
      const logger = recordingLogger()
      const { api } = refusing()
      await assert.rejects(new Registration({ api, stateDir, logger, hostname: 'build-07' }).ensure())
      const id = (await readFile(join(stateDir, 'machine-id'), 'utf8')).trim()
      assert.match(id, /^[0-9a-f-]{36}$/)
      assert.equal((await readdir(stateDir)).filter((f) => f.startsWith('machine-id.corrupt-')).length, 1)
      assert.match(logger.at('warn').map((r) => r.msg).join('\n'), new RegExp(`is corrupt .*no saved registration carries the old id: a new one is made, ${id}`))
    } finally {
      await rm(stateDir, { recursive: true, force: true })
    }
  })

  it('a missing one is written back from the saved registration, not made anew', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'ngrokd-reg-machine-id-'))
    try {
      await writeFile(join(stateDir, 'operator.json'), JSON.stringify({ version: 1, operatorId: 'k8sop_saved', machineId: 'the-old-id', ingressEndpoint: '', notBefore: '', notAfter: '', fingerprint256: '', savedAt: '' }))
      const logger = recordingLogger()
      const { api } = refusing()
      await assert.rejects(new Registration({ api, stateDir, logger, hostname: 'build-07' }).ensure())
      assert.equal(await readFile(join(stateDir, 'machine-id'), 'utf8'), 'the-old-id\n')
      assert.match(logger.at('info').map((r) => r.msg).join('\n'), /machine-id was missing; wrote back the id the saved registration .* carries, the-old-id/)
    } finally {
      await rm(stateDir, { recursive: true, force: true })
    }
  })
})
