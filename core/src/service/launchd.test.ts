import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { parse } from 'plist'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { launchdService, renderPlist } from './launchd.js'

const paths = { nodePath: '/usr/local/bin/node', cliPath: '/usr/local/lib/node_modules/ngrokd/bin/ngrokd.js', configPath: '/etc/ngrokd/config.yml', exitTimeoutSeconds: 45 }

describe('launchd job', () => {
  it('the plist has every key launchd needs, read back by a plist parser', () => {
    const service = launchdService(paths)
    assert.equal(service.label, 'com.ngrok.ngrokd')
    assert.equal(service.plistPath, '/Library/LaunchDaemons/com.ngrok.ngrokd.plist')
    assert.deepEqual(parse(service.plist), {
      Label: 'com.ngrok.ngrokd',
      ProgramArguments: ['/usr/local/bin/node', '/usr/local/lib/node_modules/ngrokd/bin/ngrokd.js', 'run', '--config', '/etc/ngrokd/config.yml'],
      RunAtLoad: true,
      KeepAlive: { SuccessfulExit: false },
      ExitTimeOut: 45,
      StandardOutPath: '/var/log/ngrokd.log',
      StandardErrorPath: '/var/log/ngrokd.log',
    })
    assert.match(service.plist, /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<!DOCTYPE plist PUBLIC "-\/\/Apple\/\/DTD PLIST 1\.0\/\/EN"/)
  })

  it('returns the launchctl commands to install, uninstall (then ngrokd cleanup) and inspect it', () => {
    const service = launchdService({ ...paths, label: 'dev.example.ngrokd', launchDaemonsDir: '/tmp/LaunchDaemons', logPath: '/tmp/ngrokd.log' })
    assert.equal(service.plistPath, '/tmp/LaunchDaemons/dev.example.ngrokd.plist')
    assert.deepEqual(service.unloadFirst, [['/bin/launchctl', 'bootout', 'system/dev.example.ngrokd']], 'a second install replaces the loaded job')
    assert.deepEqual(service.install, [
      ['/bin/launchctl', 'enable', 'system/dev.example.ngrokd'],
      ['/bin/launchctl', 'bootstrap', 'system', '/tmp/LaunchDaemons/dev.example.ngrokd.plist'],
    ])
    assert.deepEqual(service.uninstall, [
      ['/bin/launchctl', 'bootout', 'system/dev.example.ngrokd'],
      ['/usr/local/bin/node', '/usr/local/lib/node_modules/ngrokd/bin/ngrokd.js', 'cleanup', '--config', '/etc/ngrokd/config.yml'],
    ])
    assert.deepEqual(service.status, [['/bin/launchctl', 'print', 'system/dev.example.ngrokd']])
    assert.equal((parse(service.plist) as { StandardErrorPath: string }).StandardErrorPath, '/tmp/ngrokd.log')
  })

  it("the NGROKD_* variables the install ran with are the job's too", () => {
    const service = launchdService({ ...paths, environment: { NGROKD_STATE_DIR: '/srv/ngrokd' } })
    assert.deepEqual((parse(service.plist) as { EnvironmentVariables: unknown }).EnvironmentVariables, { NGROKD_STATE_DIR: '/srv/ngrokd' })
  })

  it('paths with XML characters survive the round trip', () => {
    const service = launchdService({ ...paths, configPath: '/Users/a&b/<ngrokd> "conf".yml' })
    assert.equal((parse(service.plist) as { ProgramArguments: string[] }).ProgramArguments[4], '/Users/a&b/<ngrokd> "conf".yml')
    assert.deepEqual(parse(renderPlist({ n: 0, list: [], empty: {}, t: true })), { n: 0, list: [], empty: {}, t: true })
    assert.throws(() => renderPlist({ bad: 'bell\u0007' }), RangeError)
  })

  it('a named instance is a job of its own: its label, plist, log and --instance on each command line', () => {
    const service = launchdService({ ...paths, configPath: '/etc/ngrokd/work.yml', instance: 'work' })
    assert.equal(service.label, 'com.ngrok.ngrokd.work')
    assert.equal(service.plistPath, '/Library/LaunchDaemons/com.ngrok.ngrokd.work.plist')
    const plist = parse(service.plist) as { ProgramArguments: string[]; StandardOutPath: string }
    assert.deepEqual(plist.ProgramArguments.slice(2), ['run', '--config', '/etc/ngrokd/work.yml', '--instance', 'work'])
    assert.equal(plist.StandardOutPath, '/var/log/ngrokd-work.log')
    assert.deepEqual(service.uninstall.at(-1), [paths.nodePath, paths.cliPath, 'cleanup', '--config', '/etc/ngrokd/work.yml', '--instance', 'work'])
    assert.deepEqual(service.install.at(-1), ['/bin/launchctl', 'bootstrap', 'system', '/Library/LaunchDaemons/com.ngrok.ngrokd.work.plist'])
    assert.throws(() => launchdService({ ...paths, instance: 'Work/..' }), (e) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID') && /not an instance name/.test(e.message))
  })

  it('refuses relative paths and a label that is not reverse-DNS, with coded errors', () => {
    for (const bad of [{ nodePath: 'node' }, { cliPath: './ngrokd.js' }, { configPath: 'ngrokd.yaml' }, { logPath: 'ngrokd.log' }]) {
      assert.throws(() => launchdService({ ...paths, ...bad }), (e) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID') && /absolute path/.test(e.message), JSON.stringify(bad))
    }
    assert.throws(() => launchdService({ ...paths, label: 'com.ngrok/../evil' }), (e) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID') && /reverse-DNS/.test(e.message))
  })
})
