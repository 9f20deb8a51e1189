/**
 * Preloaded with `--import` (NODE_OPTIONS) into a process under test: records the modules it loads, one
 * file URL or path per line, into the file MODULE_LOG_FILE names — ES modules as they are resolved
 * (module-log-hooks.ts), CommonJS ones from the require cache when the process exits, and Node's own
 * internal modules (`process.moduleLoadList`) as `builtin:` lines then.
 */
import { appendFileSync } from 'node:fs'
import { createRequire, register } from 'node:module'

const file = process.env.MODULE_LOG_FILE
if (file) {
  register('./module-log-hooks.js', import.meta.url, { data: { file } })
  process.on('exit', () => {
    // undocumented, and in every Node release: the internal modules and bindings this thread loaded
    const { moduleLoadList } = process as unknown as { moduleLoadList: string[] }
    const builtins = moduleLoadList.map((name) => `builtin:${name}`)
    appendFileSync(file, [...Object.keys(createRequire(import.meta.url).cache), ...builtins].join('\n') + '\n')
  })
}
