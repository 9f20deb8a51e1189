import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import type { DestinationStream } from 'pino'
import { createLogger } from './create-logger.js'

function capture() {
  const lines: string[] = []
  const destination = new Writable({
    write(chunk, _enc, cb) {
      lines.push(chunk.toString())
      cb()
    },
  })
  return { lines, destination: destination as unknown as DestinationStream }
}

test('logs are JSON lines and never carry an API key or a private key', () => {
  const { lines, destination } = capture()
  const logger = createLogger({ level: 'trace', destination })
  const apiKey = '2abcSECRETapikey0123456789'
  const keyPem = '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n'
  logger.info({ config: { api: { url: 'https://api.ngrok.com', key: apiKey } } }, 'configuration')
  logger.info({ apiKey }, 'client')
  logger.debug({ credentials: { certPem: 'x', keyPem } }, 'credentials')
  logger.child({ keyPem }).warn({ headers: { authorization: `Bearer ${apiKey}` } }, 'request')
  const out = lines.join('')
  assert.equal(lines.length, 4)
  for (const line of lines) assert.doesNotThrow(() => JSON.parse(line))
  assert.ok(!out.includes(apiKey), 'the API key leaked into the log')
  assert.ok(!out.includes('PRIVATE KEY'), 'a private key leaked into the log')
  assert.match(out, /\[redacted\]/)
  assert.equal(JSON.parse(lines[0]!).config.api.url, 'https://api.ngrok.com')
})

test('a field whose name says secret is censored at any depth, in a line and in a child\'s bindings', () => {
  const { lines, destination } = capture()
  const logger = createLogger({ level: 'debug', destination })
  const config = { plugins: [{ name: 'tokplug', options: { api_token: 'TOKEN_SECRET_VALUE_123456', webhook: { password: 'PASSWORD_SECRET_VALUE_987' } } }], net: { driver_options: { a: { b: { client_secret: 'DRIVER_SECRET_VALUE_1' } } } } }
  logger.debug({ config }, 'effective configuration')
  logger.child({ component: 'x', auth: { token: 'CHILD_TOKEN_VALUE_1' } }).child({ plugin: 'p' }).info({ passwd: 'PASSWD_VALUE_1' }, 'grandchild')
  const out = lines.join('')
  for (const secret of ['TOKEN_SECRET_VALUE', 'PASSWORD_SECRET_VALUE', 'DRIVER_SECRET_VALUE', 'CHILD_TOKEN_VALUE', 'PASSWD_VALUE']) assert.ok(!out.includes(secret), `${secret} leaked: ${out}`)
  const [first, second] = lines.map((l) => JSON.parse(l))
  assert.deepEqual(first.config.plugins[0].options, { api_token: '[redacted]', webhook: { password: '[redacted]' } })
  assert.equal(first.config.plugins[0].name, 'tokplug')
  assert.deepEqual([second.component, second.plugin, second.auth, second.passwd, second.msg], ['x', 'p', { token: '[redacted]' }, '[redacted]', 'grandchild'], 'bindings of each generation kept, secrets censored')
})

test('secrets inside an Error or a class instance are censored too (the usual names, at fixed paths)', () => {
  const { lines, destination } = capture()
  const logger = createLogger({ level: 'debug', destination })
  class Registration {
    operatorId = 'k8sop_1'
    keyPem = '-----BEGIN PRIVATE KEY-----SECRET_PEM'
  }
  const err = Object.assign(new Error('request failed'), { headers: { authorization: 'Bearer SECRET_API_KEY_123' } })
  logger.info({ registration: new Registration() }, 'class instance')
  logger.error({ err }, 'error with headers')
  const out = lines.join('')
  for (const secret of ['SECRET_PEM', 'SECRET_API_KEY']) assert.ok(!out.includes(secret), `${secret} leaked: ${out}`)
  const [first, second] = lines.map((l) => JSON.parse(l))
  assert.equal(first.registration.operatorId, 'k8sop_1')
  assert.equal(second.err.message, 'request failed', 'the error is still serialised as one')
  assert.equal(second.err.headers.authorization, '[redacted]')
})

test('the level filters', () => {
  const { lines, destination } = capture()
  const logger = createLogger({ level: 'warn', destination })
  logger.info('hidden')
  logger.warn('shown')
  assert.equal(lines.length, 1)
  assert.equal(JSON.parse(lines[0]!).msg, 'shown')
})

test('colour follows NO_COLOR (https://no-color.org): any non-empty value turns it off', async () => {
  const { useColor } = await import('./create-logger.js')
  assert.equal(useColor({}), true)
  assert.equal(useColor({ NO_COLOR: '1' }), false)
  assert.equal(useColor({ NO_COLOR: '' }), true)
})

test('pretty lines to something that is not a terminal (a pipe, the journal) carry no colour codes', async () => {
  const { spawnSync } = await import('node:child_process')
  const script = `import(${JSON.stringify(new URL('./create-logger.js', import.meta.url).href)}).then(({ createLogger }) => createLogger({ pretty: true }).warn('plain'))`
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '', FORCE_COLOR: '1' } })
  assert.match(r.stderr, /WARN.*plain/)
  assert.doesNotMatch(r.stderr, /\x1b\[/, 'no escape sequences')
})

