import { access, constants } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { Check } from '@ngrokd/core/driver'

/** `ngrokd doctor`: can the driver write its state file? Checks the nearest folder that exists (the state folder is made on first write). */
export async function stateDirCheck(stateDir: string): Promise<Check> {
  for (let dir = stateDir; ; dir = dirname(dir)) {
    try {
      await access(dir, constants.F_OK)
    } catch {
      if (dirname(dir) === dir) break
      continue
    }
    try {
      await access(dir, constants.W_OK)
      return { id: 'loopback-alias.state-dir', status: 'ok', summary: `${stateDir} is writable` }
    } catch {
      return { id: 'loopback-alias.state-dir', status: 'fail', summary: `${dir} is not writable`, hint: 'run as the owner of state_dir or set state_dir', code: 'NGROKD_ERR_STATE' }
    }
  }
  return { id: 'loopback-alias.state-dir', status: 'fail', summary: `no part of ${stateDir} exists`, code: 'NGROKD_ERR_STATE' }
}
