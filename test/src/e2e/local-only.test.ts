// Security review findings, reproduced against the real daemon: endpoints answer only this machine
// unless network mode is on (a neighbour that routes the subnet to us over a veth pair is refused),
// and a hostname whose port another program holds is never published.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, execFileSync } from 'node:child_process'
import { createServer, type Server } from 'node:net'
import { promisify } from 'node:util'
import { CloudSimulator, type EchoReply } from '@ngrokd/plugin-simulator'
import { netnsSkip } from '../helpers/netns.js'
import { netDriverCases } from '../helpers/net-drivers.js'
import { E2eDaemon } from '../helpers/e2e-daemon.js'
import { snapshotHostsFile } from '../helpers/hosts-guard.js'
import { httpRequest } from '../helpers/clients.js'
import { readHosts } from '../helpers/hosts-file.js'
import { NGROKD_BIN } from '@ngrokd/core'

/** Whether the hosts file gives `hostname` any address. */
const published = (hostname: string): boolean => readHosts().addressesOf.has(hostname)

const run = promisify(execFile)
const net = netDriverCases('lan')[1]! // linux-netlink on 10.107.0.0/16: a real link a neighbour can route to
const NEIGHBOUR = 'ngrokd-nb'
const LAN_US = '192.168.77.1'
const LAN_NEIGHBOUR = '192.168.77.2'

/** What a client in the neighbour namespace gets from address:port: the bytes, or how it failed. */
async function fromNeighbour(address: string, port: number): Promise<string> {
  const script = `const s=require('net').connect(${port},'${address}');let got='';s.on('connect',()=>s.write('GET / HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n'));s.on('data',(d)=>got+=d);s.on('error',(e)=>{console.log('ERROR '+e.code);process.exit(0)});s.on('close',()=>{console.log(got?'DATA '+got.split('\\r\\n')[0]:'CLOSED');process.exit(0)});setTimeout(()=>{console.log('TIMEOUT');process.exit(0)},20000)`
  const { stdout } = await run('ip', ['netns', 'exec', NEIGHBOUR, process.execPath, '-e', script])
  return stdout.trim()
}

describe('a neighbour on the LAN', { skip: netnsSkip }, () => {
  let sim: CloudSimulator
  let daemon: E2eDaemon
  const hosts = snapshotHostsFile()

  before(async () => {
    hosts.take()
    // a second namespace, routed to this one over a veth pair: the LAN neighbour
    execFileSync('ip', ['netns', 'add', NEIGHBOUR])
    execFileSync('ip', ['link', 'add', 'ngk-lan-a', 'type', 'veth', 'peer', 'name', 'ngk-lan-b', 'netns', NEIGHBOUR])
    execFileSync('ip', ['addr', 'add', `${LAN_US}/24`, 'dev', 'ngk-lan-a'])
    execFileSync('ip', ['link', 'set', 'ngk-lan-a', 'up'])
    for (const args of [['link', 'set', 'lo', 'up'], ['addr', 'add', `${LAN_NEIGHBOUR}/24`, 'dev', 'ngk-lan-b'], ['link', 'set', 'ngk-lan-b', 'up'], ['route', 'add', '10.107.0.0/16', 'via', LAN_US]]) {
      execFileSync('ip', ['netns', 'exec', NEIGHBOUR, 'ip', ...args])
    }
    sim = await CloudSimulator.start()
    sim.addEndpoint({ url: 'http://private.e2e' })
  })

  after(async () => {
    await daemon?.dispose()
    await sim?.stop()
    execFileSync('ip', ['link', 'del', 'ngk-lan-a'], { stdio: 'ignore' })
    execFileSync('ip', ['netns', 'del', NEIGHBOUR], { stdio: 'ignore' })
    hosts.assertRestored()
  })

  test('without network mode: refused and counted, while this machine is served', async () => {
    daemon = E2eDaemon.start({ name: 'lan-local', sim, net })
    await daemon.waitReady((s) => s.services?.serving === 1)
    const [svc] = await daemon.services()
    const address = svc!.address!
    assert.equal((await httpRequest('http://private.e2e/')).status, 200, 'a local client is served')
    const got = await fromNeighbour(address, 80)
    assert.match(got, /^(ERROR ECONNRESET|CLOSED)$/, `the neighbour got ${got}`)
    const [after] = await daemon.services()
    assert.equal(after!.totalConnections, 1, 'only the local connection was forwarded')
    const status = await daemon.status()
    assert.equal(status.traffic.errors.NON_LOCAL_CLIENT, 1)
    assert.equal(status.traffic.refused, 1)
    assert.ok(daemon.logRecords().some((l) => new RegExp(`refused a connection from ${LAN_NEIGHBOUR}`).test(l.msg)), 'the log names the source')
    await daemon.dispose()
  })

  test('with network mode: the network listener serves the neighbour, the endpoint address still does not', async () => {
    daemon = E2eDaemon.start({ name: 'lan-net', sim, net, extraConfig: { net: { network: { listen: LAN_US, start_port: 23000 } } } })
    await daemon.waitReady((s) => s.services?.serving === 1)
    const [svc] = await daemon.services()
    assert.equal(svc!.network?.port, 23000)
    const viaNetwork = await fromNeighbour(LAN_US, 23000)
    assert.match(viaNetwork, /^DATA HTTP\/1\.1 200/, `the neighbour got ${viaNetwork}`)
    assert.match(await fromNeighbour(svc!.address!, 80), /^(ERROR ECONNRESET|CLOSED)$/)
  })
})

