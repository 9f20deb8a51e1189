import 'reflect-metadata'
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it, test } from 'node:test'
import { Registry } from 'prom-client'
import { container } from 'tsyringe'
import { silentLogger } from '../contracts/logger.js'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import type { PluginInterfaceInfo, ServingEntry } from './define-plugin.js'
import { PluginHost, pluginSpecsOf, type PluginSpec } from './plugin-host.js'
import { resolveConfig } from '../config/resolve-config.js'
import { ConfigInvalidError } from '../config/config-invalid-error.js'
import { HostsFileNameResolver } from '../names/hosts-file-name-resolver.js'
import { recordingLogger } from '../testing/recording-logger.js'

/** The plugin API as a third-party plugin imports it (`@ngrokd/core/plugin`), by file URL from a temp dir. */
const api = new URL(import.meta.url.endsWith('.ts') ? './public.ts' : './public.js', import.meta.url).href

let dir: string
/** A journal the temp plugins write to (global: they are separate modules). */
const journal = (): string[] => ((globalThis as { __pluginJournal?: string[] }).__pluginJournal ??= [])

async function plugin(file: string, body: string): Promise<string> {
  await writeFile(join(dir, file), `import { definePlugin } from '${api}'\nconst j = (globalThis.__pluginJournal ??= [])\nexport default definePlugin(${body})\n`)
  return `./${file}`
}

const ifaceInfo: PluginInterfaceInfo = { name: 'ngrokd0', address: '10.107.0.1' }

function load(specs: PluginSpec[], metrics = new Registry(), more: { hookTimeoutMs?: number; interfaceInfo?: () => Promise<PluginInterfaceInfo>; signal?: AbortSignal } = {}) {
  return PluginHost.load(specs, { configDir: dir, stateDir: dir, logger: silentLogger, scope: container.createChildContainer(), metrics, interfaceInfo: async () => ifaceInfo, hostsFileResolver: () => new HostsFileNameResolver({ path: join(dir, 'hosts'), stateDir: dir, logger: silentLogger }), ...more })
}

