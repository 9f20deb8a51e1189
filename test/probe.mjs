import 'reflect-metadata'
import { writeFileSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
const mem = (label) => { globalThis.gc?.(); const m = process.memoryUsage(); console.log(label.padEnd(22), 'rss', (m.rss/1e6).toFixed(1), 'heapUsed', (m.heapUsed/1e6).toFixed(1), 'heapTotal', (m.heapTotal/1e6).toFixed(1), 'ext', (m.external/1e6).toFixed(1), 'ab', (m.arrayBuffers/1e6).toFixed(1)) }
mem('bare')
const sim = process.env.SIM_URL
const core = await import('@ngrokd/core')
mem('core imported')
const dir = mkdtempSync(join(tmpdir(), 'memprobe-'))
const cfg = JSON.parse(process.env.CFG)
writeFileSync(join(dir, 'ca.pem'), process.env.CA)
cfg.ingress = { ca_file: join(dir, 'ca.pem') }
cfg.state_dir = join(dir, 'state'); cfg.control = { socket: join(dir, 'ctl.sock') }
const { config } = core.resolveConfig(cfg, { env: {} })
const logger = core.silentLogger; const { Daemon } = await import('/work/main/core/dist/daemon/daemon.js')
const daemon = new Daemon({ config, logger })
await daemon.start()
mem('started')
const t0 = Date.now()
while (!(daemon.status().lastPoll?.ok)) await new Promise(r => setTimeout(r, 50))
mem('first poll')
await new Promise(r => setTimeout(r, 3000))
mem('idle 3s')
console.log('hwm', (await import('node:fs')).readFileSync('/proc/self/status','utf8').match(/VmHWM:\s+(\d+)/)[1]/1e3)
await daemon.stop()
process.exit(0)
