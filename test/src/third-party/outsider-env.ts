/**
 * Variables npm itself puts into the environment of scripts (`npm test` runs this suite): among
 * them `npm_config_local_prefix`, which would make npm treat the repository as the project. The
 * cache and registry are kept so that a developer's own settings still apply.
 */
const KEEP_NPM = new Set(['npm_config_cache', 'npm_config_registry'])

/**
 * The environment of a command a stranger would type in a shell: none of the variables this suite
 * runs under — npm's script variables, `NGROKD_*` / `NGROK_*` (each overrides a config key) and
 * `NODE_TEST_CONTEXT` (it would make a nested `node --test` report to us in its internal format).
 */
export function outsiderEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (/^npm_/i.test(key) && !KEEP_NPM.has(key.toLowerCase())) continue
    if (/^(NGROKD_|NGROK_)/.test(key) || key === 'NODE_TEST_CONTEXT' || key === 'INIT_CWD') continue
    env[key] = value
  }
  return env
}
