import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, readdir, rm, writeFile, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isNgrokdError } from '../errors/ngrokd-error.js'
import { recordingLogger } from '../testing/recording-logger.js'
import { NETWORK_PORTS_FILE, NetworkPorts, networkPortKey, type PortAssignment } from './network-ports.js'

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ngrokd-ports-'))
  try {
    await fn(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

const portsOf = (a: PortAssignment[]): Array<number | string> => a.map((x) => ('port' in x ? x.port : x.error.code))

describe('NetworkPorts', () => {
  it('counts from start_port, one port per hostname:port, and gives the same port back', async () => {
    await withDir(async (dir) => {
      const ports = new NetworkPorts({ stateDir: dir })
      await ports.open({ startPort: 20000 })
      const keys = [networkPortKey('api.prod', 80), networkPortKey('api.prod', 5432), networkPortKey('web.prod', 80)]
      assert.deepEqual(keys, ['api.prod:80', 'api.prod:5432', 'web.prod:80'])
      assert.deepEqual(portsOf(await ports.assign({ keys })), [20000, 20001, 20002])
      assert.deepEqual(portsOf(await ports.assign({ keys: [...keys].reverse() })), [20002, 20001, 20000], 'known keys keep their ports')
      assert.equal(ports.lookup('web.prod:80'), 20002)
      assert.equal(ports.lookup('nope:1'), undefined)
      await ports.close()
    })
  })

  it('persists atomically in state_dir: a restart gives every key its port, released ones included', async () => {
    await withDir(async (dir) => {
      const first = new NetworkPorts({ stateDir: dir })
      await first.open({ startPort: 30000 })
      await first.assign({ keys: ['a.x:80', 'b.x:80', 'c.x:80'] })
      await first.release({ keys: ['b.x:80'] })
      await first.close()
      const file = join(dir, NETWORK_PORTS_FILE)
      assert.equal((await stat(file)).mode & 0o777, 0o600)
      assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), {
        version: 1,
        startPort: 30000,
        entries: [
          { key: 'a.x:80', port: 30000, active: true },
          { key: 'b.x:80', port: 30001, active: false, released: 1 },
          { key: 'c.x:80', port: 30002, active: true },
        ],
      })
      assert.deepEqual((await readdir(dir)).sort(), [NETWORK_PORTS_FILE], 'no temp file left behind')

      const second = new NetworkPorts({ stateFile: file })
      await second.open({ startPort: 30000 })
      assert.deepEqual(second.list(), [
        { key: 'a.x:80', port: 30000, active: true },
        { key: 'b.x:80', port: 30001, active: false },
        { key: 'c.x:80', port: 30002, active: true },
      ])
      assert.deepEqual(portsOf(await second.assign({ keys: ['d.x:80', 'b.x:80', 'c.x:80'] })), [30003, 30001, 30002], 'a new key does not take a released port; the released key gets its own back')
      await second.close()
    })
  })

  it('skips ports to avoid, and recycles the oldest released port only when the range is full', async () => {
    await withDir(async (dir) => {
      const logger = recordingLogger()
      const ports = new NetworkPorts({ stateDir: dir, logger })
      await ports.open({ startPort: 65530 }) // 65530..65535: six ports
      assert.deepEqual(portsOf(await ports.assign({ keys: ['a:1', 'b:1', 'c:1'], avoid: [65531] })), [65530, 65532, 65533])
      await ports.release({ keys: ['b:1'] })
      await ports.release({ keys: ['a:1'] })
      assert.deepEqual(portsOf(await ports.assign({ keys: ['d:1', 'e:1'] })), [65534, 65535], 'never-used ports first')
      assert.deepEqual(portsOf(await ports.assign({ keys: ['f:1'] })), [65532], 'then the port released first (b)')
      assert.deepEqual(portsOf(await ports.assign({ keys: ['g:1', 'h:1'] })), [65530, 'NGROKD_ERR_ADDRESS_EXHAUSTED'], 'then a, then none')
      assert.equal(ports.lookup('b:1'), undefined, 'a recycled mapping is gone')
      assert.ok(logger.at('info').some((r) => /recycling port 65532/.test(r.msg)))
      const [failed] = await ports.assign({ keys: ['i:1'] })
      assert.ok(failed && 'error' in failed && isNgrokdError(failed.error, 'NGROKD_ERR_ADDRESS_EXHAUSTED'))
      assert.match(failed.error.message, /no free port from 65530 to 65535 for i:1/)
      await ports.close()
    })
  })

  it('moves a port that an endpoint now uses as its own; the others keep theirs', async () => {
    await withDir(async (dir) => {
      const log = recordingLogger()
      const ports = new NetworkPorts({ stateDir: dir, logger: log })
      await ports.open({ startPort: 20000 })
      const keys = ['api.prod:80', 'db.prod:80', 'db.prod:5433']
      assert.deepEqual(portsOf(await ports.assign({ keys, avoid: [80, 5433] })), [20000, 20001, 20002])
      // tcp://late.prod:20001 appears: its own port is 20001, so db.prod:80 moves; late.prod gets a port too
      assert.deepEqual(portsOf(await ports.assign({ keys: [...keys, 'late.prod:20001'], avoid: [80, 5433, 20001] })), [20000, 20003, 20002, 20004])
      assert.deepEqual(
        log.at('warn').map((r) => r.msg),
        ['network ports: db.prod:80 moves from port 20001 to 20003: an endpoint now uses 20001 itself, which the wildcard net.network.listen would collide with'],
      )
      await ports.close()
      const restarted = new NetworkPorts({ stateDir: dir })
      await restarted.open({ startPort: 20000 })
      assert.equal(restarted.lookup('db.prod:80'), 20003, 'the move is saved')
      await restarted.close()
    })
  })

  it('drops mappings below a raised start_port and keeps the others', async () => {
    await withDir(async (dir) => {
      const ports = new NetworkPorts({ stateDir: dir })
      await ports.open({ startPort: 20000 })
      await ports.assign({ keys: ['a:80', 'b:80'] })
      await ports.close()
      const logger = recordingLogger()
      const again = new NetworkPorts({ stateDir: dir, logger })
      await again.open({ startPort: 20001 })
      assert.deepEqual(again.list(), [{ key: 'b:80', port: 20001, active: true }])
      assert.deepEqual(portsOf(await again.assign({ keys: ['a:80'] })), [20002])
      assert.equal(logger.at('warn').length, 1)
      await again.close()
    })
  })

  it('moves a corrupt state file aside and starts afresh', async () => {
    await withDir(async (dir) => {
      const file = join(dir, NETWORK_PORTS_FILE)
      await writeFile(file, '{"version":1,"entries":[{"key":"a","port":"x","active":true}]}')
      const logger = recordingLogger()
      const ports = new NetworkPorts({ stateFile: file, logger })
      await ports.open({ startPort: 20000 })
      assert.deepEqual(ports.list(), [])
      assert.ok((await readdir(dir)).some((n) => n.startsWith(`${NETWORK_PORTS_FILE}.corrupt-`)))
      assert.match(logger.at('warn')[0]!.msg, /entry 0 has no port/)
      await ports.close()
    })
  })

  it('refuses use before open() and a start_port that is not a port', async () => {
    const ports = new NetworkPorts({ stateDir: '/nonexistent-ngrokd' })
    await assert.rejects(ports.assign({ keys: ['a:1'] }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_DRIVER_MISUSE'))
    await assert.rejects(ports.open({ startPort: 70000 }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID'))
  })

  it('reports a state file it cannot write with NGROKD_ERR_STATE, and saves on the next batch', async () => {
    await withDir(async (dir) => {
      const sub = join(dir, 'sub')
      const ports = new NetworkPorts({ stateFile: join(sub, NETWORK_PORTS_FILE) })
      await ports.open({ startPort: 20000 })
      await writeFile(sub, '') // a file where the state directory should be: the write fails
      await assert.rejects(ports.assign({ keys: ['a:80'] }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_STATE'))
      await rm(sub)
      assert.deepEqual(portsOf(await ports.assign({ keys: ['a:80'] })), [20000], 'the mapping held in memory')
      assert.equal(JSON.parse(await readFile(join(sub, NETWORK_PORTS_FILE), 'utf8')).entries.length, 1, 'an unchanged batch saved what had failed')
      await ports.close()
    })
  })
})
