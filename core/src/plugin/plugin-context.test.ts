import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

/**
 * A process whose uncaughtException handler is the daemon's (commands.ts): a plugin's callbacks throw, then a callback of
 * the daemon's own does. Run apart: an exception nothing catches would end the test runner's process.
 */
const SCRIPT = `
const { asPlugin, pluginThatThrew } = await import(${JSON.stringify(new URL('./plugin-context.js', import.meta.url).href)})
const net = await import('node:net')
const said = []
// a server of the daemon's own, as the forwarder's listeners and the control socket are
const server = net.createServer((socket) => socket.on('data', () => { socket.destroy(); throw new Error('daemon data') }))
await new Promise((r) => server.listen(0, '127.0.0.1', r))
const plugin = (name) => ({ name, uncaught: (e) => said.push(name + ' told: ' + e.message) })
process.on('uncaughtException', (e) => said.push(e.message + ' -> ' + (pluginThatThrew(e) ?? "the daemon's own")))
asPlugin(plugin('ticker'), () => process.nextTick(() => { throw new Error('plugin nextTick') }))
asPlugin(plugin('timer'), () => setTimeout(() => { throw new Error('plugin timer') }, 1))
await new Promise((r) => setTimeout(r, 20))
// work the daemon starts afterwards, outside any plugin's code (Node 24 kept the plugin's context after a nextTick throw)
setTimeout(() => { throw new Error('daemon timer') }, 1)
setImmediate(() => { throw new Error('daemon immediate') })
const client = net.connect(server.address().port, '127.0.0.1', () => client.write('x'))
await new Promise((r) => client.on('close', r).on('error', r))
await new Promise((r) => setTimeout(r, 20))
server.close()
console.log(JSON.stringify(said))
`

describe('plugin context', () => {
  it("blames an uncaught exception on the plugin whose callback threw, and never the daemon's later work", async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', SCRIPT])
    const said = JSON.parse(stdout) as string[]
    assert.deepEqual(said.filter((l) => l.includes('->')).sort(), [
      "daemon data -> the daemon's own",
      "daemon immediate -> the daemon's own",
      "daemon timer -> the daemon's own",
      'plugin nextTick -> ticker',
      'plugin timer -> timer',
    ])
    assert.deepEqual(said.filter((l) => l.includes('told')).sort(), ['ticker told: plugin nextTick', 'timer told: plugin timer'])
  })
})
