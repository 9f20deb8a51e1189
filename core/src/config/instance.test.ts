import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { loadConfig } from './load-config.js'
import { resolveConfig } from './resolve-config.js'
import { checkInstanceFlag } from './instance.js'
import { parseHostsBlock, updateHostsText } from '../names/hosts-block.js'
import { subnetsOverlap, parseSubnet } from '../util/ipv4.js'

let dir: string
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ngrokd-instance-'))
})
after(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('named instances', () => {
  it('an instance gets its own state dir, socket, interface and subnet unless the file sets them', () => {
    const base = resolveConfig({}, { env: {} }).config
    const work = resolveConfig({ instance: 'work' }, { env: {} }).config
    assert.equal(work.instance, 'work')
    assert.equal(work.stateDir, `${base.stateDir}-work`)
    assert.equal(work.control.socket, base.control.socket.replace(/\.sock$/, '-work.sock'))
    assert.equal(work.net.interfaceName, 'ngrokd-work')
    assert.ok(!subnetsOverlap(parseSubnet(work.net.subnet), parseSubnet(base.net.subnet)), `${work.net.subnet} is apart from ${base.net.subnet}`)
    assert.match(work.net.subnet, /^10\.(10[89]|11\d|12[0-7])\.0\.0\/16$/)
    assert.equal(resolveConfig({ instance: 'work' }, { env: {} }).config.net.subnet, work.net.subnet, 'stable')
    const explicit = resolveConfig({ instance: 'work', state_dir: '/srv/w', net: { subnet: '10.200.0.0/16' } }, { env: {} }).config
    assert.equal(explicit.stateDir, '/srv/w')
    assert.equal(explicit.net.subnet, '10.200.0.0/16')
    assert.equal(explicit.net.interfaceName, 'ngrokd-work', 'what the file does not set still follows the instance')
  })

  it('names that are not instance names are refused with the rule', () => {
    for (const bad of ['Work', '1abc', 'toolongname', 'a-b', '', 'config', 'read']) {
      assert.throws(() => resolveConfig({ instance: bad }, { env: {} }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID') && /instance/.test((e as Error).message), bad)
    }
  })

  it('--instance reads NAME.yml beside the default file, not the current directory; a file of another instance is refused', async () => {
    await writeFile(join(dir, 'work.yml'), 'bound_endpoints:\n  poll_interval: 7s\n')
    await writeFile(join(dir, 'ngrokd.yml'), 'bound_endpoints:\n  poll_interval: 9s\n')
    const loaded = await loadConfig({ cwd: dir, env: {}, asRoot: false, defaultPath: join(dir, 'config.yml'), instance: 'work' })
    assert.equal(loaded.source, join(dir, 'work.yml'))
    assert.equal(loaded.config.instance, 'work')
    assert.equal(loaded.config.boundEndpoints.pollIntervalMs, 7_000)
    const viaEnv = await loadConfig({ cwd: dir, env: { NGROKD_INSTANCE: 'work' }, asRoot: false, defaultPath: join(dir, 'config.yml') })
    assert.equal(viaEnv.source, join(dir, 'work.yml'))
    await writeFile(join(dir, 'home.yml'), 'instance: home\n')
    await assert.rejects(
      loadConfig({ cwd: dir, env: {}, asRoot: false, configPath: join(dir, 'home.yml'), instance: 'work' }),
      (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID') && /instance "home".*"work"/.test((e as Error).message),
    )
  })

  it('each instance edits its own hosts block and never another one', () => {
    const user = '127.0.0.1\tlocalhost\n'
    const a = updateHostsText(user, [{ hostname: 'api.prod', address: '10.107.0.2' }]).text
    const ab = updateHostsText(a, [{ hostname: 'api.prod', address: '10.113.0.2' }], { instance: 'work' }).text
    assert.match(ab, /# BEGIN ngrokd instance work managed block \(do not edit\)\n10\.113\.0\.2\tapi\.prod\n# END ngrokd instance work managed block/)
    assert.deepEqual(parseHostsBlock(ab).records, [{ hostname: 'api.prod', address: '10.107.0.2' }], 'the default daemon sees only its block')
    assert.deepEqual(parseHostsBlock(ab, { instance: 'work' }).records, [{ hostname: 'api.prod', address: '10.113.0.2' }])
    assert.equal(parseHostsBlock(ab).strayMarkers.length, 0, "another instance's markers are not stray markers of ours")
    // an instance whose name starts like another's ("wor" and "work") does not take the other's block
    assert.deepEqual(parseHostsBlock(ab, { instance: 'wor' }).records, [])
    const cleared = updateHostsText(ab, [], { instance: 'work' }).text
    assert.equal(cleared, a, 'removing one block leaves the other byte for byte')
    assert.equal(updateHostsText(cleared, []).text, user)
  })
})

describe('checkInstanceFlag', () => {
  it('takes what the instance key takes, and calls anything else a usage error of the flag', () => {
    for (const good of ['a', 'acct2', 'abcdefgh', 'configs']) assert.doesNotThrow(() => checkInstanceFlag(good))
    for (const bad of ['', 'Bad_Name', '2acct', 'abcdefghi', 'a-b', 'config', 'read']) {
      assert.throws(() => checkInstanceFlag(bad), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_USAGE') && e.message.includes(`--instance ${JSON.stringify(bad)}`) && /lower-case letters/.test(e.hint ?? ''), bad)
    }
  })
})
