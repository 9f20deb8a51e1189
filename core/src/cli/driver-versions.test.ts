import { test } from 'node:test'
import assert from 'node:assert/strict'
import { driverVersionLines } from './driver-versions.js'

const all = (pkg: string) => (pkg.endsWith('loopback-alias') ? '1.2.0' : '1.0.0')

test('version lists the drivers this system runs, and names the others as for other systems', () => {
  assert.deepEqual(driverVersionLines('linux', all), [
    'driver linux-netlink 1.0.0',
    'driver loopback-alias 1.2.0',
    'drivers for other systems, not usable on linux: darwin-utun (darwin), windows-wintun (win32)',
  ])
  assert.deepEqual(driverVersionLines('darwin', all), [
    'driver darwin-utun 1.0.0',
    'driver loopback-alias 1.2.0',
    'drivers for other systems, not usable on darwin: linux-netlink (linux), windows-wintun (win32)',
  ])
  assert.deepEqual(driverVersionLines('win32', all).slice(0, 1), ['driver windows-wintun 1.0.0'])
})

test('a driver for this system that is not installed says how to get it', () => {
  const lines = driverVersionLines('linux', (pkg) => (pkg.endsWith('linux-netlink') ? undefined : '1.0.0'))
  assert.equal(lines[0], 'driver linux-netlink not installed: reinstall ngrokd with its optional dependencies (npm install -g ngrokd)')
})

test('installed here by default: the drivers of the running system resolve beside ngrokd', () => {
  for (const line of driverVersionLines(process.platform).filter((l) => l.startsWith('driver '))) assert.match(line, /^driver [a-z-]+ \d+\.\d+\.\d+$/)
})
