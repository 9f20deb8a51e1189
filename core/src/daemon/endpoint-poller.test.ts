import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NgrokApiClient } from '../api/ngrok-api-client.js'
import { recordingLogger } from '../testing/recording-logger.js'
import { NamePolicy } from '../names/name-policy.js'
import type { DesiredService } from '../protocol/endpoints.js'
import { EndpointPoller } from './endpoint-poller.js'
import type { ReconcileReport } from './reconciler.js'

const OP = 'k8sop_malformed'
const report = (services: number): ReconcileReport => ({ services, addressesAdded: 0, addressesRemoved: 0, listenersAdded: 0, listenersRemoved: 0, namesChanged: false, errors: 0, durationMs: 0 })

/**
 * A fetch that answers the operator's bound-endpoints list with one page holding `endpoints` as given —
 * items a well-behaved API (and so the cloud simulator) never sends — and 404 for anything else.
 */
function boundEndpointsFetch(endpoints: unknown[]): typeof fetch {
  return async (input) => {
    const json = { 'content-type': 'application/json' }
    if (new URL(String(input)).pathname !== `/kubernetes_operators/${OP}/bound_endpoints`) {
      return new Response(JSON.stringify({ status_code: 404, msg: 'Not Found', details: {} }), { status: 404, headers: json })
    }
    return new Response(JSON.stringify({ endpoints, uri: 'x', next_page_uri: null }), { status: 200, headers: json })
  }
}

/** A poller over the real API client and a stubbed fetch serving `endpoints`; records what it reconciles and logs. */
function pollerOver(endpoints: unknown[], stateDir: string, namePolicy?: NamePolicy) {
  const api = new NgrokApiClient({ apiKey: 'k', fetchImpl: boundEndpointsFetch(endpoints), maxRetries: 0 })
  const reconciled: DesiredService[][] = []
  const logger = recordingLogger()
  const poller = new EndpointPoller({
    stateDir,
    intervalMs: 60_000,
    logger,
    list: () => api.listBoundEndpoints(OP),
    reconcile: async (services) => {
      reconciled.push(services)
      return report(services.length)
    },
    signal: new AbortController().signal,
    ...(namePolicy ? { namePolicy } : {}),
  })
  return { poller, reconciled, logger }
}

