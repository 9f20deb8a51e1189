import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { defaultConfigPath, defaultControlSocket, defaultRunDir, defaultStateDir, POSIX_CONFIG_PATH, POSIX_CONTROL_SOCKET, POSIX_STATE_DIR, windowsNgrokdDir } from './platform-defaults.js'
import { instanceConfigPath } from './instance.js'
import { resolveConfig } from './resolve-config.js'
import { getConfigModel } from './config-schema.js'

const win = (env: NodeJS.ProcessEnv = { ProgramData: 'C:\\ProgramData' }) => ({ platform: 'win32' as const, env })

describe('platform defaults: config file and state_dir', () => {
  it('POSIX keeps /etc/ngrokd/config.yml and /var/lib/ngrokd, the schema default', () => {
    for (const platform of ['linux', 'darwin'] as const) {
      assert.equal(defaultConfigPath({ platform, env: {} }), '/etc/ngrokd/config.yml')
      assert.equal(defaultStateDir({ platform, env: {} }), '/var/lib/ngrokd')
    }
    assert.equal(getConfigModel().byPath.get('state_dir')!.schema.default, POSIX_STATE_DIR)
    assert.equal(POSIX_CONFIG_PATH, '/etc/ngrokd/config.yml')
  })

  it('Windows: under %ProgramData%\\ngrokd, never the drive root any user may create folders in', () => {
    assert.equal(defaultConfigPath(win()), 'C:\\ProgramData\\ngrokd\\config.yml')
    assert.equal(defaultStateDir(win()), 'C:\\ProgramData\\ngrokd\\state')
    assert.equal(defaultConfigPath(win({ ProgramData: 'D:\\Data' })), 'D:\\Data\\ngrokd\\config.yml')
    assert.equal(defaultStateDir(win({ PROGRAMDATA: 'D:\\Data\\' })), 'D:\\Data\\ngrokd\\state')
  })

  it('Windows: a missing or relative ProgramData falls back to C:\\ProgramData', () => {
    for (const env of [{}, { ProgramData: '' }, { ProgramData: 'ProgramData' }, { ProgramData: '\\ProgramData' }, { ProgramData: '..\\x' }]) {
      assert.equal(windowsNgrokdDir(env), 'C:\\ProgramData\\ngrokd', JSON.stringify(env))
    }
  })

  it("Windows: an instance's file and state_dir sit beside the default daemon's", () => {
    assert.equal(instanceConfigPath(defaultConfigPath(win()), 'work'), 'C:\\ProgramData\\ngrokd\\work.yml')
    const base = resolveConfig({}, { env: {}, platformDefaults: win() }).config
    assert.equal(base.stateDir, 'C:\\ProgramData\\ngrokd\\state')
    const work = resolveConfig({ instance: 'work' }, { env: {}, platformDefaults: win() }).config
    assert.equal(work.stateDir, 'C:\\ProgramData\\ngrokd\\state-work')
  })

  it('control.socket: /run/ngrokd/ngrokd.sock, the schema default; on macOS (no /run; /var/run writable by group daemon) /var/db/ngrokd/ngrokd.sock, and an instance\'s beside it', () => {
    assert.equal(getConfigModel().byPath.get('control.socket')!.schema.default, POSIX_CONTROL_SOCKET)
    assert.equal(defaultControlSocket({ platform: 'linux' }), '/run/ngrokd/ngrokd.sock')
    const mac = { platform: 'darwin' as const, env: {} }
    assert.equal(resolveConfig({}, { env: {}, platformDefaults: mac }).config.control.socket, '/var/db/ngrokd/ngrokd.sock')
    assert.equal(resolveConfig({ instance: 'work' }, { env: {}, platformDefaults: mac }).config.control.socket, '/var/db/ngrokd/ngrokd-work.sock')
    assert.equal(resolveConfig({}, { env: {}, platformDefaults: { platform: 'linux' } }).config.control.socket, '/run/ngrokd/ngrokd.sock')
  })

  it('the file and the environment still win over the platform default', () => {
    assert.equal(resolveConfig({ state_dir: '/srv/ngrokd' }, { env: {}, platformDefaults: win() }).config.stateDir, '/srv/ngrokd')
    assert.equal(resolveConfig({}, { env: { NGROKD_STATE_DIR: '/srv/env' }, platformDefaults: win() }).config.stateDir, '/srv/env')
    assert.equal(resolveConfig({ instance: 'work', state_dir: '/srv/w' }, { env: {}, platformDefaults: win() }).config.stateDir, '/srv/w')
    assert.equal(resolveConfig({}, { env: {}, platformDefaults: { platform: 'linux' } }).config.stateDir, '/var/lib/ngrokd')
  })
})

describe('defaultRunDir', () => {
  it('as root, a folder only root may write on each OS: the interface, hosts-block and subnet locks go there', () => {
    assert.equal(defaultRunDir({ platform: 'linux', elevated: true }), '/run/ngrokd')
    // not /var/run: root:daemon 0775 on macOS
    assert.equal(defaultRunDir({ platform: 'darwin', elevated: true }), '/var/db/ngrokd/run')
    assert.equal(defaultRunDir({ platform: 'win32', elevated: true, env: { ProgramData: 'D:\\ProgramData' } }), 'D:\\ProgramData\\ngrokd\\run')
    assert.equal(defaultRunDir({ platform: 'win32', elevated: true, env: {} }), 'C:\\ProgramData\\ngrokd\\run')
  })

  it('none for a user (only the state dir is locked), nor on another OS', () => {
    for (const platform of ['linux', 'darwin', 'win32'] as const) assert.equal(defaultRunDir({ platform, elevated: false }), null)
    assert.equal(defaultRunDir({ platform: 'freebsd', elevated: true }), null)
  })
})
