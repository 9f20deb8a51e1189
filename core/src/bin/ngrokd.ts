#!/usr/bin/env node
// The CLI of @ngrokd/core alone: every command but `demo`, which the `ngrokd` package adds.
import { runCli } from '../cli/run-cli.js'

runCli()
