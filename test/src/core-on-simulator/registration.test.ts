// Registration (core/src/registration) against the cloud simulator's API: what it sends, what it saves,
// how it renews and recovers. The simulator runs in this process on loopback, one per test.
import { describe, it, beforeEach, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { chmod, mkdir, mkdtemp, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect, createServer, type TLSSocket } from 'node:tls'
import type { AddressInfo } from 'node:net'
import {
  CORE_VERSION,
  NgrokApiClient,
  Registration,
  isNgrokdError,
  parseCertificate,
  parseCsr,
  writeFileAtomic,
  type OperatorCreate,
  type OperatorUpdate,
  type RegistrationOptions,
  type NgrokdError,
} from '@ngrokd/core'
import { recordingLogger } from '@ngrokd/core/testing'
import { CloudSimulator } from '@ngrokd/plugin-simulator'
import { waitUntil } from '../helpers/wait-until.js'

const DAY = 86_400_000
const KEY = 'test-api-key'

let dir: string
let sim: CloudSimulator
let api: NgrokApiClient
let logger: ReturnType<typeof recordingLogger>


function registration(extra: Partial<RegistrationOptions> = {}): Registration {
  return new Registration({ api, stateDir: dir, logger, hostname: 'build-07', ...extra })
}

const posts = () => sim.apiRequests().filter((r) => r.method === 'POST' && r.path === '/kubernetes_operators')
const patches = () => sim.apiRequests().filter((r) => r.method === 'PATCH')
const deletes = () => sim.apiRequests().filter((r) => r.method === 'DELETE')
const operatorIds = () => sim.listOperators().map((o) => o.id)

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p
  } catch (e) {
    return e as Error
  }
  assert.fail('expected a rejection')
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ngrokd-reg-'))
  sim = await CloudSimulator.start({ apiKey: KEY })
  api = new NgrokApiClient({ apiKey: KEY, baseUrl: sim.apiUrl, sleep: async () => {} })
  logger = recordingLogger()
})

afterEach(async () => {
  await sim.stop()
  await rm(dir, { recursive: true, force: true })
})

