#!/usr/bin/env node
import 'reflect-metadata'
import { main } from '../cli/main.js'

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
    // A command has finished: a handle left open somewhere (a native poll handle, a socket in a
    // library) must not keep the CLI alive. Output is flushed by then; the timer itself holds nothing.
    setTimeout(() => process.exit(), 2_000).unref()
  },
  (e) => {
    console.error(e)
    process.exitCode = 1
  },
)