describe('EndpointPoller: endpoints it does not serve', () => {
  it('a malformed endpoint is skipped and reported; the rest of the list is reconciled (through the real API client)', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'ngrokd-poller-'))
    try {
      const { poller, reconciled, logger } = pollerOver(
        [
          { id: 'ep_1', url: 'http://api.prod', bindings: ['kubernetes'] },
          { url: 'http://noid.prod', bindings: ['kubernetes'] }, // no id
          null,
          'ep_3',
          { id: 42, url: 'http://numeric.prod' },
          { id: 'ep_2', url: 'tcp://db.prod:5432', bindings: ['kubernetes'] },
        ],
        stateDir,
      )
      const lines = () => logger.at('warn').map((r) => r.msg)
      const poll = await poller.pollOnce()
      assert.equal(poll?.ok, true, `the poll succeeds: ${JSON.stringify(poll?.error)}`)
      assert.deepEqual(reconciled.map((s) => s.map((x) => x.key)), [['http://api.prod', 'tcp://db.prod:5432']])
      assert.equal(poll.endpoints, 6)
      const reasons = poll.rejected!.map((r) => r.reason).sort()
      assert.deepEqual(reasons, [
        'is malformed: item 2 of 6 has no id',
        'is malformed: item 3 of 6 is null, not an endpoint object',
        'is malformed: item 4 of 6 is a string, not an endpoint object',
        'is malformed: item 5 of 6 has no id',
      ])
      assert.ok(poll.rejected!.find((r) => r.url === 'http://noid.prod'), 'the id-less endpoint is named by its url')
      assert.equal(lines().filter((l) => /^skipping endpoint \(no id\) .*is malformed/.test(l)).length, 4, lines().join('\n'))
      assert.deepEqual(await poller.cached().then((s) => s?.map((x) => x.key)), ['http://api.prod', 'tcp://db.prod:5432'])
    } finally {
      rmSync(stateDir, { recursive: true, force: true })
    }
  })

  it('names the policy refuses are skipped as unsafe, logged once with their code, and never reconciled — nor restored from the cache', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'ngrokd-poller-'))
    try {
      const policy = new NamePolicy({ allow: [], deny: ['github.com'], protectedHosts: () => [['registry.npmjs.org', 'a package registry host']] })
      const endpoints = [
        { id: 'ep_gh', url: 'http://github.com' },
        { id: 'ep_npm', url: 'https://registry.npmjs.org' },
        { id: 'ep_ok', url: 'http://api.prod' },
      ]
      const { poller, reconciled, logger } = pollerOver(endpoints, stateDir, policy)
      const poll = await poller.pollOnce()
      assert.equal(poll?.ok, true)
      assert.deepEqual(reconciled.map((s) => s.map((x) => x.hostname)), [['api.prod']])
      assert.deepEqual(
        poll!.rejected!.map((r) => [r.id, r.code, r.reason]),
        [
          ['ep_gh', 'NGROKD_ERR_NAME_UNSAFE', 'skipped as unsafe: github.com matches names.deny "github.com"'],
          ['ep_npm', 'NGROKD_ERR_NAME_UNSAFE', 'skipped as unsafe: registry.npmjs.org is a package registry host, which ngrokd never publishes'],
        ],
      )
      await poller.pollOnce()
      const warned = logger.at('warn').filter((r) => r.obj.code === 'NGROKD_ERR_NAME_UNSAFE')
      assert.equal(warned.length, 2, 'each is logged once, not at every poll')
      // a cache written before names.deny changed is judged again at start
      const stricter = pollerOver(endpoints, stateDir, new NamePolicy({ allow: [], deny: ['prod'], protectedHosts: () => [] })).poller
      assert.deepEqual(await stricter.cached(), [])
    } finally {
      rmSync(stateDir, { recursive: true, force: true })
    }
  })

  it('logs at most 20 new skipped endpoints a poll one by one, then one line with how many more (an API that keeps sending new bad ones)', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'ngrokd-poller-'))
    try {
      let round = 0
      const api = new NgrokApiClient({
        apiKey: 'k',
        maxRetries: 0,
        fetchImpl: async () => {
          round++
          const endpoints = Array.from({ length: 500 }, (_, i) => ({ id: `ep_${round}_${i}`, url: `http://bad_${i}.prod` }))
          return new Response(JSON.stringify({ endpoints, next_page_uri: null }), { status: 200, headers: { 'content-type': 'application/json' } })
        },
      })
      const logger = recordingLogger()
      const poller = new EndpointPoller({ stateDir, intervalMs: 60_000, logger, list: () => api.listBoundEndpoints(OP), reconcile: async (s) => report(s.length), signal: new AbortController().signal })
      for (let i = 0; i < 2; i++) {
        const poll = await poller.pollOnce()
        assert.equal(poll?.rejected?.length, 500, 'status still lists every skipped endpoint')
      }
      const warns = logger.at('warn').map((r) => r.msg)
      assert.equal(warns.filter((m) => m.startsWith('skipping endpoint ')).length, 40, warns.slice(0, 3).join('\n'))
      assert.deepEqual(
        warns.filter((m) => /^skipping \d+ more/.test(m)),
        Array(2).fill('skipping 480 more new endpoints of this poll, not logged one by one: `ngrokd status` lists every skipped endpoint with its reason'),
      )
    } finally {
      rmSync(stateDir, { recursive: true, force: true })
    }
  })
})

describe('EndpointPoller: a stop', () => {
  it('a poll its stop cuts short (waiting out a Retry-After) is no failure: nothing at warn, no failed poll', async () => {
    const stop = new AbortController()
    const busy: typeof fetch = async () => {
      const body = { error_code: 'ERR_NGROK_226', status_code: 429, msg: 'You have exceeded your rate limit.', details: {} }
      return new Response(JSON.stringify(body), { status: 429, headers: { 'content-type': 'application/json', 'retry-after': '20' } })
    }
    const logger = recordingLogger()
    const api = new NgrokApiClient({ apiKey: 'k', fetchImpl: busy, maxRetries: 3, signal: stop.signal, logger })
    const stateDir = mkdtempSync(join(tmpdir(), 'ngrokd-poller-'))
    try {
      const poller = new EndpointPoller({ stateDir, intervalMs: 60_000, logger, list: () => api.listBoundEndpoints(OP), reconcile: async (s) => report(s.length), signal: stop.signal })
      const polling = poller.pollOnce()
      while (logger.at('warn').length === 0) await new Promise((r) => setTimeout(r, 5))
      const said = logger.at('warn').map((r) => r.msg)
      assert.ok(said.some((m) => m === 'ngrok api busy (HTTP 429 ERR_NGROK_226: You have exceeded your rate limit.): waiting 20 s before trying again; see https://ngrok.com/docs/errors/err_ngrok_226'), said.join('\n'))
      stop.abort()
      assert.equal(await polling, undefined)
      assert.deepEqual(logger.at('warn').map((r) => r.msg), said, 'the stop adds no warning')
      assert.equal(poller.counts.failed, 0)
    } finally {
      rmSync(stateDir, { recursive: true, force: true })
    }
  })
})

