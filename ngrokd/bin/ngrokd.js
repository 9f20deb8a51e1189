#!/usr/bin/env node
// `npm install -g ngrokd` installs this package: the CLI of @ngrokd/core plus the built-in drivers
// and the cloud simulator, so `net.driver: auto` and `ngrokd demo` work without further installs.
import '@ngrokd/core/cli'
