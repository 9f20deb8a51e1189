import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import type { DestinationStream } from 'pino'
import { createLogger } from '../log/create-logger.js'
import { saveApiKeyFile } from './api-key-file.js'
import { ApiKeySource, refusedKeyHint } from './api-key-source.js'

let dir: string
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ngrokd-keysource-'))
})
after(async () => {
  await rm(dir, { recursive: true, force: true })
})

function capture() {
  const messages: string[] = []
  const destination = new Writable({
    write(chunk, _enc, cb) {
      messages.push(JSON.parse(chunk.toString()).msg)
      cb()
    },
  }) as unknown as DestinationStream
  return { messages, logger: createLogger({ level: 'info', destination }) }
}

test('the source of the key is told, and a configured key that hides a different saved one is said once', async () => {
  const stateDir = join(dir, 'state')
  await saveApiKeyFile(stateDir, 'savedKEY1234567890abcdef')
  const { messages, logger } = capture()
  const signal = new AbortController().signal
  const fromEnv = new ApiKeySource({ configured: 'envKEY1234567890abcdefgh', configuredOrigin: 'environment variable NGROK_API_KEY', stateDir, logger, signal })
  assert.equal(await fromEnv.get(() => {}), 'envKEY1234567890abcdefgh')
  assert.equal(fromEnv.source, 'environment variable NGROK_API_KEY')
  await fromEnv.get(() => {})
  const said = messages.filter((m) => m.includes('is not used while that is set'))
  assert.equal(said.length, 1, messages.join(' | '))
  assert.match(said[0]!, /using the API key from environment variable NGROK_API_KEY; the one saved by `ngrokd set-api-key`/)

  const fromFile = new ApiKeySource({ stateDir, logger, signal })
  assert.equal(await fromFile.get(() => {}), 'savedKEY1234567890abcdef')
  assert.match(fromFile.source, /api-key \(saved by ngrokd set-api-key\)$/)
  await fromFile.set('handedKEY1234567890abcde')
  assert.equal(fromFile.source, 'ngrokd set-api-key')
})

test('a refused key is to be corrected where it is set: a configured one wins at every start', () => {
  for (const source of ['environment variable NGROK_API_KEY', 'api.key in /etc/ngrokd/config.yaml']) {
    const hint = refusedKeyHint(source)
    assert.match(hint, new RegExp(`^correct the key in ${source.replace(/[.]/g, '\\.')} \\(it wins at every start\\) and restart`))
    assert.match(hint, /or hand the running daemon a valid one with `ngrokd set-api-key` until then$/)
  }
  for (const source of ['ngrokd set-api-key', '/var/lib/ngrokd/api-key (saved by ngrokd set-api-key)']) {
    assert.equal(refusedKeyHint(source), 'hand the running daemon a valid one with `ngrokd set-api-key`')
  }
})

test('after a refusal the configured key is tried again when the retry time is up, and a key handed over meanwhile wins at once', async () => {
  const { logger } = capture()
  const stopper = new AbortController()
  const source = new ApiKeySource({ configured: 'confKEY1234567890abcdefg', stateDir: join(dir, 'retry-state'), logger, signal: stopper.signal })
  assert.equal(await source.get(() => {}), 'confKEY1234567890abcdefg')
  // refused: after the retry time the same key comes back (a refusal may pass: a key just made, an API fault)
  assert.equal(await source.forgetAndWait(20), 'confKEY1234567890abcdefg')
  // a key handed over before the retry time wins, long before it
  const waiting = source.forgetAndWait(3_600_000)
  await source.set('handedKEY1234567890abcde')
  assert.equal(await waiting, 'handedKEY1234567890abcde')
  // each wait takes its listener off the stop signal when it ends (a refusal every 5 minutes for days adds none)
  const { EventEmitter } = await import('node:events')
  assert.equal(EventEmitter.getEventListeners(stopper.signal, 'abort').length, 0)
  // a stop ends the wait with '' (the hour-long timer does not keep the process alive)
  const stopped = source.forgetAndWait(3_600_000)
  stopper.abort()
  assert.equal(await stopped, '')
})

test('a configured key of no API key\'s shape is never used: said with where it came from, and a key handed over is waited for', async () => {
  const { messages, logger } = capture()
  const signal = new AbortController().signal
  const keys = new ApiKeySource({ configured: 'bad key with spaces', configuredOrigin: 'api.key in /etc/ngrokd/config.yml', stateDir: join(dir, 'state-malformed'), logger, signal })
  let waiting = 0
  const got = keys.get(() => waiting++)
  await new Promise((r) => setImmediate(r))
  assert.equal(waiting, 1, 'it waits')
  assert.match(keys.source, /^api\.key in \/etc\/ngrokd\/config\.yml, which is not an API key/)
  assert.ok(messages.some((m) => /the API key from api\.key in \/etc\/ngrokd\/config\.yml contains whitespace.*NGROKD_ERR_API_KEY_MALFORMED/s.test(m)), messages.join(' | '))
  await keys.set('handedKEY1234567890abcde')
  assert.equal(await got, 'handedKEY1234567890abcde')
})
