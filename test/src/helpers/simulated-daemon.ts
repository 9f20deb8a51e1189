import { after, before } from 'node:test'
import { CloudSimulator } from '@ngrokd/plugin-simulator'
import { E2eDaemon, type E2eDaemonOptions } from './e2e-daemon.js'
import { snapshotHostsFile } from './hosts-guard.js'

export interface SimulatedDaemon {
  sim: CloudSimulator
  daemon: E2eDaemon
  /** The ids of `endpoints`, in order. */
  endpointIds: string[]
}

/**
 * The frame most end-to-end files share, set up in the calling `describe`: the hosts file snapshotted, a cloud
 * simulator holding `endpoints`, one daemon on `net` waited for until each of them serves; after the tests the
 * daemon and simulator go and the hosts file must be as it was.
 *
 * ```ts
 * const ctx = simulatedDaemon({ name: 'reload', net, endpoints: ['http://reload.e2e'] })
 * test('…', async () => { await ctx.daemon.status() })
 * ```
 */
export function simulatedDaemon(options: Pick<E2eDaemonOptions, 'name' | 'net'> & Partial<E2eDaemonOptions> & { endpoints: readonly string[] }): SimulatedDaemon {
  const hosts = snapshotHostsFile()
  const ctx = { endpointIds: [] as string[] } as SimulatedDaemon
  before(async () => {
    hosts.take()
    ctx.sim = await CloudSimulator.start()
    ctx.endpointIds = options.endpoints.map((url) => ctx.sim.addEndpoint({ url }).id)
    const { endpoints: _, ...daemonOptions } = options
    ctx.daemon = E2eDaemon.start({ ...daemonOptions, sim: ctx.sim })
    await ctx.daemon.waitReady((s) => s.services?.serving === options.endpoints.length)
  })
  after(async () => {
    await ctx.daemon?.dispose()
    await ctx.sim?.stop()
    hosts.assertRestored()
  })
  return ctx
}