describe('EndpointPoller: the saved endpoint list', () => {
  it('a list that cannot be saved fails no poll: said once while it repeats, and the poll counts as a success', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'ngrokd-poller-'))
    try {
      mkdirSync(join(stateDir, 'endpoints.json')) // a folder where the file goes: the rename over it fails
      const { poller, reconciled, logger } = pollerOver([{ id: 'ep_a', url: 'http://api.prod', bindings: ['kubernetes'] }], stateDir)
      const first = await poller.pollOnce()
      await poller.pollOnce()
      assert.equal(first?.ok, true, JSON.stringify(first))
      assert.equal(reconciled.length, 2)
      assert.deepEqual(poller.counts.failed, 0)
      const said = logger.at('warn').filter((r) => /cannot save the endpoint list/.test(r.msg))
      assert.equal(said.length, 1, 'once, not at every poll')
      assert.match(said[0]!.msg, /endpoints\.json \(serving goes on; the next start serves the list saved before, if any, until its first poll\)/)
      assert.equal(logger.at('warn').filter((r) => /poll failed/.test(r.msg)).length, 0)
      // status and doctor show it (status.stateError) until a save succeeds, which is said
      assert.match(poller.saveError?.message ?? '', /^cannot save the endpoint list for the next start to .*endpoints\.json .*EISDIR/)
      assert.ok(poller.saveError?.code.startsWith('NGROKD_ERR_'), JSON.stringify(poller.saveError))
      rmSync(join(stateDir, 'endpoints.json'), { recursive: true })
      await poller.pollOnce()
      assert.equal(poller.saveError, undefined)
      assert.deepEqual(logger.at('info').filter((r) => /saved to .* again/.test(r.msg)).map((r) => r.msg), [`the endpoint list is saved to ${join(stateDir, 'endpoints.json')} again`])
    } finally {
      rmSync(stateDir, { recursive: true, force: true })
    }
  })

  it('an entry no poll would pass (a hand edit, an older version) is skipped with one warning naming the file and the entry; the rest is served', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'ngrokd-poller-'))
    try {
      const { poller } = pollerOver([{ id: 'ep_a', url: 'http://api.prod' }, { id: 'ep_b', url: 'tcp://db.prod:5432' }], stateDir)
      await poller.pollOnce()
      const path = join(stateDir, 'endpoints.json')
      const saved = JSON.parse(readFileSync(path, 'utf8')) as { services: unknown[] }
      const bad = { key: 'http://bad_name.ns', url: 'http://bad_name.ns', hostname: 'bad_name.ns', port: 80, proto: 'http', endpointIds: ['ep_bad'] }
      writeFileSync(path, JSON.stringify({ ...saved, services: [...saved.services, bad, null] }))
      const restarted = pollerOver([], stateDir)
      assert.deepEqual((await restarted.poller.cached())?.map((s) => s.key), ['http://api.prod', 'tcp://db.prod:5432'])
      const said = restarted.logger.at('warn').map((r) => r.msg)
      assert.equal(said.length, 1, said.join('\n'))
      assert.match(said[0]!, new RegExp(`^endpoints\\.json \\(${path}\\): skipping 2 saved endpoints a poll would not serve, serving the rest until the first poll: `))
      assert.match(said[0]!, /ep_bad \("http:\/\/bad_name\.ns"\): hostname "bad_name\.ns" contains a character other than/)
      assert.match(said[0]!, /\(no id\) \(""\): is malformed: item 4 of 4 is null/)
    } finally {
      rmSync(stateDir, { recursive: true, force: true })
    }
  })

  it('a damaged list (cut short, or no services in it) is moved aside with a warning naming it; the start serves after its first poll', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'ngrokd-poller-'))
    try {
      const { poller } = pollerOver([{ id: 'ep_a', url: 'http://api.prod' }], stateDir)
      await poller.pollOnce()
      const path = join(stateDir, 'endpoints.json')
      for (const damaged of [readFileSync(path, 'utf8').slice(0, 40), '{"savedAt":"x"}']) {
        writeFileSync(path, damaged)
        const restarted = pollerOver([], stateDir)
        assert.equal(await restarted.poller.cached(), undefined)
        const said = restarted.logger.at('warn').map((r) => r.msg)
        assert.equal(said.length, 1, said.join('\n'))
        assert.ok(said[0]!.startsWith(`the saved endpoint list: ${path} is corrupt (`), said[0])
        const aside = readdirSync(stateDir).filter((f) => f.startsWith('endpoints.json.corrupt-'))
        assert.equal(aside.length, 1, 'moved aside')
        assert.equal(readFileSync(join(stateDir, aside[0]!), 'utf8'), damaged, 'kept as it was')
        rmSync(join(stateDir, aside[0]!))
        assert.ok(!existsSync(path))
      }
    } finally {
      rmSync(stateDir, { recursive: true, force: true })
    }
  })

  it('a new poll interval applies at once: the poll waiting on the old one (a minute) is moved, not waited for', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'ngrokd-poller-'))
    const { poller, reconciled } = pollerOver([{ id: 'ep_a', url: 'http://api.prod', bindings: ['kubernetes'] }], stateDir)
    let safety: NodeJS.Timeout | undefined
    let check: NodeJS.Timeout | undefined
    try {
      await poller.start()
      assert.equal(reconciled.length, 1)
      // a reload while a poll asked for by hand (POST /v1/poll) is under way: the timer is moved all the same
      const byHand = poller.pollOnce()
      poller.setIntervalMs(5)
      await byHand
      // the second poll comes within milliseconds; on the old timer it would wait the minute that the safety net catches
      await Promise.race([
        new Promise<void>((resolve) => (check = setInterval(() => reconciled.length >= 3 && resolve(), 5))),
        new Promise((_, reject) => (safety = setTimeout(() => reject(new Error('the second poll waited for the old interval')), 50_000))),
      ])
      assert.ok(reconciled.length >= 3)
    } finally {
      clearTimeout(safety)
      clearInterval(check)
      await poller.stop()
      rmSync(stateDir, { recursive: true, force: true })
    }
  })
})

