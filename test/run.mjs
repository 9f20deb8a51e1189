import { CloudSimulator } from '@ngrokd/plugin-simulator'
import { spawnSync } from 'node:child_process'
const sim = await CloudSimulator.start()
for (let i = 0; i < 4; i++) sim.addEndpoint({ url: `http://svc${i}.probe` })
const cfg = { api: { url: sim.apiUrl, key: sim.apiKey }, bound_endpoints: { poll_interval: '1s' }, net: { driver: 'loopback-alias', subnet: '127.107.0.0/16' }, names: { hosts_file: process.env.HOSTS } }
const r = spawnSync(process.execPath, ['--expose-gc', ...(process.argv.slice(2)), 'probe.mjs'], { stdio: 'inherit', env: { ...process.env, CFG: JSON.stringify(cfg), CA: sim.caCertPem } })
await sim.stop()
process.exit(r.status)