test('an expected (coded) failure is logged without a stack, unless at debug; a bug keeps its stack', async () => {
  const { NgrokdError } = await import('../errors/ngrokd-error.js')
  const expected = new NgrokdError('NGROKD_ERR_API', 'the ngrok API is unreachable', { hint: 'check the network', cause: new Error('ECONNREFUSED') })
  const atInfo = capture()
  const info = createLogger({ level: 'info', destination: atInfo.destination })
  info.error({ err: expected }, 'poll failed')
  info.error({ err: new TypeError('x is undefined') }, 'bug')
  const [coded, bug] = atInfo.lines.map((l) => JSON.parse(l))
  assert.equal(coded.err.stack, undefined)
  assert.equal(coded.err.code, 'NGROKD_ERR_API')
  assert.equal(coded.err.hint, 'check the network')
  assert.match(coded.err.message, /unreachable: ECONNREFUSED/)
  assert.match(bug.err.stack, /TypeError: x is undefined\n\s+at /)
  // the system's answer to a call (a read-only hosts file, a full disk) is expected too
  const readOnly = await import('node:fs/promises').then((fs) => fs.writeFile('/proc/version', 'x')).catch((e: unknown) => e)
  assert.equal(typeof (readOnly as { syscall?: unknown }).syscall, 'string')
  info.warn({ err: readOnly }, 'write failed')
  assert.equal(JSON.parse(atInfo.lines[2]!).err.stack, undefined)
  const atDebug = capture()
  createLogger({ level: 'debug', destination: atDebug.destination }).error({ err: expected }, 'poll failed')
  assert.match(JSON.parse(atDebug.lines[0]!).err.stack, /NgrokdError: the ngrok API is unreachable\n\s+at /)
})

test('JSON lines to the journal carry their syslog priority in front; to anything else they do not', async () => {
  const { spawnSync } = await import('node:child_process')
  const { mkdtempSync, openSync, closeSync, readFileSync, statSync, rmSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const { join } = await import('node:path')
  const dir = mkdtempSync(join(tmpdir(), 'ngrokd-journal-'))
  try {
    const script = `import(${JSON.stringify(new URL('./create-logger.js', import.meta.url).href)}).then(({ createLogger }) => { const l = createLogger({ level: 'debug' }); l.debug('d'); l.info('i'); l.warn('w'); l.error('e') })`
    const run = (journalStream: (file: string) => string | undefined) => {
      const file = join(dir, `stderr-${Math.random()}`)
      const fd = openSync(file, 'w')
      const st = statSync(file, { bigint: true })
      const env = { ...process.env, JOURNAL_STREAM: journalStream(`${st.dev}:${st.ino}`) }
      if (env.JOURNAL_STREAM === undefined) delete env.JOURNAL_STREAM
      const r = spawnSync(process.execPath, ['-e', script], { stdio: ['ignore', 'ignore', fd], env })
      closeSync(fd)
      assert.equal(r.status, 0)
      return readFileSync(file, 'utf8').trim().split('\n')
    }
    const journal = run((own) => own)
    assert.deepEqual(journal.map((l) => l.slice(0, 3)), ['<7>', '<6>', '<4>', '<3>'])
    assert.equal(JSON.parse(journal[3]!.slice(3)).msg, 'e', 'the rest of the line is the JSON line')
    for (const other of [run(() => undefined), run(() => '1:2')]) assert.ok(other.every((l) => l.startsWith('{"level":')), other.join('\n'))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('an error whose message ends with the errno its cause starts with says it once', async () => {
  const { NgrokdError } = await import('../errors/ngrokd-error.js')
  const { stateDirError } = await import('../daemon/state-dir.js')
  const enospc = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' })
  const erofs = Object.assign(new Error("EROFS: read-only file system, open '/var/lib/ngrokd/ngrokd.lock'"), { code: 'EROFS', errno: -30, syscall: 'open' })
  const { lines, destination } = capture()
  const logger = createLogger({ level: 'info', destination })
  logger.warn({ err: new NgrokdError('NGROKD_ERR_STATE', 'allocator: cannot write /var/lib/ngrokd/allocations.json: ENOSPC', { cause: enospc }) }, 'poll failed')
  logger.fatal({ err: stateDirError('/var/lib/ngrokd', erofs) }, 'could not start')
  logger.warn({ err: new NgrokdError('NGROKD_ERR_API', 'the ngrok API is unreachable', { cause: new Error('ECONNREFUSED') }) }, 'poll failed')
  const [full, readOnly, other] = lines.map((l) => JSON.parse(l).err.message as string)
  assert.equal(full, 'allocator: cannot write /var/lib/ngrokd/allocations.json: ENOSPC: no space left on device, write')
  assert.equal(readOnly, "state_dir /var/lib/ngrokd cannot be written: its file system is read-only (EROFS): read-only file system, open '/var/lib/ngrokd/ngrokd.lock'")
  assert.equal(other, 'the ngrok API is unreachable: ECONNREFUSED', 'a cause that is the errno alone is kept')
})

test('a cause whose message the error already quotes is not said twice', async () => {
  const { NgrokdError } = await import('../errors/ngrokd-error.js')
  const { lines, destination } = capture()
  const logger = createLogger({ level: 'info', destination })
  logger.error({ err: new NgrokdError('NGROKD_ERR_DRIVER_INVALID', 'net.driver "./d.js": create() failed: kaboom in create()', { cause: new Error('kaboom in create()') }) }, 'could not start')
  assert.equal(JSON.parse(lines[0]!).err.message, 'net.driver "./d.js": create() failed: kaboom in create()')
})
