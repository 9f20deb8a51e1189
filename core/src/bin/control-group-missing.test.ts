// `ngrokd run` with a control.group that does not exist: the error names the group and the fix, and the
// daemon created nothing first (no state_dir, no socket). The real CLI, as root, in private namespaces.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { NGROKD_BIN } from '../daemon/daemon-process.js'

const run = promisify(execFile)
const exists = (path: string) => access(path).then(() => true, () => false)

describe('run with a control.group that does not exist', { skip: process.getuid?.() !== 0 ? 'needs root (unshare)' : false }, () => {
  let top: string
  let configFile: string
  before(async () => {
    top = await mkdtemp(join(tmpdir(), 'ngrokd-group-'))
    configFile = join(top, 'ngrokd.json')
    const config = {
      state_dir: join(top, 'state'),
      names: { hosts_file: join(top, 'hosts') },
      net: { driver: 'loopback-alias', subnet: '127.107.0.0/16' },
      control: { socket: join(top, 'run', 'ctl.sock'), group: 'ngrokd-no-such-group' },
    }
    await writeFile(join(top, 'hosts'), '127.0.0.1 localhost\n')
    await writeFile(configFile, JSON.stringify(config))
  })
  after(() => rm(top, { recursive: true, force: true }))

  it('fails naming the group and the fix, before it creates state_dir or the socket', async () => {
    const r: { stderr: string; code?: number } = await run('unshare', ['-n', '-m', process.execPath, NGROKD_BIN, 'run', '--config', configFile], { env: { PATH: process.env.PATH } }).catch(
      (e: { stderr: string; code: number }) => e,
    )
    assert.notEqual(r.code ?? 0, 0, r.stderr)
    assert.match(r.stderr, /control\.group \\?"ngrokd-no-such-group\\?" does not exist/)
    assert.match(r.stderr, /groupadd/)
    assert.equal(await exists(join(top, 'state')), false, 'state_dir was created')
    assert.equal(await exists(join(top, 'run')), false, 'the socket directory was created')
  })
})