describe('Registration.ensure', () => {
  it('keeps a saved, valid registration working while the API is down, and fails without one', async () => {
    const first = await registration().ensure()
    sim.injectApiFault({ kind: 'server-error', status: 503, method: 'GET', count: 20 })
    const again = registration()
    const info = await again.ensure()
    assert.equal(info.operatorId, first.operatorId)
    assert.equal(info.ingressEndpoint, first.ingressEndpoint)
    assert.equal(again.credentials().certPem, first.certPem)
    assert.equal(posts().length, 1, 'no second registration during the outage')

    await rm(join(dir, 'client.crt'), { force: true })
    await assert.rejects(registration().ensure(), (e: unknown) => isNgrokdError(e))
  })

  it('registers on first start with the body PROTOCOL.md gives, and saves the state', async () => {
    const info = await registration().ensure()
    assert.equal(posts().length, 1)
    const body = posts()[0]!.body as Required<OperatorCreate>
    assert.deepEqual(Object.keys(body).sort(), ['binding', 'deployment', 'description', 'enabled_features', 'metadata', 'region'])
    assert.equal(body.description, 'ngrokd on build-07')
    assert.deepEqual(body.deployment, { name: 'ngrokd', version: CORE_VERSION })
    assert.deepEqual(body.enabled_features, ['bindings'])
    assert.equal(body.region, 'global')
    assert.deepEqual(Object.keys(body.binding).sort(), ['csr', 'endpoint_selectors'])
    assert.deepEqual(body.binding.endpoint_selectors, ['true'])
    assert.equal(parseCsr(body.binding.csr!).curve, 'P-256') // parseCsr throws unless the signature verifies

    const machineId = (await readFile(join(dir, 'machine-id'), 'utf8')).trim()
    assert.match(machineId, /^[0-9a-f-]{36}$/)
    assert.deepEqual(JSON.parse(body.metadata), { ngrokd_machine_id: machineId, hostname: 'build-07' })

    assert.match(info.operatorId, /^k8sop_/)
    assert.equal(info.ingressEndpoint, sim.ingressEndpoint)
    assert.ok(parseCertificate(info.certPem).matchesKey(info.keyPem))
    assert.equal(info.notAfter.getTime(), parseCertificate(info.certPem).notAfter.getTime())

    assert.equal(await readFile(join(dir, 'client.key'), 'utf8'), info.keyPem)
    assert.equal(await readFile(join(dir, 'client.crt'), 'utf8'), info.certPem)
    const stored = JSON.parse(await readFile(join(dir, 'operator.json'), 'utf8'))
    assert.equal(stored.operatorId, info.operatorId)
    assert.equal(stored.machineId, machineId)
    assert.equal(stored.ingressEndpoint, info.ingressEndpoint)
    assert.equal(stored.notAfter, info.notAfter.toISOString())
  })

  it('writes the key file 0600 even under a permissive umask', async () => {
    const old = process.umask(0)
    try {
      await registration().ensure()
    } finally {
      process.umask(old)
    }
    assert.equal((await stat(join(dir, 'client.key'))).mode & 0o777, 0o600)
  })

  it('reuses the saved registration on the next start without POST or PATCH', async () => {
    const first = await registration().ensure()
    const before = sim.apiRequests().length
    const second = await registration().ensure()
    const after = sim.apiRequests().slice(before)
    assert.deepEqual(
      after.map((r) => `${r.method} ${r.path}${r.query}`),
      [`GET /kubernetes_operators/${first.operatorId}`],
    )
    assert.equal(second.operatorId, first.operatorId)
    assert.equal(second.certPem, first.certPem)
    assert.equal(second.keyPem, first.keyPem)
  })

  it('saves the registration again from memory after its state dir was removed: the next start reuses the operator', async () => {
    const reg = registration()
    assert.equal(await reg.saveAgain(), false, 'nothing to save before ensure()')
    const first = await reg.ensure()
    const machineId = await readFile(join(dir, 'machine-id'), 'utf8')
    await rm(dir, { recursive: true })
    assert.equal(await reg.saveAgain(), true)
    assert.equal(await readFile(join(dir, 'machine-id'), 'utf8'), machineId)
    assert.equal(await readFile(join(dir, 'client.key'), 'utf8'), first.keyPem)
    assert.equal((await stat(join(dir, 'client.key'))).mode & 0o777, 0o600)
    assert.equal((await stat(dir)).mode & 0o777, 0o700)
    const before = sim.apiRequests().length
    const again = await registration().ensure()
    assert.equal(again.operatorId, first.operatorId)
    assert.equal(again.certPem, first.certPem)
    assert.deepEqual(sim.apiRequests().slice(before).map((r) => r.method), ['GET'], 'reused: no POST, no PATCH')
  })

  it('sends the configured region, deployment name and description', async () => {
    await registration({ region: 'eu', deploymentName: 'laptop', description: 'dev box' }).ensure()
    const body = posts()[0]!.body as Required<OperatorCreate>
    assert.equal(body.region, 'eu')
    assert.deepEqual(body.deployment, { name: 'laptop', version: CORE_VERSION })
    assert.equal(body.description, 'dev box')
  })

  it('has no ingress endpoint when the API names none (the caller decides, loudly), and keeps that across a restart', async () => {
    sim.setIngressEndpoint('')
    const info = await registration().ensure()
    assert.equal(info.ingressEndpoint, undefined)
    assert.equal(JSON.parse(await readFile(join(dir, 'operator.json'), 'utf8')).ingressEndpoint, '')
    assert.equal((await registration().ensure()).ingressEndpoint, undefined)
  })

  it('an ingress endpoint it cannot read costs no registration: said at error once, none deleted, the default dialled', async () => {
    sim.setIngressEndpoint('a:b:c')
    const reg = registration()
    const info = await reg.ensure()
    assert.equal(info.ingressEndpoint, undefined)
    await reg.renewIfNeeded()
    assert.equal(posts().length, 1)
    assert.equal(deletes().length, 0, 'the new registration stands')
    const said = logger.at('error')
    assert.equal(said.length, 1)
    assert.match(said[0]!.msg, /binding\.ingress_endpoint "a:b:c" is not host:port: keeping the registration; connections go to ingress\.endpoint when it is set, else to kubernetes-binding-ingress\.ngrok\.io:443/)
    assert.equal((await registration().ensure()).ingressEndpoint, undefined, 'a restart reuses it')
    assert.equal(posts().length, 1)
  })

  it('appends :443 to an ingress endpoint without a port', async () => {
    sim.setIngressEndpoint('binding-ingress.example.test')
    const info = await registration().ensure()
    assert.equal(info.ingressEndpoint, 'binding-ingress.example.test:443')
  })

  it('after losing its state, finds the earlier registration by machine id and PATCHes a fresh CSR', async () => {
    const first = await registration().ensure()
    // an operator of somebody else on the same account must be left alone
    sim.addOperator({ metadata: '{"owned-by":"ngrok-operator"}', enabled_features: ['bindings'] })
    for (const f of ['operator.json', 'client.key', 'client.crt']) await rm(join(dir, f))

    const second = await registration().ensure()
    assert.equal(posts().length, 1, 'no second registration')
    assert.equal(second.operatorId, first.operatorId)
    assert.equal(patches().length, 1)
    const patch = patches()[0]!
    assert.equal(patch.path, `/kubernetes_operators/${first.operatorId}`)
    const body = patch.body as OperatorUpdate
    assert.equal(parseCsr(body.binding!.csr!).curve, 'P-256') // parseCsr throws unless the signature verifies
    assert.notEqual(second.keyPem, first.keyPem)
    assert.ok(parseCertificate(second.certPem).matchesKey(second.keyPem))
    assert.equal(sim.listOperators().length, 2)
    assert.equal(deletes().length, 0)
  })

  it('registers anew when the saved registration is gone at ngrok (404)', async () => {
    const first = await registration().ensure()
    for (const id of operatorIds()) sim.removeOperator(id)
    const second = await registration().ensure()
    assert.notEqual(second.operatorId, first.operatorId)
    assert.equal(posts().length, 2)
    assert.deepEqual(operatorIds(), [second.operatorId])
  })

  it('deletes a new registration whose state cannot be saved, then rethrows', async () => {
    let certWrites = 0
    const failing: RegistrationOptions['writeFile'] = async (path, data, options) => {
      // the first write is the room kept for the certificate before the create; the second, the certificate
      if (path.endsWith('client.crt.next') && ++certWrites === 2) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' })
      await writeFileAtomic(path, data, options)
    }
    const e = await rejection(registration({ writeFile: failing }).ensure())
    assert.ok(isNgrokdError(e, 'NGROKD_ERR_STATE'))
    // what is wrong and its fix, by the errno: a full disk is not a question of ownership
    assert.equal(e.message, `registration: cannot write ${join(dir, 'client.crt.next')}: no space left on its device (ENOSPC)`)
    assert.equal(e.hint, `free space on the file system of ${dir} (df -h ${dir}), or set state_dir to a directory on another file system`)
    assert.equal(posts().length, 1)
    assert.equal(deletes().length, 1)
    assert.equal(sim.listOperators().length, 0, 'no orphan left at ngrok')
    assert.equal(await stat(join(dir, 'client.key.next')).catch(() => undefined), undefined, 'the new key without its certificate is not left behind')
  })

  it('a stop between saving the new key (with its certificate\'s room) and ngrok\'s answer leaves the old pair; a lost answer is found again by machine id', async () => {
    const first = await registration().ensure()
    // what a re-key saves before it asks the API, captured as a stop then would leave it
    const staged = new Map<string, string>()
    const reg = registration({
      writeFile: async (path, data, options) => {
        if (path.endsWith('.next')) staged.set(path, String(data))
        await writeFileAtomic(path, data, options)
      },
    })
    await reg.ensure()
    sim.injectApiFault({ kind: 'server-error', status: 503, method: 'PATCH' })
    await rejection(reg.renewNow())
    sim.resetFaults()
    assert.deepEqual([...staged.keys()].sort(), [join(dir, 'client.crt.next'), join(dir, 'client.key.next')], 'both saved before the PATCH')
    assert.equal(await stat(join(dir, 'client.key.next')).catch(() => undefined), undefined, 'a failed PATCH removes them again')
    const leaveStaged = async () => {
      for (const [path, data] of staged) await writeFile(path, data)
    }
    // killed before the answer came: the old pair stands, the .next files are dropped
    await leaveStaged()
    const again = await registration().ensure()
    assert.equal(again.operatorId, first.operatorId)
    assert.equal(again.certPem, first.certPem)
    for (const f of ['client.key.next', 'client.crt.next']) assert.equal(await stat(join(dir, f)).catch(() => undefined), undefined, `${f} dropped`)
    // killed before the answer came, with operator.json lost too: found again by machine id and re-keyed, not created anew
    await leaveStaged()
    await rm(join(dir, 'operator.json'))
    const found = await registration().ensure()
    assert.equal(found.operatorId, first.operatorId)
    assert.equal(posts().length, 1)
    assert.ok(parseCertificate(found.certPem).matchesKey(found.keyPem))
  })

  it('re-keys when the key and certificate on disk do not match (crash between writes)', async () => {
    const first = await registration().ensure()
    const other = await registration({ stateDir: join(dir, 'other'), machineId: 'other-machine' }).ensure()
    await writeFile(join(dir, 'client.key'), other.keyPem, { mode: 0o600 })
    const again = await registration().ensure()
    assert.equal(again.operatorId, first.operatorId)
    assert.ok(parseCertificate(again.certPem).matchesKey(again.keyPem))
    assert.equal(patches().filter((p) => p.path.endsWith(first.operatorId)).length, 1)
  })

  it('a new key and certificate whose saving a crash cut short are put in place whole, or dropped whole', async () => {
    const first = await registration().ensure()
    const other = await registration({ stateDir: join(dir, 'other'), machineId: 'other-machine' }).ensure()
    const onDisk = async () => ({ key: await readFile(join(dir, 'client.key'), 'utf8'), cert: await readFile(join(dir, 'client.crt'), 'utf8') })
    const gone = async (name: string) => assert.equal(await stat(join(dir, name)).catch(() => undefined), undefined, `${name} is gone`)
    // cut off after the new key was saved, before its certificate: the old pair stays
    await writeFile(join(dir, 'client.key.next'), other.keyPem, { mode: 0o600 })
    await Registration.readSaved({ stateDir: dir })
    assert.deepEqual(await onDisk(), { key: first.keyPem, cert: first.certPem })
    await gone('client.key.next')
    // cut off after the key was renamed in place, before the certificate: the new pair is completed
    await writeFile(join(dir, 'client.key'), other.keyPem, { mode: 0o600 })
    await writeFile(join(dir, 'client.crt.next'), other.certPem)
    await Registration.readSaved({ stateDir: dir })
    assert.deepEqual(await onDisk(), { key: other.keyPem, cert: other.certPem })
    await gone('client.crt.next')
  })

  it('PATCHes the whole state, with a CSR for the current key, when the configuration changed', async () => {
    const first = await registration().ensure()
    const second = await registration({ selectors: ["endpoint.host.endsWith('.prod')"] }).ensure()
    assert.equal(patches().length, 1)
    const body = patches()[0]!.body as Required<OperatorUpdate>
    assert.deepEqual(Object.keys(body).sort(), ['binding', 'deployment', 'description', 'enabled_features', 'metadata', 'region'])
    assert.deepEqual(body.binding, { endpoint_selectors: ["endpoint.host.endsWith('.prod')"], csr: body.binding.csr })
    assert.equal(parseCsr(body.binding.csr!).publicKey.export({ format: 'pem', type: 'spki' }), parseCertificate(first.certPem).publicKey.export({ format: 'pem', type: 'spki' }))
    assert.equal(second.keyPem, first.keyPem, 'the key stays; the certificate ngrok re-issued for it is saved')
    assert.ok(parseCertificate(second.certPem).matchesKey(second.keyPem))
    assert.equal(await readFile(join(dir, 'client.crt'), 'utf8'), second.certPem)
    assert.deepEqual(sim.listOperators().find((o) => o.id === first.operatorId)!.binding!.endpoint_selectors, ["endpoint.host.endsWith('.prod')"])
    // and nothing is sent again once the registration matches
    await registration({ selectors: ["endpoint.host.endsWith('.prod')"] }).ensure()
    assert.equal(patches().length, 1)
  })

  it('a configuration change ngrok does not take leaves the registration as ngrok has it, serving, and is tried again after a minute, doubling', async () => {
    const first = await registration().ensure()
    const selectors = ["endpoint.host.endsWith('.prod')"]
    sim.injectApiFault({ kind: 'server-error', status: 503, method: 'PATCH', count: 1_000 })
    let offset = 0
    const reg = registration({ selectors, now: () => Date.now() + offset })
    const info = await reg.ensure()
    assert.equal(info.operatorId, first.operatorId)
    assert.equal(reg.credentials().certPem, first.certPem, 'the saved pair serves')
    assert.ok(logger.records.some((r) => r.level === 'warn' && /^updating the registration at ngrok failed \(endpoint selectors changed\): .*; serving with the registration as ngrok has it/s.test(r.msg)), JSON.stringify(logger.at('warn').map((r) => r.msg)))
    const tried = () => patches().length
    const asked = tried()
    assert.ok(asked >= 1)
    const pending = reg.updatePending!
    assert.deepEqual(pending.changed, ['endpoint selectors'])
    assert.match(pending.error, /503/)
    assert.equal(Date.parse(pending.retryAt) - Date.parse(pending.since), 60_000, 'a minute')

    assert.equal(await reg.renewIfNeeded(), false)
    assert.equal(tried(), asked, 'not before a minute')
    offset = 61_000
    assert.equal(await reg.renewIfNeeded(), false, 'refused again')
    const askedTwice = tried()
    assert.ok(askedTwice > asked)
    offset = 61_000 + 61_000
    assert.equal(await reg.renewIfNeeded(), false)
    assert.equal(tried(), askedTwice, 'the second wait is two minutes')
    assert.equal(reg.updatePending!.since, pending.since, 'since the first refusal')

    sim.resetFaults()
    offset = 61_000 + 121_000
    assert.equal(await reg.renewIfNeeded(), true, 'ngrok re-issued the certificate with the update')
    assert.equal(patches().filter((r) => r.status === 200).length, 1)
    assert.deepEqual(sim.listOperators().find((o) => o.id === first.operatorId)!.binding!.endpoint_selectors, selectors)
    assert.equal(reg.credentials().keyPem, first.keyPem)
    assert.notEqual(reg.credentials().certPem, first.certPem)
    assert.equal(await readFile(join(dir, 'client.crt'), 'utf8'), reg.credentials().certPem)
    assert.equal(reg.updatePending, undefined)
    offset += 3_600_000
    const settled = sim.apiRequests().length
    assert.equal(await reg.renewIfNeeded(), false)
    assert.equal(sim.apiRequests().length, settled, 'nothing is due once the registration matches')
  })

  it('while the API stays down, the saved registration is compared with ngrok\'s every minute, not after a wait that doubled through the outage', async () => {
    await registration().ensure()
    const selectors = ["endpoint.host.endsWith('.prod')"]
    sim.injectApiFault({ kind: 'server-error', status: 503, method: 'GET', count: 100_000 })
    let offset = 0
    const reg = registration({ selectors, now: () => Date.now() + offset })
    await reg.ensure()
    for (let minute = 1; minute <= 5; minute++) {
      offset = minute * 61_000
      const asked = sim.apiRequests().length
      assert.equal(await reg.renewIfNeeded(), false)
      assert.ok(sim.apiRequests().length > asked, `asked again at minute ${minute}`)
    }
    sim.resetFaults()
    offset = 6 * 61_000
    assert.equal(await reg.renewIfNeeded(), true, 'the first minute after the API is back')
    assert.equal(patches().length, 1)
  })

  it('a start stopped while its update is under way is a stop, not a refused update', async () => {
    await registration().ensure()
    sim.injectApiFault({ kind: 'latency', ms: 60_000, method: 'PATCH', count: 1 })
    const stop = new AbortController()
    const reg = new Registration({ api: new NgrokApiClient({ apiKey: KEY, baseUrl: sim.apiUrl, sleep: async () => {}, signal: stop.signal }), stateDir: dir, logger, hostname: 'build-07', description: 'another desk' })
    const started = reg.ensure()
    await waitUntil(() => sim.stats().api.inFlight > 0, { what: 'the PATCH under way', timeoutMs: 30_000 })
    stop.abort()
    const e = await rejection(started)
    assert.ok(isNgrokdError(e, 'NGROKD_ERR_ABORTED'), String(e))
    assert.ok(!logger.records.some((r) => r.msg.startsWith('updating the registration at ngrok failed')))
  })

  it('a start on the saved registration while the API is down compares it with ngrok\'s once the API answers', async () => {
    const first = await registration().ensure()
    const selectors = ["endpoint.host.endsWith('.prod')"]
    sim.injectApiFault({ kind: 'server-error', status: 503, method: 'GET', count: 1_000 })
    let offset = 0
    const reg = registration({ selectors, now: () => Date.now() + offset })
    assert.equal((await reg.ensure()).operatorId, first.operatorId)
    assert.equal(patches().length, 0)
    assert.equal(reg.updatePending, undefined, 'not known to differ: status shows the API error itself')
    sim.resetFaults()
    offset = 61_000
    assert.equal(await reg.renewIfNeeded(), true)
    assert.equal(patches().length, 1)
    assert.deepEqual(sim.listOperators().find((o) => o.id === first.operatorId)!.binding!.endpoint_selectors, selectors)
  })

  it('narrows a key file that others can read to 0600', async () => {
    await registration().ensure()
    await chmod(join(dir, 'client.key'), 0o644)
    await registration().ensure()
    assert.equal((await stat(join(dir, 'client.key'))).mode & 0o777, 0o600)
  })

  it('refuses a registration file that is a link or a folder, and never changes the mode of what a link leads to', async () => {
    await registration().ensure()
    const elsewhere = join(dir, '..', `elsewhere-${process.pid}.key`)
    await writeFile(elsewhere, await readFile(join(dir, 'client.key')), { mode: 0o644 })
    try {
      await rm(join(dir, 'client.key'))
      await symlink(elsewhere, join(dir, 'client.key'))
      const linked = await rejection(registration().ensure())
      assert.ok(isNgrokdError(linked, 'NGROKD_ERR_STATE'), String(linked))
      assert.match(linked.message, /client\.key is a symbolic link/)
      assert.match((linked as NgrokdError).hint!, /rm -r .*client\.key/)
      assert.equal((await stat(elsewhere)).mode & 0o777, 0o644, 'the file the link leads to is left as it was')
    } finally {
      await rm(elsewhere, { force: true })
    }
    await rm(join(dir, 'client.key'))
    await mkdir(join(dir, 'operator.json.d'))
    await rm(join(dir, 'operator.json'))
    await rename(join(dir, 'operator.json.d'), join(dir, 'operator.json'))
    const folder = await rejection(registration().ensure())
    assert.ok(isNgrokdError(folder, 'NGROKD_ERR_STATE'), String(folder))
    assert.match(folder.message, /operator\.json is a directory/)
  })

  it('says so when the certificate is valid only from later than this machine\'s clock (a clock behind)', async () => {
    await registration().ensure()
    assert.deepEqual(logger.at('error'), [], 'valid by this clock: nothing said')
    await registration({ now: () => Date.now() - 2 * 3_600_000 }).ensure()
    const [said] = logger.at('error')
    assert.ok(said, 'an error is logged')
    assert.ok(isNgrokdError(said.obj.err, 'NGROKD_ERR_CERT'))
    assert.match(said.msg, /valid only from .*, 1[12][0-9] min after this machine's clock .*: its clock is behind/)
    assert.match((said.obj.err as NgrokdError).hint!, /timedatectl set-ntp true/)
  })

  it('reports an API failure as it is and leaves no state behind', async () => {
    sim.setBindingsEnabled(false) // the account lacks the bindings feature: 400 ERR_NGROK_19002
    const e = await rejection(registration().ensure())
    assert.ok(isNgrokdError(e, 'NGROKD_ERR_API'))
    assert.match(e.message, /ERR_NGROK_19002/)
    await assert.rejects(stat(join(dir, 'operator.json')), { code: 'ENOENT' })
    await assert.rejects(stat(join(dir, 'client.key.next')), { code: 'ENOENT' }, 'the key saved before the create is removed again')
  })

  it('never logs key material', async () => {
    const reg = registration({ now: () => Date.now() + 340 * DAY })
    await reg.ensure()
    const text = JSON.stringify(logger.records)
    assert.ok(logger.records.length > 0)
    assert.ok(!text.includes('PRIVATE KEY'))
    assert.ok(!text.includes(reg.credentials().keyPem.split('\n')[1]!))
  })
})

describe('Registration.readSaved', () => {
  it('reads a usable saved registration without asking the API, and nothing else', async () => {
    assert.equal(await Registration.readSaved({ stateDir: dir }), undefined, 'no state yet')
    const first = await registration().ensure()
    const before = sim.apiRequests().length
    const saved = await Registration.readSaved({ stateDir: dir })
    assert.equal(sim.apiRequests().length, before, 'not one API request')
    assert.equal(saved?.operatorId, first.operatorId)
    assert.equal(saved?.ingressEndpoint, first.ingressEndpoint)
    assert.equal(saved?.certPem, first.certPem)
    assert.equal(saved?.keyPem, first.keyPem)

    const expired = await Registration.readSaved({ stateDir: dir, now: () => first.notAfter.getTime() + 1 })
    assert.equal(expired, undefined, 'an expired certificate is not used')
    const other = await registration({ stateDir: join(dir, 'other'), machineId: 'other-machine' }).ensure()
    await writeFile(join(dir, 'client.key'), other.keyPem, { mode: 0o600 })
    assert.equal(await Registration.readSaved({ stateDir: dir }), undefined, 'a key that does not match the certificate is not used')
  })
})

describe('Registration renewal', () => {
  it('does nothing while more than 30 days remain', async () => {
    const reg = registration({ now: () => Date.now() + 300 * DAY })
    await reg.ensure()
    const before = reg.credentials()
    assert.equal(await reg.renewIfNeeded(), false)
    assert.equal(patches().length, 0)
    assert.deepEqual(reg.credentials(), before)
  })

  it('re-keys and PATCHes a new CSR when under 30 days remain; credentials() switches to the new pair', async () => {
    let offset = 0
    const reg = registration({ now: () => Date.now() + offset })
    const first = await reg.ensure()
    offset = 340 * DAY // a 365-day certificate now has about 25 days left
    sim.setClockOffset(offset) // the simulated cloud issues certificates on the same clock
    assert.equal(await reg.renewIfNeeded(), true)
    assert.equal(patches().length, 1)
    const body = patches()[0]!.body as OperatorUpdate
    // the whole desired state, as ngrok's operator sends it: never half a binding
    assert.deepEqual(Object.keys(body).sort(), ['binding', 'deployment', 'description', 'enabled_features', 'metadata', 'region'])
    assert.deepEqual(Object.keys(body.binding!).sort(), ['csr', 'endpoint_selectors'])
    const renewed = reg.credentials()
    assert.notEqual(renewed.keyPem, first.keyPem)
    assert.notEqual(renewed.certPem, first.certPem)
    assert.ok(parseCertificate(renewed.certPem).matchesKey(renewed.keyPem))
    assert.equal(parseCsr(body.binding!.csr!).publicKey.export({ format: 'pem', type: 'spki' }), parseCertificate(renewed.certPem).publicKey.export({ format: 'pem', type: 'spki' }))
    assert.equal(await readFile(join(dir, 'client.key'), 'utf8'), renewed.keyPem)
    assert.equal(await readFile(join(dir, 'client.crt'), 'utf8'), renewed.certPem)
    assert.equal(reg.info!.operatorId, first.operatorId)
    assert.equal(await reg.renewIfNeeded(), false, 'the new certificate has a year left')
    assert.equal(patches().length, 1)
  })

  it('takes the ingress endpoint from the renewal reply: a certificate works only at the ingress that issued it', async () => {
    let offset = 0
    const reg = registration({ now: () => Date.now() + offset })
    assert.equal((await reg.ensure()).ingressEndpoint, sim.ingressEndpoint)
    sim.setIngressEndpoint('binding-ingress-2.example.test:8443')
    offset = 340 * DAY
    sim.setClockOffset(offset)
    assert.equal(await reg.renewIfNeeded(), true)
    assert.equal(reg.info!.ingressEndpoint, 'binding-ingress-2.example.test:8443')
    assert.equal(JSON.parse(await readFile(join(dir, 'operator.json'), 'utf8')).ingressEndpoint, 'binding-ingress-2.example.test:8443')
  })

  it('a start after ngrok names another ingress asks for a certificate there: the whole state PATCHed with a CSR, the reply\'s certificate and ingress saved', async () => {
    const first = await registration().ensure()
    sim.setIngressEndpoint('binding-ingress-2.example.test:8443')
    const second = await registration().ensure()
    assert.equal(patches().length, 1)
    assert.deepEqual(Object.keys(patches()[0]!.body as object).sort(), ['binding', 'deployment', 'description', 'enabled_features', 'metadata', 'region'])
    assert.equal(second.ingressEndpoint, 'binding-ingress-2.example.test:8443')
    assert.notEqual(second.certPem, first.certPem, 'a certificate issued with the new ingress')
    assert.equal(await readFile(join(dir, 'client.crt'), 'utf8'), second.certPem)
    assert.equal(JSON.parse(await readFile(join(dir, 'operator.json'), 'utf8')).ingressEndpoint, 'binding-ingress-2.example.test:8443')
    assert.ok(logger.records.some((r) => r.level === 'info' && r.msg === 'registration updated at ngrok (ingress endpoint)'), JSON.stringify(logger.records.map((r) => r.msg)))
    await registration().ensure()
    assert.equal(patches().length, 1, 'nothing is sent again once the certificate is the new ingress\'s')
  })

  it('when ngrok does not answer that update, the saved pair keeps the ingress that issued it, and the update is tried again (after a restart too)', async () => {
    const first = await registration().ensure()
    sim.setIngressEndpoint('binding-ingress-2.example.test:8443')
    sim.injectApiFault({ kind: 'server-error', status: 503, method: 'PATCH', count: 1_000 })
    const reg = registration()
    const info = await reg.ensure()
    assert.equal(info.ingressEndpoint, first.ingressEndpoint, 'the certificate and the ingress it was issued for, together')
    assert.equal(info.certPem, first.certPem)
    assert.deepEqual(reg.updatePending!.changed, ['ingress endpoint'])
    assert.equal(JSON.parse(await readFile(join(dir, 'operator.json'), 'utf8')).ingressEndpoint, first.ingressEndpoint, 'the saved ingress is the certificate\'s')
    sim.resetFaults()
    const restarted = await registration().ensure()
    assert.equal(restarted.ingressEndpoint, 'binding-ingress-2.example.test:8443')
    assert.notEqual(restarted.certPem, first.certPem)
  })

  it('keeps the old pair in use when the new one cannot be saved', async () => {
    let now = Date.now()
    let failWrites = false
    const reg = registration({
      now: () => now,
      writeFile: async (path, data, options) => {
        if (failWrites && path.endsWith('client.crt.next')) throw new Error('EIO')
        await writeFileAtomic(path, data, options)
      },
    })
    await reg.ensure()
    const before = reg.credentials()
    now += 340 * DAY
    failWrites = true
    const e = await rejection(reg.renewIfNeeded())
    assert.ok(isNgrokdError(e, 'NGROKD_ERR_STATE'))
    assert.deepEqual(reg.credentials(), before)
    assert.equal(deletes().length, 0, 'a renewal never deletes the registration')
  })

  it('renews on start when the saved certificate is about to expire', async () => {
    await registration().ensure()
    const reg = registration({ now: () => Date.now() + 350 * DAY })
    const info = await reg.ensure()
    assert.equal(patches().length, 1)
    assert.ok(parseCertificate(info.certPem).matchesKey(info.keyPem))
  })

  it('starts with a still-valid certificate when renewal fails at start', async () => {
    const first = await registration().ensure()
    sim.setBindingsEnabled(false) // the renewal's PATCH (bindings enabled) is refused with 400 ERR_NGROK_19002
    const reg = registration({ now: () => Date.now() + 350 * DAY })
    const info = await reg.ensure()
    assert.equal(info.certPem, first.certPem)
    assert.equal(patches().length, 1)
    assert.equal(patches()[0]!.status, 400)
  })

  it('a renewal that failed while the clock was ahead is asked for again once the clock is set back, not after the size of the step', async () => {
    await registration().ensure()
    sim.setBindingsEnabled(false)
    let offset = 345 * DAY // ahead: renewal due, and refused
    const reg = registration({ now: () => Date.now() + offset })
    await reg.ensure()
    assert.equal(patches().length, 1)
    sim.setBindingsEnabled(true)
    offset = 340 * DAY // NTP sets the clock back five days: still due, and the wait set before the step is no reason to wait days
    assert.equal(await reg.renewIfNeeded(), true)
    assert.equal(patches().filter((r) => r.status === 200).length, 1)
  })

  it('a renewal ngrok refuses is asked for again after a minute, doubling up to an hour, not on every poll; a success ends the wait', async () => {
    await registration().ensure()
    sim.setBindingsEnabled(false) // the renewal's PATCH is refused with 400 ERR_NGROK_19002
    let offset = 340 * DAY
    const reg = registration({ now: () => Date.now() + offset })
    await reg.ensure()
    assert.equal(patches().length, 1, 'the start asked once')
    for (let poll = 0; poll < 5; poll++) assert.equal(await reg.renewIfNeeded(), false)
    assert.equal(patches().length, 1, 'polls within the minute ask nothing')
    offset += 61_000
    await assert.rejects(reg.renewIfNeeded(), /19002/)
    assert.equal(patches().length, 2)
    offset += 61_000
    assert.equal(await reg.renewIfNeeded(), false, 'the second wait is two minutes')
    assert.equal(patches().length, 2)
    offset += 61_000
    await assert.rejects(reg.renewIfNeeded(), /19002/)
    assert.equal(patches().length, 3)
    sim.setBindingsEnabled(true)
    offset += 4 * 60_000 + 1_000
    assert.equal(await reg.renewIfNeeded(), true)
    assert.equal(patches().filter((r) => r.status === 200).length, 1)
  })

  it('does not renew a short-lived certificate on every call', async () => {
    sim.setCertValidity(1 * DAY)
    const reg = registration()
    await reg.ensure()
    assert.equal(await reg.renewIfNeeded(), false)
    assert.equal(patches().length, 0)
  })

  it('counts a certificate of minutes from when it came, not from its backdated notBefore: not due on every poll', async () => {
    let offset = 0
    sim.setCertValidity(100_000) // 100 s, notBefore a minute back as CAs backdate it
    const reg = registration({ now: () => Date.now() + offset })
    await reg.ensure()
    assert.equal(await reg.renewIfNeeded(), false)
    offset = 20_000 // a fifth used
    assert.equal(await reg.renewIfNeeded(), false)
    assert.equal(patches().length, 0)
    offset = 40_000 // past a third
    sim.setClockOffset(offset)
    assert.equal(await reg.renewIfNeeded(), true)
  })

  it('a year\'s certificate that came with 25 days left is said at error and renewed an hour later, not on every poll; after a restart at once (its lifetime counts from notBefore)', async () => {
    sim.setCertValidity(365 * DAY)
    let offset = 0
    const reg = registration({ now: () => Date.now() + offset })
    await reg.ensure()
    sim.setClockOffset(-340 * DAY)
    await reg.renewNow() // the CA's clock is behind: the certificate has 25 days left as it comes
    sim.setClockOffset(0)
    const renewed = patches().length
    assert.equal(await reg.renewIfNeeded(), false, 'not asked again at once')
    assert.equal(await reg.renewIfNeeded(), false)
    assert.equal(patches().length, renewed)
    const said = logger.at('error')
    assert.equal(said.length, 1, 'said once')
    assert.match(said[0]!.msg, /was due for renewal \(2[45] days left\) by this machine's clock .* when it came: the clock is ahead of ngrok's; asking for another in 60 min/)
    offset = 61 * 60_000
    assert.equal(await reg.renewIfNeeded(), true, 'due an hour later')
    assert.equal(patches().length, renewed + 1)
    assert.equal(await reg.renewIfNeeded(), false, 'the new one is a whole year')
    sim.setClockOffset(-340 * DAY)
    await reg.renewNow()
    sim.setClockOffset(0)
    const before = patches().length
    await registration().ensure()
    assert.equal(patches().length, before + 1, 'a restart judges it the same: renewed as it loads')
  })

  it('a certificate that comes expired or due (this clock ahead of ngrok\'s) is said once at error and not re-keyed on every poll', async () => {
    sim.setCertValidity(365 * DAY)
    for (const [ahead, state] of [[340 * DAY, /was due for renewal/], [2 * 365 * DAY, /had expired .*refuses every connection/]] as const) {
      sim.setClockOffset(-ahead)
      logger.records.length = 0
      await rm(dir, { recursive: true, force: true })
      const reg = registration()
      await reg.ensure()
      const requests = sim.apiRequests().length
      for (let poll = 0; poll < 5; poll++) assert.equal(await reg.renewIfNeeded(), false)
      assert.equal(sim.apiRequests().length, requests, 'no re-key, no PATCH')
      const said = logger.at('error')
      assert.equal(said.length, 1, said.map((l) => l.msg).join('\n'))
      assert.match(`${said[0]!.msg}; ${(said[0]!.obj.err as NgrokdError).hint}`, state)
      assert.match((said[0]!.obj.err as NgrokdError).hint!, /timedatectl set-ntp true/)
    }
  })

  it('renews a 60-day certificate at 30 days left, as ngrok\'s operator does; one of 30 days once a third is used', async () => {
    let offset = 0
    sim.setCertValidity(60 * DAY)
    const reg = registration({ now: () => Date.now() + offset })
    await reg.ensure()
    offset = 29 * DAY // 31 days left
    assert.equal(await reg.renewIfNeeded(), false)
    offset = 35 * DAY // 25 days left
    sim.setClockOffset(offset)
    assert.equal(await reg.renewIfNeeded(), true)
    assert.equal(patches().length, 1)

    sim.setCertValidity(30 * DAY)
    await reg.renewNow() // a 30-day certificate from now on
    offset += 9 * DAY // 21 of 30 days left: more than two thirds
    assert.equal(await reg.renewIfNeeded(), false)
    offset += 2 * DAY // 19 days left
    sim.setClockOffset(offset)
    assert.equal(await reg.renewIfNeeded(), true)
  })
})

describe('Registration.deregister', () => {
  it('deletes the registration and removes the state files', async () => {
    const reg = registration()
    const { operatorId } = await reg.ensure()
    assert.deepEqual(await reg.deregister(), [operatorId])
    assert.equal(sim.listOperators().length, 0)
    for (const f of ['operator.json', 'client.key', 'client.crt', 'machine-id']) {
      await assert.rejects(stat(join(dir, f)), { code: 'ENOENT' }, f)
    }
  })

  it('without operator.json, deletes the registrations carrying this machine id', async () => {
    const { operatorId } = await registration().ensure()
    const other = sim.addOperator({ metadata: '{"owned-by":"ngrok-operator"}' })
    await rm(join(dir, 'operator.json'))
    assert.deepEqual(await registration().deregister(), [operatorId])
    assert.deepEqual(operatorIds(), [other.id])
  })
})

describe('Registration credentials in a real mTLS handshake', () => {
  it('the issued pair authenticates to a TLS server that trusts the CA', async () => {
    const reg = registration()
    const { operatorId } = await reg.ensure()
    const server = sim.issueServerCert(['localhost', '127.0.0.1'])
    const peers: string[] = []
    // client certificates come from the simulator's root; the server's chain ends at its intermediate
    const tlsServer = createServer({ key: server.keyPem, cert: server.certPem, ca: sim.caRootCertPem, requestCert: true, rejectUnauthorized: true }, (socket: TLSSocket) => {
      peers.push(socket.getPeerCertificate().subject.CN as string)
      socket.end('ok')
    })
    await new Promise<void>((resolve) => tlsServer.listen(0, '127.0.0.1', resolve))
    try {
      const { port } = tlsServer.address() as AddressInfo
      const { certPem, keyPem } = reg.credentials()
      const reply = await new Promise<string>((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', ca: sim.caRootCertPem, cert: certPem, key: keyPem }, () => {
          let data = ''
          socket.on('data', (c: Buffer) => (data += c.toString()))
          socket.on('end', () => resolve(data))
        })
        socket.on('error', reject)
      })
      assert.equal(reply, 'ok')
      assert.deepEqual(peers, [operatorId])
    } finally {
      await new Promise<void>((resolve) => tlsServer.close(() => resolve()))
    }
  })
})
