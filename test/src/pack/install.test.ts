// The packages as a user gets them: `scripts/pack.mjs` packs every published package (what would be
// published), npm installs the tarballs this system takes into a temporary global prefix with an empty
// cache (third-party packages come from the registry), and the installed `ngrokd` answers --version,
// --help, doctor --json, simulator and demo --once from there. Runs outside the test namespace: the
// install needs the registry. Nothing here touches an interface or the hosts file: doctor runs in a
// private namespace of its own (scripts/in-netns.sh), demo makes its own.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { promisify } from 'node:util'
import { IN_TEST_NETNS } from '../helpers/netns.js'
import { REPO_ROOT } from '../helpers/workspaces.js'
import { outsiderEnv } from '../third-party/outsider-env.js'
import { runNpm } from '../third-party/run-npm.js'

const exec = promisify(execFile)

/** An install with an empty cache fetches every third-party package: minutes on a slow machine and network. */
const INSTALL_TIMEOUT_MS = 600_000
/** One CLI command of the installed ngrokd (doctor probes the driver; demo starts a cloud and a daemon). */
const COMMAND_TIMEOUT_MS = 240_000

/** The systems each platform driver is published for (the rule; core's builtinDriverOs). */
const PLATFORM_DRIVERS: Record<string, string[]> = {
  '@ngrokd/driver-linux-netlink': ['linux'],
  '@ngrokd/driver-darwin-utun': ['darwin'],
  '@ngrokd/driver-windows-wintun': ['win32'],
}

interface Tarball {
  file: string
  manifest: { name: string; version: string; os?: string[]; optionalDependencies?: Record<string, string> }
}

interface Report {
  ok: boolean
  checks: Array<{ id: string; status: string; summary: string; hint?: string; code?: string }>
}

/** Whether npm's configured registry answers (`npm ping`): a machine without one skips, saying so, instead of timing out. */
function registryAnswers(): boolean {
  return spawnSync('npm', ['ping', '--fetch-retries=0'], { stdio: 'ignore', timeout: 120_000 }).status === 0
}

const skip = IN_TEST_NETNS
  ? 'installs from the npm registry: runs outside the test namespace (npm test in test/ runs it there)'
  : process.platform !== 'linux'
    ? 'the installed commands are checked on Linux'
    : !registryAnswers()
      ? "installs from the npm registry, which `npm ping` cannot reach from this machine"
      : false

const demoSkip = process.getuid?.() === 0 && spawnSync('unshare', ['--version']).status === 0 ? false : 'ngrokd demo needs root and unshare'

