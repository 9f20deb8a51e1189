import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import type { EndpointObject } from './types.js'

// Run the CLI the way this test runs: compiled (.js) or through the tsx loader (.ts).
const self = fileURLToPath(import.meta.url)
const cli = self.replace(/cli\.test\.(ts|js)$/, 'cli.$1')
const loaderArgs = process.execArgv.flatMap((a, i, all) =>
  a === '--import' || a === '--loader' ? [a, all[i + 1]!] : a.startsWith('--import=') || a.startsWith('--loader=') ? [a] : [],
)

describe('ngrokd-simulator CLI', () => {
  it('prints its addresses as one JSON line, writes the CA, seeds endpoints, exits 0 on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ngrokd-sim-'))
    const caOut = join(dir, 'ca.pem')
    const child = spawn(
      process.execPath,
      [...loaderArgs, cli, '--ca-out', caOut, '--api-key', 'cli-key', '--endpoint', 'http://api.prod', '--endpoint', 'tcp://bulk.prod:9000=bulk'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
    try {
      const line = await new Promise<string>((resolve, reject) => {
        createInterface({ input: child.stdout }).once('line', resolve)
        child.once('exit', () => reject(new Error(`cli exited early: ${stderr}`)))
      })
      const info = JSON.parse(line) as { apiUrl: string; apiKey: string; ingressEndpoint: string; caFile: string; adminUrl: string }
      assert.equal(info.apiKey, 'cli-key')
      assert.match(info.apiUrl, /^http:\/\/127\.0\.0\.1:\d+$/)
      assert.equal(info.adminUrl, `${info.apiUrl}/_admin`)
      assert.match(info.ingressEndpoint, /^localhost:\d+$/)
      assert.equal(info.caFile, caOut)
      const caPem = readFileSync(caOut, 'utf8')
      assert.match(caPem, /^-----BEGIN CERTIFICATE-----/)
      assert.equal(await (await fetch(`${info.adminUrl}/ca.pem`)).text(), caPem)
      const { endpoints } = (await (await fetch(`${info.adminUrl}/endpoints`)).json()) as { endpoints: EndpointObject[] }
      assert.deepEqual(endpoints.map((e) => e.url).sort(), ['http://api.prod', 'tcp://bulk.prod:9000'])
      child.kill('SIGTERM')
      assert.equal(await exited, 0)
    } finally {
      child.kill('SIGKILL')
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('exits 2 with a message for a bad endpoint', async () => {
    const child = spawn(process.execPath, [...loaderArgs, cli, '--endpoint', 'ftp://x.y'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
    assert.equal(code, 2)
    assert.match(stderr, /--endpoint ftp:\/\/x\.y: the url has scheme ftp/)
    assert.match(stderr, /NGROKD_ERR_USAGE/)
  })

  it('names the option when the CA file cannot be written or a port is taken', async () => {
    const run = async (args: string[]) => {
      const child = spawn(process.execPath, [...loaderArgs, cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
      let stderr = ''
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
      return { code: await new Promise<number | null>((resolve) => child.on('exit', resolve)), stderr }
    }
    const ca = await run(['--ca-out', join(tmpdir(), 'ngrokd-no-such-folder', 'ca.pem')])
    assert.equal(ca.code, 2, ca.stderr)
    assert.match(ca.stderr, /--ca-out .*ENOENT.*NGROKD_ERR_USAGE/s)
    const taken = createServer()
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r))
    try {
      const busy = await run(['--api-port', String((taken.address() as AddressInfo).port)])
      assert.notEqual(busy.code, 0)
      assert.match(busy.stderr, /the simulator cannot listen: .*EADDRINUSE.*NGROKD_ERR_LISTEN/s)
      assert.match(busy.stderr, /--api-port/)
    } finally {
      taken.close()
    }
  })
})
