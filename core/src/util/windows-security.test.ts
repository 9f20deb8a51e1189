import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { accessMask, parseSddl, TRUSTED_INSTALLER_SID, untrustedWindowsBecause } from './windows-security.js'

const USER = 'S-1-5-21-1004336348-1177238915-682003330-1001'
// What stock Windows 10/11 hold (icacls and Get-Acl's Sddl, owner and DACL only):
/** C:\ — Authenticated Users may add folders (AD: FILE_ADD_SUBDIRECTORY) there; what they make inherits Modify for its creator. */
const DRIVE_ROOT = `O:${TRUSTED_INSTALLER_SID}D:PAI(A;OICIIO;SDGXGWGR;;;AU)(A;;LC;;;AU)(A;OICIIO;GA;;;SY)(A;;FA;;;SY)(A;OICI;0x1200a9;;;BU)(A;OICIIO;GA;;;BA)(A;;FA;;;BA)`
/** C:\ProgramData — Users may add files and folders ((CI)(WD,AD,WEA,WA)), inherited by every folder below. */
const PROGRAM_DATA = 'O:SYD:PAI(A;OICIIO;FA;;;CO)(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1200a9;;;BU)(A;CI;0x100116;;;BU)'
/** A folder an administrator made in C:\ProgramData, with what it inherits. */
const INHERITING_FOLDER = 'O:BAD:AI(A;OICIIOID;FA;;;CO)(A;OICIID;FA;;;SY)(A;OICIID;FA;;;BA)(A;OICIID;0x1200a9;;;BU)(A;CIID;0x100116;;;BU)'
/** A file an administrator made in it: Users read. */
const ADMIN_FILE = 'O:BAD:AI(A;ID;FA;;;SY)(A;ID;FA;;;BA)(A;ID;0x1200a9;;;BU)'
/** What ngrokd gives its state folders (state-dir.ts). */
const PROTECTED = 'O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)'
/** C:\etc\ngrokd\config.yml as a user planted it under the drive root. */
const PLANTED = `O:${USER}D:AI(A;ID;FA;;;BA)(A;ID;FA;;;SY)(A;ID;0x1301bf;;;AU)(A;ID;0x1200a9;;;BU)(A;ID;FA;;;${USER})`