describe('EndpointPoller: stop', () => {
  it('stopped while a poll its timer began is under way (the signal not aborted), it polls no more', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'ngrokd-poller-'))
    let lists = 0
    let release: (() => void) | undefined
    let listing: (() => void) | undefined
    const secondList = new Promise<void>((resolve) => (listing = resolve))
    const poller = new EndpointPoller({
      stateDir,
      intervalMs: 5,
      logger: recordingLogger(),
      list: async () => {
        if (++lists === 2) {
          listing!()
          await new Promise<void>((resolve) => (release = resolve))
        }
        return []
      },
      reconcile: async (s) => report(s.length),
      signal: new AbortController().signal,
    })
    // the poller's timer does not hold the process open; this one does (and ends a test that would hang)
    let safety: NodeJS.Timeout | undefined
    const timedOut = new Promise<never>((_, reject) => (safety = setTimeout(() => reject(new Error('the timer never began a poll')), 50_000)))
    try {
      await poller.start()
      await Promise.race([secondList, timedOut]) // the timer's poll, held in list()
      const stopped = poller.stop()
      release!()
      await stopped
      const after = lists
      // forty intervals: a timer armed again by the poll stop() waited for would have polled by now
      await new Promise((r) => setTimeout(r, 200))
      assert.equal(lists, after, 'no poll after stop()')
      assert.equal(after, 2)
    } finally {
      clearTimeout(safety)
      await poller.stop()
      rmSync(stateDir, { recursive: true, force: true })
    }
  })
})

describe('EndpointPoller: the API budget', () => {
  it('a poll of many pages spaces the next one to spend at most 60 requests a minute, says so once, and says when it is back', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'ngrokd-poller-'))
    const logger = recordingLogger()
    let sent = 0
    let pages = 21
    const poller = new EndpointPoller({
      stateDir,
      intervalMs: 10_000,
      logger,
      list: async () => {
        sent += pages // one request a page
        return []
      },
      reconcile: async (services) => report(services.length),
      requestsSent: () => sent,
      signal: new AbortController().signal,
    })
    try {
      assert.equal(poller.effectiveIntervalMs, 10_000)
      await poller.pollOnce()
      assert.equal(poller.effectiveIntervalMs, 21_000, '21 requests at 60 a minute: 21 s')
      await poller.pollOnce()
      const warned = logger.at('warn').filter((l) => /polling every 21 s instead of every 10 s/.test(l.msg))
      assert.equal(warned.length, 1, 'said once while it holds')
      pages = 100
      await poller.pollOnce()
      assert.equal(poller.effectiveIntervalMs, 100_000)
      assert.ok(logger.at('warn').some((l) => /took 100 API requests: polling every 100 s/.test(l.msg)), 'a wait that grows is said again')
      pages = 1
      await poller.pollOnce()
      assert.equal(poller.effectiveIntervalMs, 10_000)
      assert.ok(logger.at('info').some((l) => /polling every 10 s again/.test(l.msg)))
    } finally {
      await poller.stop()
      rmSync(stateDir, { recursive: true, force: true })
    }
  })
})
