import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { defaultConfig } from '../config/resolve-config.js'
import type { DaemonConfig } from '../config/daemon-config.js'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { silentLogger } from '../contracts/logger.js'
import { Daemon } from './daemon.js'

let dir: string
let config: DaemonConfig
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ngrokd-daemon-reload-'))
  const defaults = defaultConfig(dir)
  config = { ...defaults, stateDir: join(dir, 'state'), control: { ...defaults.control, socket: join(dir, 'ngrokd.sock') } }
})
after(() => rm(dir, { recursive: true, force: true }))

test('a daemon started on no config file runs on the one a reload found: status names it', async () => {
  const daemon = new Daemon({ config, logger: silentLogger })
  assert.equal(daemon.status().config.file, undefined)
  const file = join(dir, 'config.yml')
  const result = await daemon.reload({ ...config, log: { ...config.log, level: 'debug' }, net: { ...config.net, subnet: '10.99.0.0/16' } }, file)
  assert.deepEqual(result.restartNeeded, ['net.subnet'])
  assert.deepEqual(daemon.status().config, { file, restartPending: ['net.subnet'] })
})

test('a file whose api.key has no API key\'s shape is refused whole: nothing of it is taken', async () => {
  const daemon = new Daemon({ config, logger: silentLogger })
  await assert.rejects(
    daemon.reload({ ...config, api: { ...config.api, key: 'bad key' }, log: { ...config.log, level: 'debug' } }, join(dir, 'config.yml')),
    (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_API_KEY_MALFORMED') && /^api\.key contains whitespace.*the daemon keeps the configuration it runs on$/.test(e.message),
  )
  assert.deepEqual(daemon.status().config, { restartPending: [] }, 'neither the file nor a pending restart was taken')
})
