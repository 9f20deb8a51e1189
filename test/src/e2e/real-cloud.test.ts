// The ngrok cloud as ngrok's own sources show it (PROTOCOL.md §2 and §4): the ingress certificate
// chains to an intermediate CA whose root no client has, every ConnRequest carries pod_identity,
// and the ingress endpoint is taken from the latest registration reply.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, execFileSync } from 'node:child_process'
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { NGROKD_BIN, NGROK_INTERMEDIATE_CA_FILE } from '@ngrokd/core'
import { CloudSimulator, type EchoReply } from '@ngrokd/plugin-simulator'
import { netnsSkip } from '../helpers/netns.js'
import { netDriverCases } from '../helpers/net-drivers.js'
import { E2eDaemon } from '../helpers/e2e-daemon.js'
import { snapshotHostsFile } from '../helpers/hosts-guard.js'
import { httpRequest } from '../helpers/clients.js'

const run = promisify(execFile)
const net = netDriverCases('real')[0]!

describe('against the simulator in ngrok\'s real-chain shape', { skip: netnsSkip }, () => {
  let sim: CloudSimulator
  let dir: string
  const hosts = snapshotHostsFile()
  let endpointId = ''

  before(async () => {
    hosts.take()
    dir = mkdtempSync(join(tmpdir(), 'ngrokd-real-cloud-'))
    sim = await CloudSimulator.start()
    endpointId = sim.addEndpoint({ url: 'http://chain.e2e' }).id
  })

  after(async () => {
    await sim?.stop()
    rmSync(dir, { recursive: true, force: true })
    hosts.assertRestored()
  })

  test('a default config (no ca_file, no skip) verifies the ingress through the bundled ngrok intermediate', async () => {
    // In this private mount namespace the simulator's intermediate stands where ngrok's is installed:
    // the daemon runs its real default trust (Node's roots + that file, partial chains allowed).
    const stand = join(dir, 'intermediate.pem')
    writeFileSync(stand, sim.caCertPem)
    const installed = realpathSync(NGROK_INTERMEDIATE_CA_FILE)
    execFileSync('mount', ['--bind', stand, installed])
    const daemon = E2eDaemon.start({ name: 'real-default', sim, net, ingressCaPem: null })
    try {
      await daemon.waitReady((s) => s.services?.serving === 1)
      assert.equal(daemon.config.ingress.ca_file, undefined)
      const res = await httpRequest('http://chain.e2e/')
      assert.equal(res.json<EchoReply>().endpoint_id, endpointId)
      const status = await daemon.status()
      assert.equal(status.ingressVerification, 'verified')
      assert.match(status.ingressTrust, /Node's \d+ roots \+ ngrok's intermediate CA/)
      assert.equal(status.ingressEndpointSource, 'api')
      const doctor = await run(process.execPath, [NGROKD_BIN, 'doctor', '--json', '--config', daemon.configFile], { env: E2eDaemon.childEnv() }).catch((e: { stdout: string }) => e)
      const check = (JSON.parse(doctor.stdout) as { checks: Array<{ id: string; status: string; summary: string }> }).checks.find((c) => c.id === 'ingress.tls')
      assert.equal(check?.status, 'ok', JSON.stringify(check))
      assert.match(check!.summary, /verified by ngrok Intermediate CA \(bundled with ngrokd\)/)
    } finally {
      await daemon.dispose()
      execFileSync('umount', [installed])
    }
  })

  test('a ca_file holding only the intermediate verifies the ingress, added to the defaults or replacing them', async () => {
    for (const mode of ['add', 'replace']) {
      const daemon = E2eDaemon.start({ name: `real-${mode}`, sim, net, extraConfig: { ingress: { ca_mode: mode } } })
      try {
        await daemon.waitReady((s) => s.services?.serving === 1)
        assert.equal((await httpRequest('http://chain.e2e/')).status, 200, mode)
        const doctor = await run(process.execPath, [NGROKD_BIN, 'doctor', '--json', '--config', daemon.configFile], { env: E2eDaemon.childEnv() }).catch((e: { stdout: string }) => e)
        const check = (JSON.parse(doctor.stdout) as { checks: Array<{ id: string; summary: string }> }).checks.find((c) => c.id === 'ingress.tls')
        assert.match(check!.summary, /verified by ingress\.ca_file .*ingress-ca\.pem: ngrokd simulator Intermediate CA/, mode)
      } finally {
        await daemon.dispose()
      }
    }
  })

  test('without the intermediate (Node\'s roots only) the handshake fails loudly, naming the fix', async () => {
    const daemon = E2eDaemon.start({ name: 'real-noanchor', sim, net, ingressCaPem: null })
    try {
      await daemon.waitReady((s) => s.services?.serving === 1)
      await assert.rejects(httpRequest('http://chain.e2e/'))
      const doctor = await run(process.execPath, [NGROKD_BIN, 'doctor', '--json', '--config', daemon.configFile], { env: E2eDaemon.childEnv() }).catch((e: { stdout: string }) => e)
      const check = (JSON.parse(doctor.stdout) as { checks: Array<{ id: string; status: string; summary: string; hint?: string; code?: string }> }).checks.find((c) => c.id === 'ingress.tls')
      assert.equal(check?.status, 'fail')
      assert.equal(check?.code, 'NGROKD_ERR_INGRESS_TLS')
      assert.match(check!.summary, /unknown CA/)
      assert.match(check!.hint!, /ingress\.ca_file/)
    } finally {
      await daemon.dispose()
    }
  })

  test('every ConnRequest carries pod_identity (field 3): empty by default, the configured fields when set', async () => {
    const plain = E2eDaemon.start({ name: 'real-pod0', sim, net })
    try {
      await plain.waitReady((s) => s.services?.serving === 1)
      const before = sim.connRequests().length
      await httpRequest('http://chain.e2e/')
      const [req] = sim.connRequests().slice(before)
      assert.deepEqual(req?.podIdentity, {})
      assert.ok(req!.bodyHex.endsWith('1a00'), `field 3 as an empty message: ${req!.bodyHex}`)
    } finally {
      await plain.dispose()
    }
    const podIdentity = { name: 'laptop-7', namespace: 'dev', annotations: { 'k8s.ngrok.com/team': 'infra' } }
    const named = E2eDaemon.start({ name: 'real-pod1', sim, net, extraConfig: { ingress: { pod_identity: podIdentity } } })
    try {
      await named.waitReady((s) => s.services?.serving === 1)
      const before = sim.connRequests().length
      await httpRequest('http://chain.e2e/')
      assert.deepEqual(sim.connRequests().slice(before)[0]?.podIdentity, podIdentity)
    } finally {
      await named.dispose()
    }
  })
})
