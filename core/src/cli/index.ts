// `@ngrokd/core/cli`: run the ngrokd CLI and add commands to it (the `ngrokd` package adds `demo`).
export { runCli } from './run-cli.js'
export { main } from './main.js'
export { printHelp, type Command } from './commands.js'
export { parseCommandArgs, type CommandSpec } from './args.js'
export { rerunInPrivateNamespace, run } from '../util/namespace.js'
