import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { children, derToPem, integer, name, namedBits, pemToDer, readElement, readOid, time, toDer, oid } from './der.js'

const hex = (node: Parameters<typeof toDer>[0]) => toDer(node).toString('hex')

describe('der', () => {
  it('encodes INTEGERs as DER wants: minimal, and positive with a leading 00 when the top bit is set', () => {
    assert.equal(hex(integer(0)), '020100')
    assert.equal(hex(integer(2)), '020102')
    assert.equal(hex(integer(Buffer.from([0x80, 0x01]))), '0203008001')
    assert.equal(hex(integer(Buffer.from([0x00, 0x00, 0x7f]))), '02017f')
    assert.equal(hex(integer(Buffer.from([0x00, 0x80]))), '02020080')
  })

  it('encodes KeyUsage-style named bits with trailing zero bits dropped (X.690 §11.2.2)', () => {
    assert.equal(hex(namedBits([0])), '03020780') // digitalSignature: 1 bit used, 7 unused
    assert.equal(hex(namedBits([5, 6])), '03020106') // keyCertSign | cRLSign
    assert.equal(hex(namedBits([0, 5, 6])), '03020186')
    assert.equal(hex(namedBits([8])), '0303070080') // a bit in the second byte
    assert.equal(hex(namedBits([])), '030100')
  })

  it('writes UTCTime through 2049 and GeneralizedTime from 2050 (RFC 5280 §4.1.2.5)', () => {
    assert.equal(hex(time(new Date('2049-12-31T23:59:59Z'))), '170d3439313233313233353935395a')
    assert.equal(hex(time(new Date('2050-01-01T00:00:00Z'))), '180f32303530303130313030303030305a')
  })

  it('writes Names as O then CN, and the empty Name as 30 00', () => {
    assert.equal(hex(name()), '3000')
    const n = readElement(toDer(name({ commonName: 'a', organization: 'b' })))
    const [first, second] = children(n)
    assert.equal(readOid(children(children(first!)[0]!)[0]!), '2.5.4.10')
    assert.equal(readOid(children(children(second!)[0]!)[0]!), '2.5.4.3')
  })

  it('reads long-form lengths and refuses truncated or indefinite ones', () => {
    const long = Buffer.concat([Buffer.from([0x04, 0x81, 0x80]), Buffer.alloc(0x80, 7)])
    const e = readElement(long)
    assert.equal(e.tag, 0x04)
    assert.equal(e.content.length, 0x80)
    assert.equal(e.bytes.length, long.length)
    assert.throws(() => readElement(long.subarray(0, long.length - 1)), /truncated/)
    assert.throws(() => readElement(Buffer.from([0x30, 0x80, 0x00, 0x00])), /bad length/) // BER indefinite length
    assert.throws(() => readElement(Buffer.from([0x30])), /truncated/)
    assert.throws(() => readOid(e), /not an OBJECT IDENTIFIER/)
    assert.equal(readOid(readElement(toDer(oid('1.2.840.10045.4.3.2')))), '1.2.840.10045.4.3.2')
  })

  it('round-trips PEM with 64-character lines and finds the block by label', () => {
    const der = Buffer.from(Array.from({ length: 100 }, (_, i) => i))
    const pem = derToPem(der, 'THING')
    assert.match(pem, /^-----BEGIN THING-----\n(?:[A-Za-z0-9+/]{64}\n){2}[A-Za-z0-9+/=]{8}\n-----END THING-----\n$/)
    assert.deepEqual(pemToDer(`junk\n${pem}more`, 'THING'), der)
    assert.equal(pemToDer(pem, 'OTHER'), undefined)
  })
})
