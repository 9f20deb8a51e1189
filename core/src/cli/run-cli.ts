import { main } from './main.js'
import type { Command } from './commands.js'

/**
 * Runs the ngrokd CLI on this process's arguments and exits when the command is done. `extra`
 * commands join the built-in ones: the `ngrokd` package adds `demo` from the cloud simulator this
 * way, so core never imports the simulator.
 */
export function runCli(extra: readonly Command[] = []): void {
  // a reader that went away (`ngrokd demo --once | head`) is not a crash: the command finishes and cleans up;
  // output that cannot be written (`> /dev/full`: ENOSPC) is said once, in one line without a stack, and exits 1
  let outputFailed = false
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE' || outputFailed) return
      outputFailed = true
      process.exitCode = 1
      if (stream === process.stdout) process.stderr.write(`ngrokd: cannot write to standard output: ${e.code ?? e.message}\n`)
    })
  }
  main(process.argv.slice(2), extra).then(
    (code) => {
      process.exitCode = outputFailed && code === 0 ? 1 : code
      // A command has finished: a handle left open somewhere (a native poll handle, a socket in a
      // library) must not keep the CLI alive. Output is flushed by then; the timer itself holds nothing.
      setTimeout(() => process.exit(), 2_000).unref()
    },
    (e) => {
      console.error(e)
      process.exitCode = 1
    },
  )
}