describe('npm install -g of the packed tarballs', { skip }, () => {
  let dir: string
  let prefix: string
  let ngrokd: string
  let tarballs: Tarball[]
  /** Where npm installs: the temporary global prefix, an empty cache. */
  let npmOptions: string[]
  const env = { ...outsiderEnv(), NO_COLOR: '1' }

  /** Runs the installed ngrokd; never throws on a non-zero exit. */
  async function run(args: string[], { inNamespace = false } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
    const argv = inNamespace ? ['sh', join(REPO_ROOT, 'test/scripts/in-netns.sh'), ngrokd, ...args] : [ngrokd, ...args]
    return exec(argv[0]!, argv.slice(1), { env, timeout: COMMAND_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 }).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? `${String(e)}` }),
    )
  }

  async function du(path: string): Promise<string> {
    return (await exec('du', ['-sh', path])).stdout.split('\t')[0]!
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ngrokd-install-'))
    prefix = join(dir, 'prefix')
    ngrokd = join(prefix, 'bin', 'ngrokd')
    const packed = (await exec(process.execPath, [join(REPO_ROOT, 'scripts/pack.mjs'), join(dir, 'tarballs')], { timeout: INSTALL_TIMEOUT_MS })).stdout.trim().split('\n')
    tarballs = await Promise.all(
      packed.map(async (file) => ({ file, manifest: JSON.parse((await exec('tar', ['-xzOf', file, 'package/package.json'])).stdout) as Tarball['manifest'] })),
    )
    // what npm would install here for `npm install -g ngrokd`: a tarball given by name is installed even
    // against its `os` (npm refuses it), so the platform drivers for other systems are left out
    const here = tarballs.filter((t) => !t.manifest.os || t.manifest.os.includes(process.platform))
    // --prefix also moves npm's global config to <prefix>/etc/npmrc: keep this machine's (its CA file,
    // proxy), which a real global install reads
    const globalconfig = (await runNpm(['config', 'get', 'globalconfig'], { cwd: dir })).trim()
    npmOptions = ['-g', '--prefix', prefix, '--cache', join(dir, 'cache'), '--globalconfig', globalconfig]
    // --omit=optional: the other systems' drivers are not published yet, so npm would look their names up
    // in the public registry, and install whatever someone else published under them; this system's
    // driver is one of the tarballs given, so nothing ngrokd needs here is left out
    await runNpm(['install', ...npmOptions, '--omit=optional', ...here.map((t) => t.file)], { cwd: dir, timeoutMs: INSTALL_TIMEOUT_MS })
  }, { timeout: 2 * INSTALL_TIMEOUT_MS })

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  test('each platform driver is published for its own system and is an optional dependency of ngrokd; npm installed only this one', async (t) => {
    const ngrokdPackage = tarballs.find((p) => p.manifest.name === 'ngrokd')!
    assert.deepEqual(Object.keys(ngrokdPackage.manifest.optionalDependencies ?? {}).sort(), Object.keys(PLATFORM_DRIVERS).sort())
    for (const [name, os] of Object.entries(PLATFORM_DRIVERS)) {
      const packed = tarballs.find((p) => p.manifest.name === name)
      assert.deepEqual(packed?.manifest.os, os, `${name} is published with os ${JSON.stringify(os)}`)
      assert.equal(existsSync(join(prefix, 'lib/node_modules', name)), os.includes(process.platform), `${name} installed only on ${os.join(', ')}`)
    }
    assert.equal(tarballs.find((p) => p.manifest.name === '@ngrokd/driver-loopback-alias')?.manifest.os, undefined, 'loopback-alias installs everywhere')
    t.diagnostic(`installed size: ${prefix}/lib/node_modules ${await du(join(prefix, 'lib/node_modules'))}`)
  })

  test('ngrokd --version names the version and only the drivers this system runs', async () => {
    const r = await run(['--version'])
    assert.equal(r.code, 0, r.stderr)
    const version = tarballs.find((p) => p.manifest.name === 'ngrokd')!.manifest.version
    assert.match(r.stdout, new RegExp(`^ngrokd ${version.replace(/\./g, '\\.')}\\nnode v\\d+`))
    assert.match(r.stdout, /^driver linux-netlink \d+\.\d+\.\d+$/m)
    assert.match(r.stdout, /^driver loopback-alias \d+\.\d+\.\d+$/m)
    assert.match(r.stdout, /^drivers for other systems, not usable on linux: darwin-utun \(darwin\), windows-wintun \(win32\)$/m)
  })

  test('ngrokd --help lists the commands, demo and simulator among them', async () => {
    const r = await run(['--help'])
    assert.equal(r.code, 0, r.stderr)
    for (const command of ['run', 'status', 'doctor', 'cleanup', 'version', 'demo', 'simulator']) assert.match(r.stdout, new RegExp(`^  ${command} `, 'm'))
  })

  test('ngrokd doctor --json checks what the config says, with the installed driver, and calls no real API', async () => {
    const config = join(dir, 'doctor.json')
    // loopback ports nothing listens on, in a namespace that has nothing else: no byte leaves
    writeFileSync(config, JSON.stringify({ api: { url: 'http://127.0.0.1:9', key: 'install_test_key_0123' }, ingress: { endpoint: '127.0.0.1:9' }, net: { driver: 'linux-netlink' }, state_dir: join(dir, 'state'), control: { socket: join(dir, 'ngrokd.sock') } }))
    const r = await run(['doctor', '--json', '--config', config], { inNamespace: true })
    const report = JSON.parse(r.stdout) as Report
    const check = (id: string) => report.checks.find((c) => c.id === id)
    assert.equal(r.code, 1, 'the API does not answer: doctor fails')
    assert.match(check('config.load')?.summary ?? '', new RegExp(config.replace(/[.\\/]/g, '\\$&')))
    assert.equal(check('driver.resolve')?.status, 'ok', JSON.stringify(check('driver.resolve')))
    assert.match(check('driver.resolve')!.summary, /@ngrokd\/driver-linux-netlink/)
    assert.equal(check('linux-netlink.socket')?.status, 'ok', 'koffi and the netlink socket work from the installed tree')
    for (const id of ['api.reach', 'ingress.tls']) {
      assert.equal(check(id)?.status, 'fail', `${id}: nothing answers at 127.0.0.1:9`)
      assert.match(`${check(id)!.summary} ${check(id)!.hint}`, /127\.0\.0\.1:9/, `${id} tried the configured address`)
    }
    assert.doesNotMatch(r.stdout, /api\.ngrok\.com/)
  })

  test('ngrokd simulator runs the cloud simulator and its admin API until SIGTERM', { timeout: COMMAND_TIMEOUT_MS }, async () => {
    const child = spawn(ngrokd, ['simulator', '--endpoint', 'http://api.install'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
    try {
      const line = await new Promise<string>((resolve, reject) => {
        createInterface({ input: child.stdout }).once('line', resolve)
        child.once('exit', () => reject(new Error(`ngrokd simulator exited early: ${stderr}`)))
      })
      const info = JSON.parse(line) as { apiUrl: string; apiKey: string; adminUrl: string }
      assert.equal(info.adminUrl, `${info.apiUrl}/_admin`)
      const added = await fetch(`${info.adminUrl}/endpoints`, { method: 'POST', body: JSON.stringify({ url: 'tcp://db.install:5432' }) })
      assert.equal(added.status, 201)
      const { endpoints } = (await (await fetch(`${info.adminUrl}/endpoints`)).json()) as { endpoints: Array<{ url: string }> }
      assert.deepEqual(endpoints.map((e) => e.url).sort(), ['http://api.install', 'tcp://db.install:5432'])
      child.kill('SIGTERM')
      assert.equal(await exited, 0, stderr)
    } finally {
      child.kill('SIGKILL')
    }
  })

  test('ngrokd demo --once serves every demo endpoint from the installed packages', { skip: demoSkip, timeout: COMMAND_TIMEOUT_MS }, async () => {
    const r = await run(['demo', '--once'])
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`)
    assert.match(r.stdout, /cloud simulator up/)
    for (const url of ['http://api.demo', 'http://web.demo:8080', 'tcp://echo.demo:5432', 'https://status.demo-app.ngrok.app']) {
      assert.match(r.stdout, new RegExp(`✔ ${url.replace(/[.:/]/g, '\\$&')}`), `${url} answered`)
    }
    assert.match(r.stdout, /demo passed/)
  })

  // last: it takes the platform driver away
  test('without its platform driver (an install that left optional dependencies out), doctor and version say how to get it', async () => {
    await runNpm(['uninstall', ...npmOptions, '@ngrokd/driver-linux-netlink'], { cwd: dir, timeoutMs: INSTALL_TIMEOUT_MS })
    const version = await run(['version'])
    assert.match(version.stdout, /^driver linux-netlink not installed: reinstall ngrokd with its optional dependencies/m)
    const config = join(dir, 'doctor.json')
    const r = await run(['doctor', '--json', '--offline', '--config', config], { inNamespace: true })
    const resolve = (JSON.parse(r.stdout) as Report).checks.find((c) => c.id === 'driver.resolve')
    assert.equal(resolve?.status, 'fail')
    assert.equal(resolve?.code, 'NGROKD_ERR_DRIVER_NOT_FOUND')
    assert.match(resolve!.summary, /built-in driver "linux-netlink" is not installed/)
    assert.match(resolve!.hint ?? '', /reinstall ngrokd with its optional dependencies/)
  })
})
