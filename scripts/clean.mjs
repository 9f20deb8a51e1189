#!/usr/bin/env node
// Removes the given output folders before a build: `tsc -b` never deletes the output of a source that was
// moved or deleted, and a stale file would ship in dist/ or run as a test from dist-test/.
import { rmSync } from 'node:fs'

for (const dir of process.argv.slice(2)) rmSync(dir, { recursive: true, force: true })