describe('a port another program holds', { skip: netnsSkip }, () => {
  let sim: CloudSimulator
  let daemon: E2eDaemon
  let squatter: Server
  const hosts = snapshotHostsFile()

  before(async () => {
    hosts.take()
    // an ordinary local database on every address: 10.107.x.y:5432 cannot be ngrokd's
    squatter = createServer((s) => s.end('local database\n'))
    await new Promise<void>((r) => squatter.listen(5432, '0.0.0.0', r))
    sim = await CloudSimulator.start()
    sim.addEndpoint({ url: 'tcp://db.e2e:5432' })
    sim.addEndpoint({ url: 'http://db.e2e' })
    sim.addEndpoint({ url: 'http://web.e2e' })
  })

  after(async () => {
    await daemon?.dispose()
    await sim?.stop()
    await new Promise<void>((r) => squatter.close(() => r()))
    hosts.assertRestored()
  })

  test('withholds the hostname, names the holder in status and list, and publishes it once the port is free', async () => {
    daemon = E2eDaemon.start({ name: 'squat', sim, net: netDriverCases('squat')[1]! })
    await daemon.waitReady((s) => s.services?.total === 3)
    assert.equal(published('db.e2e'), false, 'db.e2e must not resolve to an address where another program answers')
    assert.equal(published('web.e2e'), true)
    const byUrl = new Map((await daemon.services()).map((s) => [s.url, s]))
    const tcp = byUrl.get('tcp://db.e2e:5432')!
    assert.equal(tcp.state, 'error')
    assert.equal(tcp.error?.code, 'NGROKD_ERR_LISTEN')
    assert.match(tcp.error!.message, new RegExp(`held by node \\(pid ${process.pid}\\) on 0\\.0\\.0\\.0:5432`))
    assert.equal(byUrl.get('http://db.e2e')?.error?.code, 'NGROKD_ERR_NAME_WITHHELD')
    const list = await run(process.execPath, [NGROKD_BIN, 'list', '--config', daemon.configFile], { env: E2eDaemon.childEnv() })
    assert.match(list.stdout, /held by node \(pid \d+\) on 0\.0\.0\.0:5432/)
    // the fix is shown where the user looks, not only in the log: the wildcard holder, and what to change
    assert.match(list.stdout, /\n {2}fix: node \(pid \d+\) on 0\.0\.0\.0:5432 already listens on every address, 10\.107\.\d+\.\d+ included: make it listen on 127\.0\.0\.1/)

    await new Promise<void>((r) => squatter.close(() => r()))
    await daemon.pollAfterNow()
    assert.equal(published('db.e2e'), true)
    const res = await httpRequest('http://db.e2e/')
    assert.equal(res.json<EchoReply>().host, 'db.e2e')
  })
})
