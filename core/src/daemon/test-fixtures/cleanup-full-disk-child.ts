/**
 * Child of the privileged cleanup test: as root under `unshare --mount --propagation private`, a daemon's
 * leftovers (a hosts block in a bind-mounted hosts file, two addresses on its interface) with `state_dir` on a
 * full 64 KiB tmpfs, so that neither the cleanup's lock nor the hosts file's backup can be written. Prints the
 * cleanup's report and what is left as JSON on stdout.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { DaemonConfig } from '../../config/daemon-config.js'
import { defaultConfig } from '../../config/resolve-config.js'
import { HostsFileNameResolver } from '../../names/hosts-file-name-resolver.js'
import { bindMount, enterPrivateMountNamespace, fillUp, recordingLogger, removeTempDir } from '../../names/test-fixtures/private-mount.js'
import { FakeInterface, type FakeSystem } from '../../testing/fakes/fake-interface.js'
import { cleanupLeftovers } from '../cleanup.js'

enterPrivateMountNamespace()
const dir = mkdtempSync(join(tmpdir(), 'ngrokd-cleanup-full-'))
const stateDir = join(dir, 'state')
const hostsFile = join(dir, 'hosts')
try {
  mkdirSync(stateDir, { mode: 0o700 })
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', stateDir])
  // rename() onto a mount point fails (EBUSY, as for Docker's /etc/hosts): the block is removed in place, with a backup in state_dir
  writeFileSync(join(dir, 'hosts-source'), '127.0.0.1 localhost\n')
  writeFileSync(hostsFile, '')
  bindMount(join(dir, 'hosts-source'), hostsFile)
  const base = defaultConfig(dir)
  const config: DaemonConfig = {
    ...base,
    stateDir,
    control: { ...base.control, socket: join(dir, 'ngrokd.sock') },
    names: { ...base.names, hostsFile },
    net: { ...base.net, interfaceName: 'ngrkf0' },
  }
  const names = new HostsFileNameResolver({ path: hostsFile, stateDir })
  await names.open()
  await names.publish({ records: [{ hostname: 'api.demo', address: '10.107.0.2' }] })
  await names.close()
  const system: FakeSystem = { interfaces: new Map([['ngrkf0', new Set(['10.107.0.2', '10.107.0.3'])]]) }
  fillUp(join(stateDir, 'filler'))
  const logger = recordingLogger()
  const report = await cleanupLeftovers(config, logger, { runDir: join(dir, 'run'), interface: new FakeInterface({ system }) })
  console.log(JSON.stringify({ report, hosts: readFileSync(hostsFile, 'utf8'), interfaces: [...system.interfaces.keys()], warnings: logger.lines.filter((l) => l.startsWith('warn:')) }))
} finally {
  removeTempDir(dir, hostsFile, stateDir)
}
