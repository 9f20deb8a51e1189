/**
 * Child of the privileged hosts-file tests: runs one scenario (argv[2]) as root under
 * `unshare --mount --propagation private`, asserting as it goes; exits 1 with the failed assertion
 * on stderr. The hosts file sits on a 64 KiB tmpfs, so filling the disk is cheap and real.
 *
 * - `in-place-full-disk`: the file is bind-mounted over /etc/hosts (rename() onto it fails with
 *   EBUSY, as in Docker) and the tmpfs is full when a change needs more room than is left.
 * - `rename-full-disk`: the same, with the file replaced by rename in its own (full) directory.
 * - `in-place-concurrent-append`: another program appends lines to the bind-mounted /etc/hosts
 *   while the resolver rewrites it many times.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, readdirSync, rmSync, unlinkSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isNgrokdError } from '../../errors/ngrokd-error.js'
import { HostsFileNameResolver } from '../hosts-file-name-resolver.js'
import { HOSTS_BLOCK_BEGIN, HOSTS_BLOCK_END, parseHostsBlock, updateHostsText } from '../hosts-block.js'
import { appendedNumbers, appendedText, rewriteWhileAppending } from './concurrent-append.js'
import { bindMount, enterPrivateMountNamespace, fillUp, mountTmpfs, recordingLogger, removeTempDir } from './private-mount.js'

const HOSTS = '/etc/hosts'
/** User lines before and after an ngrokd block, as a file looks after ngrokd has run for a while. */
const ORIGINAL =
  '127.0.0.1\tlocalhost\n# user comment\n10.0.0.1 before.user-test\n' +
  `${HOSTS_BLOCK_BEGIN}\n10.107.0.2\tapi.prod\n10.107.0.3\tdb.prod\n${HOSTS_BLOCK_END}\n` +
  '10.0.0.2 after.user-test # added after ngrokd\n10.0.0.3 last.user-test\n'
/** 300 names: about 9 KB of block, more than the one free page of the full tmpfs. */
const MANY = Array.from({ length: 300 }, (_, i) => ({ hostname: `svc${i}.ns${i % 7}`, address: `10.107.${1 + Math.floor(i / 250)}.${(i % 250) + 2}` }))

async function fullDisk(mode: 'in-place' | 'rename'): Promise<void> {
  const disk = mkdtempSync(join(tmpdir(), 'ngrokd-disk-'))
  const stateDir = mkdtempSync(join(tmpdir(), 'ngrokd-state-')) // on another file system than the disk
  try {
    mountTmpfs(disk, '64k')
    const file = join(disk, 'hosts')
    writeFileSync(file, ORIGINAL)
    if (mode === 'in-place') bindMount(file, HOSTS)
    const path = mode === 'in-place' ? HOSTS : file
    const logger = recordingLogger()
    const names = new HostsFileNameResolver({ path, stateDir, logger })
    await names.open()
    fillUp(join(disk, 'filler'))
    const before = readFileSync(path)

    // 1. A change that does not fit: refused loudly, the file keeps every byte.
    const failed = await names.publish({ records: MANY }).then(() => undefined, (e: unknown) => e)
    assert.equal(readFileSync(path).toString('latin1'), before.toString('latin1'), 'the file after a write that ran out of space')
    assert.ok(isNgrokdError(failed, 'NGROKD_ERR_NAMES_FROZEN'), `publish() must reject with NGROKD_ERR_NAMES_FROZEN, got ${String(failed)}`)
    assert.match(failed.message, new RegExp(`${path.replaceAll('/', '\\/')}.*ENOSPC`))
    assert.match(failed.hint ?? '', /free space/)
    assert.deepEqual(readdirSync(disk).sort(), ['filler', 'hosts'], 'no temp file left on the full disk')
    const health = names.health()
    assert.equal(health.state, 'frozen')
    assert.equal(health.error?.code, 'NGROKD_ERR_NAMES_FROZEN')
    assert.match(health.error?.message ?? '', /ENOSPC/)
    // doctor runs in another process: a fresh instance sees it too
    for (const resolver of [names, new HostsFileNameResolver({ path, stateDir })]) {
      const frozen = (await resolver.diagnose()).find((c) => c.id === 'hosts-file.frozen')
      assert.equal(frozen?.status, 'fail', 'diagnose() reports the frozen names')
      assert.equal(frozen?.code, 'NGROKD_ERR_NAMES_FROZEN')
    }

    // 2. The next reconcile retries; the disk is still full: refused again, nothing damaged, the backup
    //    still holds the good content.
    await assert.rejects(names.publish({ records: MANY }), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_NAMES_FROZEN'))
    assert.equal(readFileSync(path).toString('latin1'), before.toString('latin1'), 'the file after the retry')
    if (mode === 'in-place') assert.equal(readFileSync(join(stateDir, 'hosts.ngrokd-backup'), 'latin1'), before.toString('latin1'), 'the backup')
    assert.equal(logger.lines.filter((l) => l.startsWith('error: ') && /ENOSPC/.test(l)).length, 1, 'loud once, quiet on retries: ' + logger.lines.join('\n'))

    // 3. Space is freed: the next publish goes through and the freeze ends.
    unlinkSync(join(disk, 'filler'))
    assert.deepEqual(await names.publish({ records: MANY }), { changed: true })
    const after = readFileSync(path, 'latin1')
    assert.equal(after, updateHostsText(before.toString('latin1'), MANY).text)
    assert.equal(parseHostsBlock(after).records.length, MANY.length)
    assert.equal(names.health().state, 'ok')
    assert.equal((await names.diagnose()).find((c) => c.id === 'hosts-file.frozen'), undefined)
    assert.equal(existsSync(join(stateDir, 'hosts.ngrokd-frozen')), false)
    assert.ok(logger.lines.some((l) => l.startsWith('info: ') && /names are published again/.test(l)), logger.lines.join('\n'))
    await names.close()
  } finally {
    rmSync(stateDir, { recursive: true, force: true })
    removeTempDir(disk, ...(mode === 'in-place' ? [HOSTS] : []), disk)
  }
}

async function concurrentAppend(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ngrokd-race-'))
  try {
    const file = join(dir, 'hosts')
    const original = '127.0.0.1\tlocalhost\n# user comment\n'
    writeFileSync(file, original)
    bindMount(file, HOSTS)
    const names = new HostsFileNameResolver({ stateDir: join(dir, 'state') })
    await names.open()
    const { appended, last } = await rewriteWhileAppending(names, HOSTS, 60)
    await names.publish({ records: last }) // the next reconcile
    await names.close()
    const text = readFileSync(HOSTS, 'utf8')
    assert.ok(appended > 0)
    assert.deepEqual(appendedNumbers(text), [...Array(appended).keys()], `lines lost or reordered (${appended} appended)`)
    assert.equal(updateHostsText(text, []).text, original + appendedText(appended), 'the file outside the block')
    assert.deepEqual(parseHostsBlock(text).records, last)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const scenarios: Record<string, () => Promise<void>> = {
  'in-place-full-disk': () => fullDisk('in-place'),
  'rename-full-disk': () => fullDisk('rename'),
  'in-place-concurrent-append': concurrentAppend,
}

async function main(): Promise<void> {
  const scenario = scenarios[process.argv[2] ?? '']
  if (!scenario) throw new Error(`unknown scenario ${process.argv[2]}; one of ${Object.keys(scenarios).join(', ')}`)
  enterPrivateMountNamespace()
  await scenario()
  process.stdout.write(`ok ${process.argv[2]}\n`)
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`)
  process.exit(1)
})
