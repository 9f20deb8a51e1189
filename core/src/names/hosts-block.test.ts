import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { updateHostsBytes, updateHostsText, parseHostsBlock, HOSTS_BLOCK_BEGIN, HOSTS_BLOCK_END } from './hosts-block.js'
import { isNgrokdError } from '../errors/ngrokd-error.js'

const B = HOSTS_BLOCK_BEGIN
const E = HOSTS_BLOCK_END
const API = { hostname: 'api.prod', address: '10.107.0.2' }
const DB = { hostname: 'db.prod', address: '10.107.0.3' }

/** Adds then removes a block; the file must come back byte for byte. */
function roundTrip(original: string): string {
  const added = updateHostsText(original, [DB, API])
  assert.equal(added.changed, true)
  const removed = updateHostsText(added.text, [])
  assert.equal(removed.changed, true)
  assert.equal(removed.text, original)
  return added.text
}

describe('updateHostsText', () => {
  it('appends a sorted block to a file ending with a newline', () => {
    const original = '127.0.0.1\tlocalhost\n# comment\n\n::1 localhost ip6-localhost\n'
    const text = roundTrip(original)
    assert.equal(text, `${original}${B}\n10.107.0.2\tapi.prod\n10.107.0.3\tdb.prod\n${E}\n`)
  })

  it('adds a newline before the block when the file has none, and takes it away again', () => {
    const original = '127.0.0.1 localhost'
    const text = roundTrip(original)
    assert.equal(text, `127.0.0.1 localhost\n${B}\n10.107.0.2\tapi.prod\n10.107.0.3\tdb.prod\n${E}`)
    // Updating keeps the final-newline state, so the later removal is still exact.
    const updated = updateHostsText(text, [API])
    assert.equal(updated.text, `127.0.0.1 localhost\n${B}\n10.107.0.2\tapi.prod\n${E}`)
    assert.equal(updateHostsText(updated.text, []).text, original)
  })

  it('keeps a line appended to a file the block ended (glued to the END marker by `echo >>`) as the user\'s', () => {
    for (const eol of ['\n', '\r\n']) {
      const original = `127.0.0.1 localhost${eol}::1 localhost ip6-localhost`
      const added = updateHostsText(original, [API]).text
      assert.equal(added, `${original}${eol}${B}${eol}10.107.0.2\tapi.prod${eol}${E}`)
      const appended = `${added}192.168.1.5 nas.lan${eol}`
      assert.deepEqual([...parseHostsBlock(appended).userHostnames], ['localhost', 'ip6-localhost', 'nas.lan'])
      assert.deepEqual(parseHostsBlock(appended).records, [API])
      const rewritten = updateHostsText(appended, [API, DB]).text
      assert.equal(rewritten, `${original}${eol}${B}${eol}10.107.0.2\tapi.prod${eol}10.107.0.3\tdb.prod${eol}${E}${eol}192.168.1.5 nas.lan${eol}`)
      // the block goes; the newline before it now separates the user's lines and stays
      assert.equal(updateHostsText(appended, []).text, `${original}${eol}192.168.1.5 nas.lan${eol}`)
      assert.equal(updateHostsText(rewritten, []).text, `${original}${eol}192.168.1.5 nas.lan${eol}`)
    }
    // a line appended with leading white space is the user's too; a remark in parentheses is still the marker's
    const tabbed = `${updateHostsText('127.0.0.1 localhost', [API]).text}\t192.168.1.5 nas.lan\n`
    assert.equal(updateHostsText(tabbed, []).text, '127.0.0.1 localhost\n\t192.168.1.5 nas.lan\n')
    assert.deepEqual(parseHostsBlock(`${B}\n10.107.0.2 api.prod\n${E} (edited)\n`).records, [API])
    assert.equal(updateHostsText(`${B}\n10.107.0.2 api.prod\n${E} (edited)\n`, []).text, '')
  })

  it('numbers the lines doctor names as the file does, after a glued line is split off', () => {
    // line 3 holds the END marker and the glued line; the stray END is line 4, the bad line inside the second block 6
    const text = `${B}\n10.107.0.2 api.prod\n${E}192.168.1.5 nas.lan\n${E}\n${B}\nnot a record\n${E}\n`
    const info = parseHostsBlock(text)
    assert.deepEqual(info.strayMarkers, [4])
    assert.deepEqual(info.invalidLines, [6])
  })

  it('handles an empty file', () => {
    const text = roundTrip('')
    assert.equal(text, `${B}\n10.107.0.2\tapi.prod\n10.107.0.3\tdb.prod\n${E}\n`)
  })

  it('keeps CRLF files CRLF, block included', () => {
    const original = '127.0.0.1 localhost\r\n# keep me\r\n'
    const text = roundTrip(original)
    assert.equal(text, `${original}${B}\r\n10.107.0.2\tapi.prod\r\n10.107.0.3\tdb.prod\r\n${E}\r\n`)
    assert.doesNotMatch(text.replace(/\r\n/g, ''), /\n/)
    const noFinal = '127.0.0.1 localhost\r\n# x'
    assert.equal(roundTrip(noFinal), `${noFinal}\r\n${B}\r\n10.107.0.2\tapi.prod\r\n10.107.0.3\tdb.prod\r\n${E}`)
  })

  it('rewrites a block in the middle and keeps everything around it', () => {
    const before = '127.0.0.1 localhost\n  # indented comment  \n\n'
    const after = '\n10.0.0.9 user.example # mine\n\t\n# last line without newline'
    const original = `${before}${B}\n10.107.0.9\told.prod\n${E}\n${after}`
    const r = updateHostsText(original, [API])
    assert.equal(r.text, `${before}${B}\n10.107.0.2\tapi.prod\n${E}\n${after}`)
    assert.equal(updateHostsText(r.text, []).text, before + after)
  })

  it('reports changed: false when the block already says the same', () => {
    const first = updateHostsText('127.0.0.1 localhost\n', [API, DB])
    const again = updateHostsText(first.text, [DB, API])
    assert.equal(again.changed, false)
    assert.equal(again.text, first.text)
    assert.equal(updateHostsText('127.0.0.1 localhost\n', []).changed, false)
    assert.equal(updateHostsText('', []).text, '')
  })

  it('finds user lines naming our hostnames, but not our own or commented ones', () => {
    const original = `10.0.0.1 API.prod other.example\n# 10.0.0.2 db.prod\n10.0.0.3 x.example\t db.prod# trailing\n${B}\n10.107.0.2\tapi.prod\n${E}\n`
    const r = updateHostsText(original, [API, DB, { hostname: 'web.prod', address: '10.107.0.4' }])
    assert.deepEqual(r.userConflicts, ['api.prod', 'db.prod'])
    assert.deepEqual(updateHostsText(`${B}\n10.107.0.2\tapi.prod\n${E}\n`, [API]).userConflicts, [])
  })

  it('leaves an unpaired BEGIN and the lines after it alone and appends a fresh block', () => {
    const original = `127.0.0.1 localhost\n${B}\n10.0.0.5 mine.example\n`
    const r = updateHostsText(original, [API])
    assert.equal(r.text, `${original}${B}\n10.107.0.2\tapi.prod\n${E}\n`)
    // The next edit finds the same (complete) block: stable.
    assert.equal(updateHostsText(r.text, [API]).changed, false)
    assert.equal(updateHostsText(r.text, []).text, original)
    const info = parseHostsBlock(r.text)
    assert.deepEqual(info.strayMarkers, [2])
    assert.equal(info.blocks, 1)
  })

  it('leaves a stray END alone', () => {
    const original = `${E}\n127.0.0.1 localhost\n`
    const r = updateHostsText(original, [API])
    assert.equal(r.text, `${original}${B}\n10.107.0.2\tapi.prod\n${E}\n`)
    assert.equal(updateHostsText(r.text, []).text, original)
  })

  it('merges duplicate blocks into the first', () => {
    const original = `a\n${B}\n10.1.1.1\tx.prod\n${E}\nb\n${B}\n10.1.1.2\ty.prod\n${E}\nc\n`
    const r = updateHostsText(original, [API])
    assert.equal(r.text, `a\n${B}\n10.107.0.2\tapi.prod\n${E}\nb\nc\n`)
    assert.equal(updateHostsText(original, []).text, 'a\nb\nc\n')
  })

  it('handles a file of 300,000 lines (ad-blocking hosts lists are that long)', () => {
    const original = '0.0.0.0 ads.example\n'.repeat(300_000)
    const r = updateHostsText(original, [API])
    assert.equal(r.text, `${original}${B}\n10.107.0.2\tapi.prod\n${E}\n`)
    assert.equal(updateHostsText(r.text, [API, DB]).text.length, r.text.length + '10.107.0.3\tdb.prod\n'.length)
    assert.equal(updateHostsText(r.text, []).text, original)
  })

  it('recognises markers with a different suffix and surrounding spaces', () => {
    const original = `x\n  # BEGIN ngrokd managed block — do not edit\n10.1.1.1\tx.prod\n# END ngrokd managed block  \n`
    assert.equal(updateHostsText(original, []).text, 'x\n')
    assert.deepEqual(parseHostsBlock(original).records, [{ hostname: 'x.prod', address: '10.1.1.1' }])
  })

  it('refuses records that could inject lines or are not ipv4', () => {
    const bad = [
      { hostname: 'api.prod\n6.6.6.6 bank.example', address: '10.107.0.2' },
      { hostname: 'api.prod bank.example', address: '10.107.0.2' },
      { hostname: 'api.prod#', address: '10.107.0.2' },
      { hostname: `${'a.'.repeat(126)}ab`, address: '10.107.0.2' }, // 254 characters
      { hostname: 'API.prod', address: '10.107.0.2' },
      { hostname: '', address: '10.107.0.2' },
    ]
    assert.equal(bad[3]!.hostname.length, 254)
    for (const record of bad) {
      assert.throws(
        () => updateHostsText('', [API, record]),
        (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_HOSTNAME_INVALID'),
        JSON.stringify(record.hostname),
      )
    }
    for (const address of ['10.107.0.2\n1.1.1.1', '::1', '10.107.0.256', '10.107.0.2 ', '']) {
      assert.throws(() => updateHostsText('', [{ hostname: 'api.prod', address }]), (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_HOSTS_FILE'))
    }
    assert.throws(
      () => updateHostsText('', [API, { hostname: 'api.prod', address: '10.107.0.9' }]),
      (e: unknown) => isNgrokdError(e, 'NGROKD_ERR_HOSTS_FILE') && /two addresses/.test(e.message),
    )
    // The same record twice is fine.
    assert.equal(parseHostsBlock(updateHostsText('', [API, API]).text).records.length, 1)
  })
})

describe('parseHostsBlock', () => {
  it('reads the records, flags bad lines and lists user hostnames', () => {
    const text = `127.0.0.1 localhost Local\n${B}\n10.107.0.2\tapi.prod\nnonsense\n10.107.0.3 db.prod # c\n\n300.1.1.1 x.prod\n${E}\n`
    const info = parseHostsBlock(text)
    assert.deepEqual(info.records, [API, DB])
    assert.equal(info.blocks, 1)
    assert.deepEqual(info.strayMarkers, [])
    assert.deepEqual(info.invalidLines, [4, 7])
    assert.deepEqual([...info.userHostnames].sort(), ['local', 'localhost'])
  })

  it('sees nothing in a file without a block', () => {
    const info = parseHostsBlock('127.0.0.1 localhost')
    assert.deepEqual(info.records, [])
    assert.equal(info.blocks, 0)
  })
})

describe('updateHostsBytes', () => {
  it('keeps every byte outside the block, UTF-8 or not', () => {
    const original = Buffer.concat([
      Buffer.from([0xef, 0xbb, 0xbf]), // byte order mark
      Buffer.from('127.0.0.1 localhost\r\n10.0.0.1 caf'),
      Buffer.from([0xc3, 0xa9]), // é in UTF-8
      Buffer.from('.example # '),
      Buffer.from([0xe9, 0xff, 0x80, 0x00]), // latin-1 é, bytes that are never UTF-8, a NUL
      Buffer.from('\r\n'),
    ])
    const added = updateHostsBytes(original, [API])
    assert.equal(added.changed, true)
    assert.deepEqual(added.data.subarray(0, original.length), original)
    assert.equal(added.data.subarray(original.length).toString('latin1'), `${B}\r\n10.107.0.2\tapi.prod\r\n${E}\r\n`)
    assert.deepEqual(updateHostsBytes(added.data, []).data, original)
    assert.equal(updateHostsBytes(added.data, [API]).changed, false)
  })

  it('recognises a marker behind a byte order mark', () => {
    const bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`${B}\n10.107.0.2\tapi.prod\n${E}\n127.0.0.1 localhost\n`)])
    assert.deepEqual(parseHostsBlock(bytes).records, [API])
    assert.equal(updateHostsBytes(bytes, []).data.toString('latin1'), '127.0.0.1 localhost\n')
  })

  it('splits fields on ASCII white space only, as the C library does', () => {
    // U+00E0 (à) is C3 A0 in UTF-8 and U+00C5 (Å) is C3 85: in a latin1 view, A0 and 85 look like white space to JS
    const line = Buffer.concat([Buffer.from('10.0.0.1 api.prod'), Buffer.from([0xc3, 0xa0]), Buffer.from(' x'), Buffer.from([0xc3, 0x85]), Buffer.from('db.prod\n')])
    const info = parseHostsBlock(line)
    assert.equal(info.userHostnames.has('api.prod'), false)
    assert.equal(info.userHostnames.has('db.prod'), false)
    assert.deepEqual(updateHostsBytes(line, [API, DB]).userConflicts, [])
    assert.deepEqual(updateHostsBytes(Buffer.from('10.0.0.1\tapi.prod\vdb.prod\n'), [API, DB]).userConflicts, ['api.prod', 'db.prod'])
  })
})