describe('Windows trusted-path rule on SDDL', () => {
  it("trusts what SYSTEM, Administrators or TrustedInstaller own and only they may change: ngrokd's state folder, an admin's file, Windows' own", () => {
    assert.equal(untrustedWindowsBecause('C:\\ProgramData\\ngrokd\\state', PROTECTED, true), undefined)
    assert.equal(untrustedWindowsBecause('C:\\ProgramData\\ngrokd\\config.yml', ADMIN_FILE, true), undefined)
    assert.equal(untrustedWindowsBecause('C:\\Windows\\System32\\drivers\\etc\\hosts', `O:${TRUSTED_INSTALLER_SID}D:PAI(A;;FA;;;SY)(A;;FA;;;BA)(A;;0x1200a9;;;BU)`, true), undefined)
    assert.equal(untrustedWindowsBecause('C:\\x', 'O:S-1-5-18D:(A;;FA;;;S-1-5-32-544)', true), undefined, 'SIDs written out, not as aliases')
  })

  it('a folder above may let users add a child (C:\\, C:\\ProgramData), which cannot touch the existing one', () => {
    assert.equal(untrustedWindowsBecause('C:\\', DRIVE_ROOT, false), undefined)
    assert.equal(untrustedWindowsBecause('C:\\ProgramData', PROGRAM_DATA, false), undefined)
    assert.equal(untrustedWindowsBecause('C:\\ProgramData\\ngrokd', INHERITING_FOLDER, false), undefined)
    assert.equal(untrustedWindowsBecause('C:\\ProgramData\\ngrokd', 'O:BAD:(A;;FW;;;BU)', false), undefined, 'FILE_GENERIC_WRITE on a folder adds, it does not delete')
  })

  it('a folder that holds code may not let users add to it: a DLL beside node.exe, a node_modules on a module\'s way up', () => {
    assert.match(untrustedWindowsBecause('C:\\ProgramData\\nodejs', INHERITING_FOLDER, false, true)?.why ?? '', /gives Users \(S-1-5-32-545\) write access \(0x100116, 0x6\)/)
    assert.match(untrustedWindowsBecause('C:\\ProgramData', PROGRAM_DATA, false, true)?.why ?? '', /gives Users/)
    assert.equal(untrustedWindowsBecause('C:\\Program Files\\nodejs', `O:${TRUSTED_INSTALLER_SID}D:PAI(A;OICIIO;GA;;;CO)(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1200a9;;;BU)`, false, true), undefined)
  })

  it('the same add right on the target itself is refused: a state folder inheriting ProgramData, C:\\ as a target', () => {
    assert.match(untrustedWindowsBecause('C:\\ProgramData\\ngrokd\\state', INHERITING_FOLDER, true)?.why ?? '', /gives Users \(S-1-5-32-545\) write access \(0x100116, 0x6\)/)
    assert.match(untrustedWindowsBecause('C:\\', DRIVE_ROOT, true)?.why ?? '', /gives Authenticated Users \(S-1-5-11\) write access \(SDGXGWGR, /)
  })

  it("refuses what another user owns: the config planted at C:\\etc\\ngrokd, whatever its DACL", () => {
    const j = untrustedWindowsBecause('C:\\etc\\ngrokd\\config.yml', PLANTED, true)
    assert.equal(j?.why, `is owned by ${USER} (not SYSTEM, Administrators or TrustedInstaller)`)
    assert.equal(j?.fix, 'icacls "C:\\etc\\ngrokd\\config.yml" /setowner *S-1-5-32-544')
    assert.ok(untrustedWindowsBecause('C:\\x', 'D:P(A;;FA;;;SY)', true), 'no owner')
  })

  it('refuses a folder above that lets someone else delete, re-ACL or take a child', () => {
    for (const [ace, bits] of [
      ['(A;;0x1301bf;;;AU)', '0x10000'], // Modify: DELETE
      ['(A;;DT;;;BU)', '0x40'], // FILE_DELETE_CHILD
      ['(A;;0x40;;;BU)', '0x40'],
      ['(A;;WD;;;BU)', '0x40000'], // WRITE_DAC (the right, not Everyone)
      ['(A;;WO;;;BU)', '0x80000'],
      ['(A;;SD;;;BU)', '0x10000'],
      ['(A;;GA;;;WD)', '0xd0040'], // GENERIC_ALL to Everyone
      ['(A;OICI;FA;;;S-1-5-21-1-2-3-1001)', '0xd0040'],
      ['(A;;0x10000000;;;BU)', '0xd0040'],
    ] as const) {
      const j = untrustedWindowsBecause('C:\\data', `O:BAD:PAI(A;;FA;;;SY)${ace}`, false)
      assert.ok(j, ace)
      assert.match(j.why, new RegExp(`write access \\(.*, ${bits}\\)`), ace)
      assert.equal(j.fix, 'icacls "C:\\data" /inheritance:r /grant:r *S-1-5-18:(OI)(CI)F *S-1-5-32-544:(OI)(CI)F')
    }
  })

  it('refuses write to the target file by anyone else: FILE_WRITE_DATA, FILE_APPEND_DATA, GW, FW', () => {
    for (const ace of ['(A;;0x2;;;BU)', '(A;;0x4;;;BU)', '(A;;GW;;;WD)', '(A;;FW;;;AU)', '(A;;DC;;;BU)', '(OA;;FA;;;BU)', '(XA;;FA;;;WD;(@User.dept == "a;b)"))']) {
      assert.ok(untrustedWindowsBecause('C:\\f.yml', `O:BAD:${ace}`, true), ace)
    }
  })

  it('inherit-only ACEs are not the object\'s own, but on the target folder they are what its files get; OWNER RIGHTS or CREATOR OWNER count only so', () => {
    assert.equal(untrustedWindowsBecause('C:\\d', 'O:BAD:P(A;OICIIO;FA;;;CO)(A;OICIIO;GA;;;BU)(A;;FA;;;BA)', false), undefined)
    assert.equal(untrustedWindowsBecause('C:\\d', 'O:BAD:P(A;OICIIO;FA;;;CO)(A;;FA;;;BA)', true), undefined)
    assert.match(untrustedWindowsBecause('C:\\ProgramData\\ngrokd\\state', 'O:BAD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICIIO;FA;;;BU)', true)?.why ?? '', /gives Users \(S-1-5-32-545\) write access \(FA/)
    assert.ok(untrustedWindowsBecause('C:\\d', 'O:BAD:P(A;;FA;;;OW)', true))
    assert.ok(untrustedWindowsBecause('C:\\d', 'O:BAD:P(A;OICI;FA;;;CO)', true))
  })

  it('a NULL or missing DACL lets everyone do everything; deny ACEs do not count in the file\'s favour; unknown rights are refused', () => {
    assert.equal(untrustedWindowsBecause('C:\\d', 'O:BAD:NO_ACCESS_CONTROL', true)?.why, 'has no DACL (everyone may change it)')
    assert.equal(untrustedWindowsBecause('C:\\d', 'O:BA', true)?.why, 'has no DACL (everyone may change it)')
    assert.equal(untrustedWindowsBecause('C:\\d', 'O:BAD:P', true), undefined, 'an empty DACL: only the owner, implicitly')
    assert.ok(untrustedWindowsBecause('C:\\d', 'O:BAD:(D;;FA;;;BU)(A;;FA;;;BU)', true))
    assert.equal(untrustedWindowsBecause('C:\\d', 'O:BAD:(D;;FA;;;BU)', true), undefined)
    assert.match(untrustedWindowsBecause('C:\\d', 'O:BAD:(A;;QQ;;;BU)', true)?.why ?? '', /rights QQ ngrokd does not know/)
    assert.match(untrustedWindowsBecause('C:\\d', 'O:BAD:(A;;FA', true)?.why ?? '', /cannot read/)
  })

  it('reads rights as winnt.h masks, generic rights mapped as a file maps them', () => {
    assert.equal(accessMask('FA'), 0x1f01ff)
    assert.equal(accessMask('FR'), 0x120089)
    assert.equal(accessMask('0x1200a9'), 0x1200a9)
    assert.equal(accessMask('GW'), (0x40000000 | 0x120116) >>> 0)
    assert.equal(accessMask('CCDCLCSWRPWPDTLOCRSDRCWDWO'), 0xf01ff)
    assert.equal(accessMask('XY'), undefined)
    assert.deepEqual(parseSddl('O:BAG:SYD:PAI(A;OICI;FA;;;SY)(A;OICIIO;GA;;;CO)'), {
      owner: 'S-1-5-32-544',
      dacl: [
        { type: 'A', flags: ['OI', 'CI'], rights: 'FA', sid: 'S-1-5-18' },
        { type: 'A', flags: ['OI', 'CI', 'IO'], rights: 'GA', sid: 'S-1-3-0' },
      ],
    })
    assert.equal(parseSddl('O:EDD:(A;;FA;;;BA)').owner, 'ED', 'an owner alias ending in D is not the DACL')
  })
})
