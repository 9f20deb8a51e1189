// One of several processes taking one state dir's lock at the same instant (instance-lock.test.ts): its file name holds
// "ngrokd", as a daemon's command line does, so the others take it for a live ngrokd. Prints WON or LOST, then, once
// its stdin ends (every racer has answered), whether the lock still names it.
import { InstanceLock } from '../instance-lock.js'

const [dir, startAt] = [process.argv[2]!, Number(process.argv[3])]
while (Date.now() < startAt) {} // lined up with the others
try {
  const lock = await InstanceLock.acquire({ stateDir: dir, interfaceName: 'racer', socketPath: '/nonexistent.sock', runDir: null })
  console.log('WON')
  // held until every racer has answered (the test closes our stdin then): a racer that starts late on a slow
  // machine must still find it held, not released after a fixed while and free to take again
  process.stdin.resume()
  await new Promise((resolve) => process.stdin.once('end', resolve))
  console.log(`HELD ${(await lock.stateLock()).held}`)
  await lock.release()
} catch (e) {
  console.log(`LOST ${(e as { code?: string }).code}`)
}