describe('PluginHost', () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ngrokd-plugins-'))
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('validates options against the schema (defaults filled in) and refuses bad ones naming the key', async () => {
    const path = await plugin(
      'opts.mjs',
      `{ name: 'opts', version: '1.2.3', ngrokd: '^1.0.0',
         optionsSchema: { type: 'object', additionalProperties: false, properties: { port: { type: 'integer', default: 53 }, ttl: { type: 'integer', minimum: 1 } } },
         register(ctx) { j.push('opts ' + JSON.stringify(ctx.options)) } }`,
    )
    journal().length = 0
    await load([{ name: path, options: { ttl: 5 } }])
    assert.deepEqual(journal(), ['opts {"ttl":5,"port":53}'])
    await assert.rejects(load([{ name: path, options: { ttl: 0, colour: 'red' } }]), (e: unknown) => {
      assert.ok(isNgrokdError(e, 'NGROKD_ERR_PLUGIN_INVALID'))
      assert.match(e.message, /^ {2}plugins\[0\]\.options\.colour: unknown key; valid keys in plugins\[0\]\.options: port, ttl$/m)
      assert.match(e.message, /^ {2}plugins\[0\]\.options\.ttl: 0 is not valid; expected a whole number of 1 or more$/m)
      assert.match(e.hint!, /the opts plugin's documentation/)
      return true
    })
  })

  it('an option error names the key, the value it has (long ones cut) and what is expected', async () => {
    const path = await plugin(
      'optv.mjs',
      `{ name: 'optv', version: '1.0.0', ngrokd: '^1.0.0',
         optionsSchema: { type: 'object', additionalProperties: false, required: ['zone'], properties: { zone: { type: 'string' }, ttl: { type: 'integer' }, webhook_token: { type: 'string', pattern: '^xoxb-' }, 'a/b': { type: 'array', items: { type: 'string', maxLength: 3 } } } },
         register() {} }`,
    )
    await assert.rejects(load([{ name: path, options: { ttl: '5', colour: 'red', webhook_token: 'xoxp-1234567890-SECRETSECRETSECRET', 'a/b': ['ok', 'x'.repeat(100)] } }]), (e: unknown) => {
      assert.ok(isNgrokdError(e, 'NGROKD_ERR_PLUGIN_INVALID'))
      assert.match(e.message, /^ {2}plugins\[0\]\.options\.zone: missing; expected a string$/m, 'a missing key has no value')
      assert.match(e.message, /^ {2}plugins\[0\]\.options\.ttl: "5" is not valid; expected a whole number$/m)
      assert.match(e.message, /^ {2}plugins\[0\]\.options\.colour: unknown key; valid keys in plugins\[0\]\.options: zone, ttl, webhook_token, a\/b$/m)
      // a pattern nobody described is shown as it is
      assert.match(e.message, /^ {2}plugins\[0\]\.options\.webhook_token: "…CRET" is not valid; expected a string matching \^xoxb-$/m, 'a secret shows as much as the API key does')
      assert.doesNotMatch(e.message, /SECRETSECRET/)
      // a rule the expected phrase does not say is said in Ajv's words
      assert.match(e.message, new RegExp(`^ {2}plugins\\[0\\]\\.options\\.a/b\\[1\\]: "${'x'.repeat(76)}\\.\\.\\. is not valid: it must NOT have more than 3 characters; expected a string$`, 'm'))
      return true
    })
  })

  it('an option error quoting an object shows the secrets in it, at any depth, as the API key is shown', async () => {
    const path = await plugin(
      'optw.mjs',
      `{ name: 'optw', version: '1.0.0', ngrokd: '^1.0.0', optionsSchema: { type: 'object', properties: { webhook: { type: 'string' }, tokens: { type: 'array', maxItems: 1 } } }, register() {} }`,
    )
    await assert.rejects(load([{ name: path, options: { webhook: { auth: { password: 'PWSECRETPWSECRET' } }, tokens: ['TKSECRETTKSECRET', 'b'] } }]), (e: unknown) => {
      assert.ok(isNgrokdError(e, 'NGROKD_ERR_PLUGIN_INVALID'))
      assert.match(e.message, /^ {2}plugins\[0\]\.options\.webhook: \{"auth":\{"password":"…CRET"\}\} is not valid; expected a string$/m)
      assert.match(e.message, /^ {2}plugins\[0\]\.options\.tokens: \["…CRET","…"\] is not valid: it must NOT have more than 1 items; expected a list of values$/m)
      assert.doesNotMatch(e.message, /SECRETPW|SECRETTK/)
      return true
    })
  })

  it('refuses with coded errors: not found, not a plugin, incompatible core, wrong platform, missing dependency, listed twice', async () => {
    const coded = (code: string) => (e: unknown) => isNgrokdError(e, code as never) || assert.fail(`${code}: ${String(e)}`)
    await assert.rejects(load(['./missing.mjs']), coded('NGROKD_ERR_PLUGIN_NOT_FOUND'))
    await assert.rejects(load(['ngrokd-plugin-nobody-published-this']), coded('NGROKD_ERR_PLUGIN_NOT_FOUND'))
    await writeFile(join(dir, 'plain.mjs'), 'export default { name: "plain" }\n')
    await assert.rejects(load(['./plain.mjs']), coded('NGROKD_ERR_PLUGIN_INVALID'))
    await writeFile(join(dir, 'named.mjs'), 'export const plugin = {}\n')
    await assert.rejects(load(['./named.mjs']), (e: unknown) => coded('NGROKD_ERR_PLUGIN_INVALID')(e) && /is not an ngrokd plugin: it has no default export$/.test((e as Error).message))
    const future = await plugin('future.mjs', `{ name: 'future', version: '1.0.0', ngrokd: '^99.0.0', register() {} }`)
    // named as the entry in plugins: says it, not only by the name inside the module
    await assert.rejects(load([future]), (e: unknown) => coded('NGROKD_ERR_PLUGIN_INCOMPATIBLE')(e) && (e as Error).message.startsWith(`plugin "future" (${future}) needs @ngrokd/core ^99.0.0`))
    const unranged = await plugin('unranged.mjs', `{ name: 'unranged', version: '1.0.0', ngrokd: 'whenever', register() {} }`)
    await assert.rejects(load([unranged]), (e: unknown) => coded('NGROKD_ERR_PLUGIN_INVALID')(e) && /semver range/.test((e as { hint?: string }).hint ?? ''))
    const elsewhere = await plugin('elsewhere.mjs', `{ name: 'elsewhere', version: '1.0.0', ngrokd: '^1.0.0', platforms: ['${process.platform === 'aix' ? 'sunos' : 'aix'}'], register() {} }`)
    await assert.rejects(load([elsewhere]), coded('NGROKD_ERR_PLUGIN_UNSUPPORTED_PLATFORM'))
    const base = await plugin('base.mjs', `{ name: 'base', version: '1.0.0', ngrokd: '^1.0.0', register() {} }`)
    const needy = await plugin('needy.mjs', `{ name: 'needy', version: '1.0.0', ngrokd: '^1.0.0', dependencies: ['base'], register() {} }`)
    await assert.rejects(load([needy, base]), (e: unknown) => {
      assert.ok(isNgrokdError(e, 'NGROKD_ERR_PLUGIN_DEPENDENCY'))
      assert.match(e.hint!, /add base to plugins:, ahead of needy/)
      return true
    })
    assert.deepEqual((await load([base, needy])).status().map((s) => s.name), ['base', 'needy'])
    await assert.rejects(load([base, base]), coded('NGROKD_ERR_PLUGIN_INVALID'))
  })

  it('checks every entry of the list before any register() runs: a bad later entry stops the load before the first plugin registers', async () => {
    const early = await plugin('early.mjs', `{ name: 'early', version: '1.0.0', ngrokd: '^1.0.0', register() { j.push('early registered') } }`)
    const strict = await plugin('strict.mjs', `{ name: 'strict', version: '1.0.0', ngrokd: '^1.0.0', optionsSchema: { type: 'object', additionalProperties: false }, register() { j.push('strict registered') } }`)
    journal().length = 0
    await assert.rejects(load([early, { name: strict, options: { nope: 1 } }]), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_PLUGIN_INVALID'))
    await assert.rejects(load([early, strict, early]), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_PLUGIN_INVALID') && /listed twice/.test(e.message))
    assert.deepEqual(journal(), [], 'no register() ran')
  })

  it('PluginHost.check resolves and checks a list as a start does, registering nothing', async () => {
    const early = await plugin('early.mjs', `{ name: 'early', version: '1.0.0', ngrokd: '^1.0.0', register() { j.push('early registered') } }`)
    const opts = await plugin('check-opts.mjs', `{ name: 'check-opts', version: '1.0.0', ngrokd: '^1.0.0', optionsSchema: { type: 'object', additionalProperties: false, properties: { ttl: { type: 'integer', default: 5 } } }, register() { j.push('opts registered') } }`)
    journal().length = 0
    const checked = await PluginHost.check([early, opts], { configDir: dir })
    assert.deepEqual(checked.map((c) => [c.plugin.name, c.options]), [['early', {}], ['check-opts', { ttl: 5 }]])
    await assert.rejects(PluginHost.check([early, './nothere.mjs'], { configDir: dir }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_PLUGIN_NOT_FOUND'))
    await assert.rejects(PluginHost.check([{ name: opts, options: { ttl: 'x' } }], { configDir: dir }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_PLUGIN_INVALID') && /plugins\[0\]\.options\.ttl: "x" is not valid; expected a whole number/.test(e.message))
    assert.deepEqual(journal(), [])
  })

  it('PluginHost.check reads the files as they are now: a plugin fixed or upgraded since it was loaded or refused', async () => {
    const spec = './changing.mjs'
    await writeFile(join(dir, 'changing.mjs'), 'export default definePlugin({ name: ') // cut off mid-edit
    await assert.rejects(PluginHost.check([spec], { configDir: dir }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_PLUGIN_INVALID'))
    await plugin('changing.mjs', `{ name: 'changing', version: '1.0.0', ngrokd: '^1.0.0', optionsSchema: { type: 'object', additionalProperties: false, properties: { a: { type: 'integer' } } }, register() {} }`)
    assert.deepEqual((await PluginHost.check([{ name: spec, options: { a: 1 } }], { configDir: dir })).map((c) => c.plugin.version), ['1.0.0'], 'the fixed file, not the failure')
    await load([{ name: spec, options: { a: 1 } }]) // the running daemon's copy
    await plugin('changing.mjs', `{ name: 'changing', version: '2.0.0', ngrokd: '^1.0.0', optionsSchema: { type: 'object', additionalProperties: false, properties: { b: { type: 'integer' } } }, register() {} }`)
    const upgraded = await PluginHost.check([{ name: spec, options: { b: 1 } }], { configDir: dir })
    assert.deepEqual(upgraded.map((c) => [c.plugin.version, c.options]), [['2.0.0', { b: 1 }]], 'the upgrade on disk, not the copy loaded at start')
  })

  it('an optionsSchema that is not a valid JSON Schema is a coded error naming the plugin and the problem', async () => {
    const bad = await plugin('badschema.mjs', `{ name: 'badschema', version: '1.0.0', ngrokd: '^1.0.0', optionsSchema: { type: 'object', properties: { a: { type: 'strin' } } }, register() {} }`)
    await assert.rejects(load([bad]), (e: unknown) => {
      assert.ok(isNgrokdError(e, 'NGROKD_ERR_PLUGIN_INVALID'), String(e))
      assert.match(e.message, /plugin "badschema" 1\.0\.0 declares an optionsSchema that is not a valid JSON Schema \(draft-07\): schema is invalid: data\/properties\/a\/type must be equal to one of the allowed values/)
      assert.match(e.hint!, /a bug in the plugin/)
      return true
    })
  })

  it("format: 'hostname' checks a DNS name by ngrokd's rules (one label allowed, any case) and says why one fails", async () => {
    const names = await plugin('dnsnames.mjs', `{ name: 'dnsnames', version: '1.0.0', ngrokd: '^1.0.0', optionsSchema: { type: 'object', properties: { suffixes: { type: 'array', items: { type: 'string', format: 'hostname' } } } }, register(ctx) { j.push(ctx.options.suffixes.join(' ')) } }`)
    journal().length = 0
    await load([{ name: names, options: { suffixes: ['prod', 'Corp.Internal', 'team.corp.example'] } }])
    assert.deepEqual(journal(), ['prod Corp.Internal team.corp.example'])
    await assert.rejects(load([{ name: names, options: { suffixes: ['prod', 'corp..internal', 'bad suffix!'] } }]), (e: unknown) => {
      assert.ok(isNgrokdError(e, 'NGROKD_ERR_PLUGIN_INVALID'), String(e))
      assert.match(e.message, /plugins\[0\]\.options\.suffixes\[1\]: "corp\.\.internal" is not a DNS name: has an empty label/)
      assert.match(e.message, /plugins\[0\]\.options\.suffixes\[2\]: "bad suffix!" is not a DNS name: contains whitespace/)
      assert.doesNotMatch(e.message, /suffixes\[0\]/)
      assert.match(e.hint!, /a DNS name is labels of a-z, 0-9 and "-" joined by single dots/)
      return true
    })
  })

  it("a plugin's checkOptions refuses options the schema cannot judge: the start and a reload stop with its words, before any register()", async () => {
    const checked = await plugin(
      'checked.mjs',
      `{ name: 'checked', version: '1.0.0', ngrokd: '^1.0.0',
         optionsSchema: { type: 'object', properties: { at: { type: 'string' }, port: { type: 'integer', default: 53 } } },
         checkOptions(o) { j.push('check ' + JSON.stringify(o)); if (o.at === 'localhost') throw Object.assign(new Error('options.at is not an IP address (got "localhost")'), { hint: 'write e.g. 10.107.0.1' }) },
         register(ctx) { j.push('register ' + ctx.options.at) } }`,
    )
    const first = await plugin('first.mjs', `{ name: 'first', version: '1.0.0', ngrokd: '^1.0.0', register() { j.push('first register') } }`)
    journal().length = 0
    await load([{ name: checked, options: { at: '10.0.0.1' } }])
    assert.deepEqual(journal(), ['check {"at":"10.0.0.1","port":53}', 'register 10.0.0.1'], 'it sees the options with defaults filled in')
    journal().length = 0
    const refused = (e: unknown) => {
      assert.ok(isNgrokdError(e, 'NGROKD_ERR_PLUGIN_INVALID'), String(e))
      assert.match(e.message, /^invalid configuration:\n {2}plugins\[[01]\]\.options: options\.at is not an IP address \(got "localhost"\)$/)
      assert.match(e.hint!, /^fix the keys listed; the checked plugin's documentation says what each of its options takes/)
      return true
    }
    await assert.rejects(load([first, { name: checked, options: { at: 'localhost' } }]), refused)
    assert.deepEqual(journal(), ['check {"at":"localhost","port":53}'], 'no plugin registered')
    await assert.rejects(PluginHost.check([{ name: checked, options: { at: 'localhost' } }], { configDir: dir }), refused)
  })

  it('isolates a plugin that throws in register(): reported as failed, nothing it added used, the others run', async () => {
    const broken = await plugin(
      'broken.mjs',
      `{ name: 'broken', version: '0.1.0', ngrokd: '^1.0.0', register(ctx) {
         ctx.addRoute('GET', '/x', () => 1); ctx.provideNameResolver('broken-dns', () => ({})); ctx.hooks.onStart(() => j.push('broken start'))
         throw new Error('cannot reach the moon') } }`,
    )
    const fine = await plugin('fine.mjs', `{ name: 'fine', version: '1.0.0', ngrokd: '^1.0.0', register(ctx) { ctx.hooks.onStart(() => j.push('fine start')) } }`)
    journal().length = 0
    const host = await load([broken, fine])
    await host.start()
    assert.deepEqual(journal(), ['fine start'])
    const [b, f] = host.status()
    assert.equal(b!.state, 'failed')
    assert.equal(b!.error?.code, 'NGROKD_ERR_PLUGIN_FAILED')
    assert.match(b!.error!.message, /register: cannot reach the moon/)
    assert.equal(f!.state, 'running')
    assert.deepEqual(host.routes(), {})
    // its resolver is not used, and the daemon falls back to the hosts file rather than look for a driver of that name
    assert.equal(host.offersNameResolver('broken-dns'), true)
    assert.equal(await host.createNameResolver('broken-dns'), undefined)
    assert.equal(host.offersNameResolver('broken'), true, 'nor for a resolver named as the failed plugin (dns) that it never got to offer')
    assert.equal(host.offersNameResolver('fine'), false)
    const checks = await host.doctorChecks()
    assert.deepEqual(checks.map((c) => [c.id, c.status]), [['plugin.broken', 'fail'], ['plugin.fine', 'ok']])
  })

  it('runs hooks in plugin order (stop in reverse), gives afterReconcile the serving set, and degrades only a plugin whose hook throws', async () => {
    const a = await plugin('a.mjs', `{ name: 'a', version: '1.0.0', ngrokd: '^1.0.0', register(ctx) {
      ctx.hooks.onStart(() => j.push('a start')); ctx.hooks.onStop(() => j.push('a stop'))
      ctx.hooks.afterReconcile((serving) => { j.push('a saw ' + serving.map((s) => s.hostname).join(',')); throw new Error('a hook broke') }) } }`)
    const b = await plugin('b.mjs', `{ name: 'b', version: '1.0.0', ngrokd: '^1.0.0', register(ctx) {
      ctx.hooks.onStart(() => j.push('b start')); ctx.hooks.onStop(() => j.push('b stop')); ctx.hooks.afterReconcile((s) => j.push('b saw ' + s.length)) } }`)
    journal().length = 0
    const host = await load([a, b])
    const serving: ServingEntry[] = [{ hostname: 'api.prod', address: '10.107.0.2', ports: [{ port: 80, proto: 'http' }] }]
    await host.start()
    await host.afterReconcile(serving)
    await host.afterReconcile(serving)
    await host.stop()
    assert.deepEqual(journal(), ['a start', 'b start', 'a saw api.prod', 'b saw 1', 'a saw api.prod', 'b saw 1', 'b stop', 'a stop'])
    assert.deepEqual(host.status().map((s) => s.state), ['degraded', 'running'])
    assert.match(host.status()[0]!.error!.message, /afterReconcile: a hook broke/)
  })

  it('a degraded plugin whose failing call succeeds later (one function for onStart and afterReconcile: a listen retried) runs again', async () => {
    const retry = await plugin('retry.mjs', `{ name: 'retry', version: '1.0.0', ngrokd: '^1.0.0', register(ctx) {
      const listen = () => { if (globalThis.__portBusy) throw new Error('EADDRINUSE') }
      ctx.hooks.onStart(listen); ctx.hooks.afterReconcile(listen) } }`)
    const g = globalThis as { __portBusy?: boolean }
    g.__portBusy = true
    const host = await load([retry])
    await host.start()
    assert.equal(host.status()[0]!.state, 'degraded')
    await host.afterReconcile([])
    assert.equal(host.status()[0]!.state, 'degraded', 'still failing')
    g.__portBusy = false
    await host.afterReconcile([])
    assert.deepEqual([host.status()[0]!.state, host.status()[0]!.error], ['running', undefined])
  })

  it('a hook that throws the same error at every poll is logged once at error, then at debug until the error changes', async () => {
    const noisy = await plugin('noisy.mjs', `{ name: 'noisy', version: '1.0.0', ngrokd: '^1.0.0', register(ctx) {
      ctx.hooks.afterReconcile(() => { if (globalThis.__noisyError !== null) throw new Error(globalThis.__noisyError ?? 'the same') })
      ctx.hooks.afterReconcile(() => {}) } }`) // a second hook of the kind, which succeeds every time: not the first's recovery
    const logger = recordingLogger()
    const host = await PluginHost.load([noisy], { configDir: dir, stateDir: dir, logger, scope: container.createChildContainer(), metrics: new Registry(), interfaceInfo: async () => ifaceInfo, hostsFileResolver: () => new HostsFileNameResolver({ path: join(dir, 'hosts'), stateDir: dir, logger: silentLogger }) })
    const g = globalThis as { __noisyError?: string | null }
    for (let i = 0; i < 3; i++) await host.afterReconcile([])
    g.__noisyError = 'another'
    await host.afterReconcile([])
    assert.deepEqual(logger.at('error').map((r) => r.msg), ['plugin noisy: afterReconcile failed: the same', 'plugin noisy: afterReconcile failed: another'])
    assert.equal(logger.at('debug').filter((r) => /failed again/.test(r.msg)).length, 2)
    // it recovers, then fails the same way again: a new outage, said at error
    g.__noisyError = null
    await host.afterReconcile([])
    g.__noisyError = 'another'
    await host.afterReconcile([])
    assert.equal(logger.at('error').length, 3)
  })

  it('opens a name resolver under the hook timeout: one whose open() throws or hangs is degraded, closed, and not used', async () => {
    const resolver = (name: string, open: string) =>
      plugin(`${name}.mjs`, `{ name: '${name}', version: '1.0.0', ngrokd: '^1.0.0', register(ctx) { ctx.provideNameResolver('${name}', () => ({
        open: ${open}, publish: async () => {}, list: async () => [], diagnose: async () => [], close: async () => { j.push('${name} closed') } })) } }`)
    const throws = await resolver('throws', `async () => { throw new Error('open boom') }`)
    const hangs = await resolver('hangs', `({ signal }) => new Promise((resolve) => signal.addEventListener('abort', () => { j.push('hangs aborted'); resolve() }))`)
    const opens = await resolver('opens', `async () => { j.push('opens opened') }`)
    journal().length = 0
    const host = await load([throws, hangs, opens], new Registry(), { hookTimeoutMs: 50 })
    assert.equal(await host.openNameResolver('throws'), undefined)
    assert.equal(await host.openNameResolver('hangs'), undefined)
    const opened = await host.openNameResolver('opens')
    assert.equal(typeof opened?.publish, 'function')
    const [t, h, o] = host.status()
    assert.equal(t!.state, 'degraded')
    assert.match(t!.error!.message, /name resolver throws: open boom/)
    assert.equal(h!.state, 'degraded')
    assert.match(h!.error!.message, /open\(\) of name resolver hangs of plugin hangs did not finish within 0\.05 s/)
    assert.equal(o!.state, 'running')
    // the hung open() was told to give up; each failed resolver is closed once its open() settled
    await new Promise((resolve) => setImmediate(resolve))
    assert.deepEqual(journal().sort(), ['hangs aborted', 'hangs closed', 'opens opened', 'throws closed'])
  })

  it('a name resolver whose publish() throws or hangs after it opened degrades the plugin, is closed, and the names go to the hosts file from then on', async () => {
    // publish() answers `first` times, then throws (`fails`) or hangs until told to give up (`hangs`)
    const resolver = (name: string, then: string) =>
      plugin(`${name}.mjs`, `{ name: '${name}', version: '1.0.0', ngrokd: '^1.0.0', register(ctx) { let calls = 0; ctx.provideNameResolver('${name}', () => ({ resolver: '${name}',
        open: async () => {}, list: async () => [], diagnose: async () => [{ id: '${name}.own', status: 'ok', summary: 'in use' }], close: async () => { j.push('${name} closed') },
        publish: ({ signal }) => { j.push('${name} publish ' + ++calls); if (calls === 1) return Promise.resolve({ changed: true }); ${then} } })) } }`)
    const fails = await resolver('fails', `return Promise.reject(new Error('zone gone'))`)
    // the hook timeout is far above what an answering publish() takes: only the one that never answers meets it
    const hangs = await resolver('hangs-pub', `return new Promise((resolve) => signal.addEventListener('abort', () => { j.push('hangs-pub aborted'); resolve({ changed: false }) }))`)
    journal().length = 0
    const host = await load([fails, hangs], new Registry(), { hookTimeoutMs: 1_000 })
    const records = [{ hostname: 'api.prod', address: '10.107.0.2' }]
    for (const name of ['fails', 'hangs-pub']) {
      const names = (await host.openNameResolver(name))!
      assert.deepEqual(await names.publish({ records }), { changed: true })
      assert.equal(names.resolver, name)
      assert.deepEqual(await names.publish({ records }), { changed: true }, 'the call that failed is made on the hosts file')
      assert.equal(names.resolver, 'hosts-file')
      assert.deepEqual(await names.list(), records)
      assert.deepEqual(await names.publish({ records: [] }), { changed: true }, 'and every later one')
      await names.close()
    }
    const [f, h] = host.status()
    assert.equal(f!.state, 'degraded')
    assert.equal(f!.error!.code, 'NGROKD_ERR_PLUGIN_FAILED')
    assert.match(f!.error!.message, /name resolver fails: zone gone/)
    assert.equal(h!.state, 'degraded')
    assert.match(h!.error!.message, /name resolver hangs-pub: publish\(\) of name resolver hangs-pub of plugin hangs-pub did not finish within 1 s/)
    await new Promise((resolve) => setImmediate(resolve))
    assert.deepEqual(journal(), ['fails publish 1', 'fails publish 2', 'fails closed', 'hangs-pub publish 1', 'hangs-pub publish 2', 'hangs-pub aborted', 'hangs-pub closed'], 'each is called no more after it failed, and closed once')
    assert.deepEqual((await host.doctorChecks()).map((c) => c.id), ['plugin.fails', 'plugin.hangs-pub'], 'a resolver no longer in use is not diagnosed')
  })

  it('a name resolver call still pending when the daemon stops has a few seconds more at most; NGROKD_ERR_NAMES_FROZEN is no failure; a close() that throws is reported', async () => {
    const frozen = await plugin('frozen.mjs', `{ name: 'frozen', version: '1.0.0', ngrokd: '^1.0.0', register(ctx) { ctx.provideNameResolver('frozen', () => ({ resolver: 'frozen',
      open: async () => {}, list: async () => [], diagnose: async () => [], close: async () => { throw new Error('close boom') },
      publish: async () => { j.push('frozen publish'); const { NgrokdError } = await import('${api}'); throw new NgrokdError('NGROKD_ERR_NAMES_FROZEN', 'disk full') } })) } }`)
    // the daemon is stopped while this publish() is pending (it asks for that itself, so the moment is certain)
    const stuck = await plugin('stuck-pub.mjs', `{ name: 'stuck-pub', version: '1.0.0', ngrokd: '^1.0.0', register(ctx) { ctx.provideNameResolver('stuck-pub', () => ({ resolver: 'stuck-pub',
      open: async () => {}, list: async () => [], diagnose: async () => [], close: async () => { j.push('stuck-pub closed') },
      publish: () => { j.push('stuck-pub publish'); globalThis.__stopNow(); return new Promise(() => {}) } })) } }`)
    journal().length = 0
    const stopping = new AbortController()
    ;(globalThis as { __stopNow?: () => void }).__stopNow = () => stopping.abort()
    const host = await load([frozen, stuck], new Registry(), { signal: stopping.signal }) // the hook timeout is 10 s
    const f = (await host.openNameResolver('frozen'))!
    await assert.rejects(f.publish({ records: [] }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_NAMES_FROZEN'))
    assert.equal(host.status()[0]!.state, 'running', 'a frozen resolver refuses changes by the contract: no failure')
    await f.close()
    const s = (await host.openNameResolver('stuck-pub'))!
    // not waited for the hook timeout: the stop's own publish() then goes to the hosts file
    assert.deepEqual(await s.publish({ records: [{ hostname: 'api.prod', address: '10.107.0.2' }] }), { changed: true })
    assert.deepEqual(await s.publish({ records: [] }), { changed: true })
    await s.close()
    const [fs, ss] = host.status()
    assert.equal(fs!.state, 'degraded')
    assert.match(fs!.error!.message, /name resolver frozen: close boom/)
    assert.equal(ss!.state, 'degraded')
    assert.match(ss!.error!.message, /publish\(\) of name resolver stuck-pub of plugin stuck-pub did not finish within 3 s of the daemon's stop/)
    assert.deepEqual(journal(), ['frozen publish', 'stuck-pub publish'], 'the stuck one is not called again, nor closed while its call is pending')
  })

  it('the doctor checks of a plugin include those of its name resolver in use, once each', async () => {
    const fileres = await plugin('fileres.mjs', `{ name: 'fileres', version: '1.0.0', ngrokd: '^1.0.0', register(ctx) {
      ctx.addDoctorChecks(async () => [{ id: 'fileres.shared', status: 'ok', summary: 'from the plugin' }])
      ctx.provideNameResolver('fileres', () => ({ resolver: 'fileres', open: async () => {}, publish: async () => ({ changed: false }), list: async () => [], close: async () => {},
        diagnose: async () => [{ id: 'fileres.file', status: 'warn', summary: 'the names file is stale' }, { id: 'fileres.shared', status: 'ok', summary: 'from the resolver' }] })) } }`)
    const host = await load([fileres], new Registry())
    const before = await host.doctorChecks()
    assert.equal(before.some((c) => c.id === 'fileres.file'), false, 'a resolver that is not in use is not asked')
    await host.openNameResolver('fileres')
    const checks = await host.doctorChecks()
    assert.deepEqual(checks.filter((c) => c.id.startsWith('fileres.')).map((c) => [c.id, c.summary]), [
      ['fileres.shared', 'from the plugin'],
      ['fileres.file', 'the names file is stale'],
    ])
  })

  it('once the daemon stops, the start waits for no plugin: a pending register() ends the load, pending onStart hooks are left', async () => {
    const before = await plugin('before-slow.mjs', `{ name: 'before-slow', version: '1.0.0', ngrokd: '^1.0.0', register(ctx) { ctx.hooks.onStop(() => j.push('before-slow stop')) } }`)
    // the daemon is stopped while this register() is pending (it asks for that itself, so the moment is certain)
    const slowRegister = await plugin('slow-register.mjs', `{ name: 'slow-register', version: '1.0.0', ngrokd: '^1.0.0', register(ctx) { ctx.hooks.onStop(() => j.push('slow-register stop')); globalThis.__stopTheDaemon(); return new Promise(() => {}) } }`)
    const after = await plugin('after-slow.mjs', `{ name: 'after-slow', version: '1.0.0', ngrokd: '^1.0.0', register() { j.push('after-slow registered') } }`)
    journal().length = 0
    const stopping = new AbortController()
    ;(globalThis as { __stopTheDaemon?: () => void }).__stopTheDaemon = () => stopping.abort()
    const loaded = await load([before, slowRegister, after], new Registry(), { signal: stopping.signal }) // not after the hook timeout (10 s)
    assert.deepEqual(loaded.status().map((p) => [p.name, p.state, p.error?.code]), [['before-slow', 'running', undefined], ['slow-register', 'failed', 'NGROKD_ERR_ABORTED']])
    await loaded.stop()
    assert.deepEqual(journal(), ['before-slow stop'], 'the plugins registered before the stop are stopped; the rest were never loaded')

    const hangs = await plugin('hangs-start.mjs', `{ name: 'hangs-start', version: '1.0.0', ngrokd: '^1.0.0', register(ctx) { ctx.hooks.onStart(() => { j.push('hangs start'); return new Promise(() => {}) }); ctx.hooks.onStop(() => j.push('hangs stop')) } }`)
    const next = await plugin('next-start.mjs', `{ name: 'next-start', version: '1.0.0', ngrokd: '^1.0.0', register(ctx) { ctx.hooks.onStart(() => j.push('next start')); ctx.hooks.onStop(() => j.push('next stop')) } }`)
    journal().length = 0
    const stop = new AbortController()
    const host = await load([hangs, next], new Registry(), { signal: stop.signal })
    const starting = host.start()
    setImmediate(() => stop.abort())
    await starting // ends with the stop, not after the hook timeout (10 s, which the test runner would show)
    assert.deepEqual(journal(), ['hangs start'], 'the next plugin\'s onStart is not run once the daemon stops')
    assert.deepEqual(host.status().map((p) => p.state), ['running', 'running'], 'a stop is no failure of the plugin')
    await host.stop()
    assert.deepEqual(journal(), ['hangs start', 'next stop', 'hangs stop'], 'onStop hooks still run, in reverse order')
  })

  it('fails a register() that never finishes and degrades a hook that never settles, then skips that hook until it does', async () => {
    const waits = await plugin('waits.mjs', `{ name: 'waits', version: '1.0.0', ngrokd: '^1.0.0', async register(ctx) { ctx.provideNameResolver('waits', () => ({})); await ctx.interface() } }`)
    const stuck = await plugin('stuck.mjs', `{ name: 'stuck', version: '1.0.0', ngrokd: '^1.0.0', register(ctx) {
      ctx.hooks.afterReconcile(() => { j.push('stuck called'); return new Promise(() => {}) })
      ctx.hooks.onStop(() => j.push('stuck stop')) } }`)
    const after = await plugin('after.mjs', `{ name: 'after', version: '1.0.0', ngrokd: '^1.0.0', register(ctx) { ctx.hooks.afterReconcile((s) => j.push('after saw ' + s.length)) } }`)
    journal().length = 0
    // the interface never opens here: register() awaiting it (the guide's warned-against mistake) can only time out
    const host = await load([waits, stuck, after], new Registry(), { hookTimeoutMs: 50, interfaceInfo: () => new Promise(() => {}) })
    const [w, s] = host.status()
    assert.equal(w!.state, 'failed')
    assert.match(w!.error!.message, /register: register\(\) of plugin waits did not finish within 0\.05 s/)
    assert.equal(await host.createNameResolver('waits'), undefined)
    assert.equal(s!.state, 'running')
    await host.afterReconcile([])
    assert.equal(host.status()[1]!.state, 'degraded')
    assert.match(host.status()[1]!.error!.message, /afterReconcile of plugin stuck did not finish/)
    await host.afterReconcile([])
    await host.stop()
    // the second reconcile did not call the pending hook again, nor wait for it; the other plugins ran each time
    assert.deepEqual(journal(), ['stuck called', 'after saw 0', 'after saw 0', 'stuck stop'])
  })

  it("bounds all onStop hooks together: a stuck one cannot hold the daemon's stop past the budget", async () => {
    const stuckStop = (n: string) => plugin(`${n}.mjs`, `{ name: '${n}', version: '1.0.0', ngrokd: '^1.0.0', register(ctx) { ctx.hooks.onStop(() => new Promise(() => {})) } }`)
    const host = await load([await stuckStop('stop-a'), await stuckStop('stop-b')], new Registry(), { hookTimeoutMs: 50 })
    await host.stop() // returns although neither hook ever settles: side by side, both wait out the same budget
    const [a, b] = host.status()
    assert.match(b!.error!.message, /onStop of plugin stop-b did not finish within 0\.05 s/)
    assert.match(a!.error!.message, /onStop of plugin stop-a did not finish within 0(\.0\d)? s/)
  })

  it("a stuck onStop does not keep the other plugins' onStop from running, and a plugin stops after the plugins that depend on it", async () => {
    const base = await plugin('stop-base.mjs', `{ name: 'stop-base', version: '1.0.0', ngrokd: '^1.0.0', register(ctx) { ctx.hooks.onStop(() => j.push('base stop')) } }`)
    const user = await plugin('stop-user.mjs', `{ name: 'stop-user', version: '1.0.0', ngrokd: '^1.0.0', dependencies: ['stop-base'], register(ctx) {
      ctx.hooks.onStop(async () => { await new Promise((r) => setTimeout(r, 30)); j.push('user stop') }) } }`)
    const stuck = await plugin('stop-stuck.mjs', `{ name: 'stop-stuck', version: '1.0.0', ngrokd: '^1.0.0', register(ctx) { ctx.hooks.onStop(() => { j.push('stuck stop'); return new Promise(() => {}) }) } }`)
    journal().length = 0
    const host = await load([base, user, stuck], new Registry(), { hookTimeoutMs: 300 })
    await host.stop()
    assert.deepEqual(journal(), ['stuck stop', 'user stop', 'base stop'])
    assert.deepEqual(host.status().map((s) => s.state), ['running', 'running', 'degraded'])
    assert.match(host.status()[2]!.error!.message, /onStop of plugin stop-stuck did not finish within 0\.3 s/)
  })

  it('a stuck onStop of a plugin that depends on another does not use up the time of that one: its onStop still runs', async () => {
    const base = await plugin('dep-base.mjs', `{ name: 'dep-base', version: '1.0.0', ngrokd: '^1.0.0', register(ctx) { ctx.hooks.onStop(() => j.push('base stop')) } }`)
    const hang = await plugin('dep-hang.mjs', `{ name: 'dep-hang', version: '1.0.0', ngrokd: '^1.0.0', dependencies: ['dep-base'], register(ctx) { ctx.hooks.onStop(() => { j.push('hang stop'); return new Promise(() => {}) }) } }`)
    const top = await plugin('dep-top.mjs', `{ name: 'dep-top', version: '1.0.0', ngrokd: '^1.0.0', dependencies: ['dep-hang'], register(ctx) { ctx.hooks.onStop(() => j.push('top stop')) } }`)
    journal().length = 0
    const host = await load([base, hang, top], new Registry(), { hookTimeoutMs: 300 })
    await host.stop()
    // dep-top stops first, dep-hang hangs, and dep-base, two levels down, starts once its turn comes instead of never
    assert.deepEqual(journal(), ['top stop', 'hang stop', 'base stop'])
    assert.deepEqual(host.status().map((s) => s.state), ['running', 'degraded', 'running'], JSON.stringify(host.status()))
  })

  it('a doctor check that never settles fails its plugin\'s check instead of holding doctor; the other plugins\' run', async () => {
    const slow = await plugin('slowdoc.mjs', `{ name: 'slowdoc', version: '1.0.0', ngrokd: '^1.0.0', register(ctx) { ctx.addDoctorChecks(() => new Promise(() => {})) } }`)
    const fine = await plugin('finedoc.mjs', `{ name: 'finedoc', version: '1.0.0', ngrokd: '^1.0.0', register(ctx) { ctx.addDoctorChecks(async () => [{ id: 'finedoc.own', status: 'ok', summary: 'fine' }]) } }`)
    const host = await load([slow, fine], new Registry(), { hookTimeoutMs: 50 })
    const checks = await host.doctorChecks()
    assert.deepEqual(checks.map((c) => [c.id, c.status]), [['plugin.slowdoc', 'ok'], ['plugin.slowdoc', 'fail'], ['plugin.finedoc', 'ok'], ['finedoc.own', 'ok']])
    assert.match(checks[1]!.summary, /its doctor checks failed: the doctor checks of plugin slowdoc did not finish within 0\.05 s/)
  })

  it('a doctor check of the wrong shape (no id, an unknown status, not an array) becomes a failing check naming what is wrong; the good ones stay', async () => {
    const bad = await plugin('baddoc.mjs', `{ name: 'baddoc', version: '1.0.0', ngrokd: '^1.0.0', register(ctx) {
      ctx.addDoctorChecks(async () => [{ nonsense: true }, { id: 'baddoc.status', status: 'great', summary: 'x' }, { id: 'baddoc.fine', status: 'ok', summary: 'fine' }])
      ctx.addDoctorChecks(async () => 'all good') } }`)
    const host = await load([bad], new Registry())
    const checks = await host.doctorChecks()
    assert.deepEqual(checks.map((c) => [c.id, c.status]), [['plugin.baddoc', 'ok'], ['plugin.baddoc', 'fail'], ['plugin.baddoc', 'fail'], ['baddoc.fine', 'ok'], ['plugin.baddoc', 'fail']])
    assert.match(checks[1]!.summary, /^plugin baddoc: its doctor checks gave a malformed check: a check without a string id \(\{"nonsense":true\}\)$/)
    assert.match(checks[2]!.summary, /check baddoc\.status has status "great", not ok, warn, fail or skip/)
    assert.match(checks[4]!.summary, /gave "all good", not an array of checks/)
    assert.ok(checks.every((c) => typeof c.id === 'string' && typeof c.summary === 'string'))
  })

  it('the metrics a plugin registered before its register() threw are not exported', async () => {
    const leaves = await plugin('leaves.mjs', `{ name: 'leaves', version: '1.0.0', ngrokd: '^1.0.0', register(ctx) {
      ctx.metrics.registerMetric({ name: 'leaves_leftover_total', help: 'x', type: 'counter', aggregator: 'sum', reset() {}, get: async () => ({ name: 'leaves_leftover_total', help: 'x', type: 'counter', aggregator: 'sum', values: [{ value: 0, labels: {} }] }) })
      throw new Error('after a metric') } }`)
    const registry = new Registry()
    registry.registerMetric({ name: 'ngrokd_own', help: 'x', type: 'gauge', aggregator: 'sum', reset() {}, get: async () => ({ name: 'ngrokd_own', help: 'x', type: 'gauge', aggregator: 'sum', values: [{ value: 1, labels: {} }] }) } as never)
    const host = await load([leaves], registry)
    assert.equal(host.status()[0]!.state, 'failed')
    assert.deepEqual(registry.getMetricsAsArray().map((m) => m.name), ['ngrokd_own'], "the daemon's own stay")
  })

  it("a plugin whose register() timed out adds no doctor checks when it ends later", async () => {
    const late = await plugin('late.mjs', `{ name: 'late', version: '1.0.0', ngrokd: '^1.0.0', async register(ctx) { await globalThis.__lateGate; ctx.addDoctorChecks(async () => [{ id: 'late.check', status: 'ok', summary: 'late' }]) } }`)
    let open: () => void = () => {}
    ;(globalThis as { __lateGate?: Promise<void> }).__lateGate = new Promise<void>((r) => (open = r))
    const host = await load([late], new Registry(), { hookTimeoutMs: 50 })
    open()
    await new Promise((r) => setImmediate(r))
    assert.deepEqual((await host.doctorChecks()).map((c) => [c.id, c.status]), [['plugin.late', 'fail']])
  })

  it('a route of another method than GET or POST, or a path that is not "/" and segments, fails its plugin: no route escapes /v1/plugins/<name>/', async () => {
    const routed = (name: string, method: string, path: string) =>
      plugin(`route-${name}.mjs`, `{ name: '${name}', version: '1.0.0', ngrokd: '^1.0.0', register(ctx) { ctx.hooks.onStart(() => j.push('${name} start')); ctx.addRoute(${JSON.stringify(method)}, ${JSON.stringify(path)}, () => '${name}') } }`)
    // `c` + `hecks` would answer the daemon's GET /v1/plugins/checks, `pro` + `be/served` plugin probe's /served
    const specs = [await routed('c', 'GET', 'hecks'), await routed('pro', 'GET', 'be/served'), await routed('rb', 'DELETE', '/nopath'), await routed('dots', 'GET', '/../status'), await routed('probe', 'POST', '/served/v2')]
    journal().length = 0
    const host = await load(specs)
    await host.start()
    assert.deepEqual(Object.keys(host.routes()), ['POST /v1/plugins/probe/served/v2'])
    assert.deepEqual(journal(), ['probe start'], 'nothing else a plugin with a bad route added is used')
    const [c, pro, rb, dots, probe] = host.status()
    for (const failed of [c, pro, rb, dots]) {
      assert.equal(failed!.state, 'failed')
      assert.equal(failed!.error!.code, 'NGROKD_ERR_PLUGIN_INVALID')
    }
    assert.match(c!.error!.message, /^register: plugin "c": addRoute\("GET", "hecks"\): path "hecks" must be "\/" then segments/)
    assert.match(pro!.error!.message, /addRoute\("GET", "be\/served"\)/)
    assert.match(rb!.error!.message, /method "DELETE" is not GET or POST/)
    assert.equal(probe!.state, 'running')
  })

  it('gives each plugin its own DI scope, namespaced routes, the shared metrics registry and the interface', async () => {
    const TOKEN = 'Symbol.for("test.own")'
    const one = await plugin('one.mjs', `{ name: 'one', version: '1.0.0', ngrokd: '^1.0.0', async register(ctx) {
      ctx.scope.register(${TOKEN}, { useValue: 'one' }); j.push('one sees ' + ctx.scope.resolve(${TOKEN}))
      ctx.addRoute('GET', '/records', () => ({ from: 'one' }))
      j.push('iface ' + (await ctx.interface()).address)
      ctx.metrics.registerMetric({ name: 'one_total', get: async () => ({ name: 'one_total', help: 'x', type: 'counter', values: [{ value: 1, labels: {} }], aggregator: 'sum' }), reset() {}, get name() { return 'one_total' } }) } }`)
    const two = await plugin('two.mjs', `{ name: 'two', version: '1.0.0', ngrokd: '^1.0.0', register(ctx) { j.push('two sees ' + ctx.scope.isRegistered(${TOKEN})) } }`)
    journal().length = 0
    const metrics = new Registry()
    const host = await load([one, two], metrics)
    assert.deepEqual(journal(), ['one sees one', 'iface 10.107.0.1', 'two sees false'])
    assert.deepEqual(Object.keys(host.routes()), ['GET /v1/plugins/one/records'])
    assert.deepEqual(await host.routes()['GET /v1/plugins/one/records']!(undefined), { from: 'one' })
    assert.ok(metrics.getSingleMetric('one_total'), 'a plugin registers on the daemon\'s registry')
  })
})

test('metrics.prometheus_listen beside a prometheus entry in plugins: fills its listen, and another listen there is refused', () => {
  const options = (config: Parameters<typeof pluginSpecsOf>[0]) => pluginSpecsOf(config).map((s) => (typeof s === 'string' ? s : { name: s.name, options: s.options }))
  const bare = resolveConfig({ metrics: { prometheus_listen: '127.0.0.1:9464' }, plugins: ['prometheus'] }, { env: {} }).config
  assert.deepEqual(options(bare), [{ name: 'prometheus', options: { listen: '127.0.0.1:9464' } }])
  const same = resolveConfig({ metrics: { prometheus_listen: '127.0.0.1:9464' }, plugins: [{ name: 'prometheus', options: { listen: '127.0.0.1:9464' } }] }, { env: {} }).config
  assert.deepEqual(options(same), [{ name: 'prometheus', options: { listen: '127.0.0.1:9464' } }])
  assert.deepEqual(options(resolveConfig({ metrics: { prometheus_listen: '127.0.0.1:9464' } }, { env: {} }).config), [{ name: 'prometheus', options: { listen: '127.0.0.1:9464' } }])
  assert.throws(
    () => resolveConfig({ metrics: { prometheus_listen: '127.0.0.1:9464' }, plugins: [{ name: 'prometheus', options: { listen: '127.0.0.1:9465' } }] }, { env: {} }),
    (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID') && /metrics\.prometheus_listen: "127\.0\.0\.1:9464" is the older spelling of the prometheus plugin's listen, and plugins gives it listen "127\.0\.0\.1:9465"/.test(e.message),
  )
})

test('pluginSpecsOf: each entry says where it was written, in the file or the variable, and a listen from metrics.prometheus_listen is that key', () => {
  const FILE = '/etc/ngrokd/config.yml'
  const origins = (content: unknown, env: NodeJS.ProcessEnv = {}, within?: string) => pluginSpecsOf(resolveConfig(content, { source: FILE, env, ...(within ? { within } : {}) }).config).map((s) => (typeof s === 'string' ? undefined : s.origin))
  assert.deepEqual(origins({ plugins: ['dns', { name: 'prometheus', options: { listen: '127.0.0.1:9464' } }] }), [{ options: { key: 'plugins[0].options', file: FILE } }, { options: { key: 'plugins[1].options', file: FILE } }])
  assert.deepEqual(origins({ plugins: ['prometheus'] }, {}, 'ngrokd'), [{ options: { key: 'ngrokd.plugins[0].options', file: FILE } }], 'under the key of a package.json')
  assert.deepEqual(origins({ plugins: ['dns'] }, { NGROKD_PLUGINS: '["prometheus"]' }), [{ options: { key: 'plugins[0].options', env: 'NGROKD_PLUGINS' } }], 'the environment beats the file')
  const listen = { key: 'metrics.prometheus_listen', file: FILE }
  assert.deepEqual(origins({ metrics: { prometheus_listen: 'localhost' } }), [{ options: listen, option: { listen } }], 'the entry it adds')
  assert.deepEqual(origins({ metrics: { prometheus_listen: 'localhost' }, plugins: ['prometheus'] }), [{ options: { key: 'plugins[0].options', file: FILE }, option: { listen } }], 'the listen it fills in')
})

describe("a plugin's options found bad are named as a bad key of the file is: the file, the key as written, the value, what is expected", () => {
  let configDir: string
  before(async () => {
    configDir = await mkdtemp(join(tmpdir(), 'ngrokd-plugin-options-'))
  })
  after(async () => {
    await rm(configDir, { recursive: true, force: true })
  })
  const FILE = () => join(configDir, 'config.yml')
  /** What the start, a reload and doctor check: the built-in plugins, as the file at FILE (or the variables) give them. */
  const refusal = async (content: unknown, env: NodeJS.ProcessEnv = {}) => {
    const { config } = resolveConfig(content, { source: FILE(), env })
    const e = await PluginHost.check(pluginSpecsOf(config), { configDir }).then(
      () => assert.fail('the options were taken'),
      (err: unknown) => err,
    )
    assert.ok(isNgrokdError(e, 'NGROKD_ERR_PLUGIN_INVALID'), String(e))
    assert.ok(e instanceof ConfigInvalidError, 'its issues, for doctor')
    return e
  }

  it('a value that fails a pattern the plugin describes: what the pattern means, never the pattern', async () => {
    const e = await refusal({ plugins: [{ name: 'prometheus', options: { listen: 'localhost' } }] })
    assert.equal(e.message, `invalid configuration in ${FILE()}:\n  plugins[0].options.listen: "localhost" is not valid; expected host:port, such as 127.0.0.1:9464 or [::1]:9464 (a port is needed)`)
    assert.deepEqual(e.issues, [{ key: 'plugins[0].options.listen', file: FILE(), message: '"localhost" is not valid; expected host:port, such as 127.0.0.1:9464 or [::1]:9464 (a port is needed)' }])
    assert.match(e.hint!, /the prometheus plugin's documentation/)
  })

  it('a misspelt option: the options there are and the one it is likely a typo of, and not the required one besides', async () => {
    const e = await refusal({ plugins: ['dns', { name: 'prometheus', options: { lisen: '127.0.0.1:9464' } }] })
    assert.equal(e.message, `invalid configuration in ${FILE()}:\n  plugins[1].options.lisen: unknown key; valid keys in plugins[1].options: listen (did you mean plugins[1].options.listen?)`)
  })

  it('metrics.prometheus_listen is named as written, not as the option it fills in', async () => {
    const e = await refusal({ metrics: { prometheus_listen: 'localhost' } })
    assert.equal(e.message, `invalid configuration in ${FILE()}:\n  metrics.prometheus_listen: "localhost" is not valid as the prometheus plugin's listen; expected host:port, such as 127.0.0.1:9464 or [::1]:9464 (a port is needed)`)
    // its listen filled into a prometheus entry of plugins: the same key
    const filled = await refusal({ metrics: { prometheus_listen: 'localhost' }, plugins: ['prometheus'] })
    assert.deepEqual(filled.issues.map((i) => i.key), ['metrics.prometheus_listen'])
  })

  it('a list from the environment names its variable; an entry of a dns listen has what it takes described too', async () => {
    const e = await refusal({}, { NGROKD_PLUGINS: '[{"name":"dns","options":{"listen":[""]}}]' })
    assert.equal(e.message, 'invalid configuration in the environment:\n  environment variable NGROKD_PLUGINS (plugins[0].options.listen[0]): "" is not valid; expected an IP address with an optional port 0-65535, such as 10.107.0.1, 127.0.0.53:5353 or [::1]:53')
  })

  it("what a plugin's checkOptions refuses: its words, under the entry's options in the file", async () => {
    const e = await refusal({ plugins: [{ name: 'dns', options: { listen: ['localhost:53'] } }] })
    assert.equal(e.message, `invalid configuration in ${FILE()}:\n  plugins[0].options: options.listen.0 is not an IP address with an optional port 0-65535 (got "localhost:53")`)
  })
})
