/**
 * Child of the privileged hosts-file test. Runs under `unshare --mount --propagation private`:
 * bind-mounts a temp file over /etc/hosts (visible to this process only), then drives
 * HostsFileNameResolver against the real path, where rename() fails with EBUSY as in Docker.
 * Prints one JSON line with what it saw; the parent test asserts on it.
 *
 * Refuses to run unless its mount namespace differs from the one the parent passed in
 * (NGROKD_TEST_PARENT_MNTNS), so the real /etc/hosts cannot be touched by mistake.
 */
import { execFileSync } from 'node:child_process'
import { lookup } from 'node:dns/promises'
import { mkdtempSync, readFileSync, statSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { HostsFileNameResolver } from '../hosts-file-name-resolver.js'
import { bindMount, enterPrivateMountNamespace, recordingLogger, removeTempDir } from './private-mount.js'

const HOSTS = '/etc/hosts'

async function main(): Promise<void> {
  enterPrivateMountNamespace()
  const dir = mkdtempSync(join(tmpdir(), 'ngrokd-bind-'))
  const fake = join(dir, 'hosts')
  const original = '127.0.0.1\tlocalhost\n# user comment\n10.0.0.1 user.ngrokd-test' // no final newline
  writeFileSync(fake, original, { mode: 0o644 })
  bindMount(fake, HOSTS)
  try {
    await publishThroughBindMount(fake, original)
  } finally {
    removeTempDir(dir, HOSTS)
  }
}

/** Publishes through the bind-mounted /etc/hosts (its source `fake`, holding `original`) and prints what was seen, as JSON. */
async function publishThroughBindMount(fake: string, original: string): Promise<void> {
  const dir = dirname(fake)
  const inode = statSync(HOSTS).ino

  const logger = recordingLogger()
  const logs = logger.lines

  const stateDir = join(dir, 'state')
  const resolver = new HostsFileNameResolver({ stateDir, logger })
  await resolver.open()
  const records = [
    { hostname: 'api.ngrokd-test', address: '10.107.0.2' },
    { hostname: 'db.ngrokd-test', address: '10.107.0.3' },
  ]
  const first = await resolver.publish({ records })
  const published = readFileSync(HOSTS, 'utf8')
  const viaSource = readFileSync(fake, 'utf8')
  const getent = execFileSync('getent', ['hosts', 'api.ngrokd-test'], { encoding: 'utf8' }).trim()
  const resolved = await lookup('db.ngrokd-test', { family: 4 })
  const listed = await resolver.list()
  const second = await resolver.publish({ records })
  const backupExists = existsSync(join(stateDir, 'hosts.ngrokd-backup'))
  const inflightExists = existsSync(join(stateDir, 'hosts.ngrokd-inflight'))
  await resolver.publish({ records: [] })
  const restored = readFileSync(HOSTS, 'utf8')
  await resolver.close()

  process.stdout.write(
    JSON.stringify({
      original,
      first: first.changed,
      second: second.changed,
      published,
      viaSource,
      getent,
      resolved: resolved.address,
      listed,
      backupExists,
      inflightExists,
      sameInode: statSync(HOSTS).ino === inode,
      restored,
      logs,
    }) + '\n',
  )
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`)
  process.exit(1)
})
