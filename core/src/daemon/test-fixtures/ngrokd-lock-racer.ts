// One of several processes taking one state dir's lock at the same instant (instance-lock.test.ts): its file name holds
// "ngrokd", as a daemon's command line does, so the others take it for a live ngrokd. Prints WON or LOST, then, after
// holding it a while, whether the lock still names it.
import { InstanceLock } from '../instance-lock.js'

const [dir, startAt] = [process.argv[2]!, Number(process.argv[3])]
while (Date.now() < startAt) {} // lined up with the others
try {
  const lock = await InstanceLock.acquire({ stateDir: dir, interfaceName: 'racer', socketPath: '/nonexistent.sock', runDir: null })
  console.log('WON')
  await new Promise((resolve) => setTimeout(resolve, 500))
  console.log(`HELD ${(await lock.stateLock()).held}`)
  await lock.release()
} catch (e) {
  console.log(`LOST ${(e as { code?: string }).code}`)
}
