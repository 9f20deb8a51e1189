import { readdir, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { cosmiconfig, defaultLoaders, type Loader } from 'cosmiconfig'
import { isNgrokdError, NgrokdError, PermissionError } from '../errors/ngrokd-error.js'
import { INSTANCE_ENV, instanceConfigPath } from './instance.js'
import { assertTrustedPath, runsAsRoot } from '../util/trusted-path.js'
import type { LoadedConfig } from './daemon-config.js'
import { resolveConfig } from './resolve-config.js'

export const DEFAULT_CONFIG_PATH = '/etc/ngrokd/config.yml'

/**
 * Where cosmiconfig looks, in order, in the working directory and its parents up to the nearest
 * package.json. Data formats only: a JavaScript config found in whatever directory a root daemon was
 * started from would run as root.
 */
export const CONFIG_SEARCH_PLACES = [
  'ngrokd.yaml',
  'ngrokd.yml',
  'ngrokd.json',
  '.ngrokdrc',
  '.ngrokdrc.yaml',
  '.ngrokdrc.yml',
  '.ngrokdrc.json',
  '.config/ngrokdrc',
  '.config/ngrokdrc.yaml',
  '.config/ngrokdrc.yml',
  '.config/ngrokdrc.json',
  'package.json',
]

export interface LoadConfigOptions {
  /** `--config FILE`: read exactly this file (relative to `cwd`); a missing file is an error. */
  configPath?: string
  /** Where the search starts, and the base of relative paths from the environment. Default `process.cwd()`. */
  cwd?: string
  /** Default `process.env`. */
  env?: NodeJS.ProcessEnv
  /** Read when the search finds nothing, if it exists. Default {@link DEFAULT_CONFIG_PATH}. */
  defaultPath?: string
  /**
   * Running as root (the default when uid is 0): no search of the current directory, which another
   * user may control — only `configPath` or `defaultPath` — and the file read must pass
   * {@link assertTrustedPath}.
   */
  asRoot?: boolean
  /**
   * `--instance NAME` (or NGROKD_INSTANCE): the named instance's configuration — `defaultPath` becomes
   * `NAME.yml` beside it, the current directory is not searched (its file is the default daemon's),
   * and the `instance` key is set (see instance.ts).
   */
  instance?: string
}

const rejectCode: Loader = (filepath) => {
  throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `config file ${filepath} is a program; ngrokd reads YAML or JSON only`, {
    hint: 'write the configuration as YAML or JSON (see config.schema.json of @ngrokd/core)',
  })
}

/**
 * JSON by the platform's parser, and a syntax error that names its line and column (cosmiconfig's loader
 * loads parse-json and @babel/code-frame for this, and its message's first line is a line of the code frame).
 */
const loadJson: Loader = (_filepath, content) => {
  const text = content.replace(/^\uFEFF/, '') // a byte-order mark some editors write
  try {
    return JSON.parse(text) as unknown
  } catch (e) {
    const reason = (e as Error).message.replace(/ in JSON at position \d+.*$/, '')
    const at = /at position (\d+)/.exec((e as Error).message) // V8 gives the offset for most errors
    if (!at) throw new SyntaxError(reason)
    const before = text.slice(0, Number(at[1]))
    const line = before.split('\n').length
    const column = before.length - before.lastIndexOf('\n')
    throw new SyntaxError(`${reason} at line ${line}, column ${column}`) // V8's offset would only repeat it
  }
}

const LOADERS = {
  '.json': loadJson,
  '.js': rejectCode,
  '.mjs': rejectCode,
  '.cjs': rejectCode,
  '.ts': rejectCode,
  '.mts': rejectCode,
  '.cts': rejectCode,
  // Any other extension (config.conf, config.yml.bak) is YAML, which also reads JSON.
  default: defaultLoaders['.yaml'],
}

function readError(error: unknown, fallbackPath: string | undefined): Error {
  if (isNgrokdError(error)) return error
  const e = error as NodeJS.ErrnoException & { filepath?: string }
  const file = e?.filepath ?? e?.path ?? fallbackPath ?? 'the configuration file'
  switch (e?.code) {
    case 'ENOENT':
      return new NgrokdError('NGROKD_ERR_CONFIG_NOT_FOUND', `config file ${file} does not exist`, {
        hint: 'check the path given with --config, or leave it out to use the default locations',
        cause: error,
      })
    case 'EACCES':
    case 'EPERM':
      return new PermissionError(`cannot read config file ${file}: ${e.code}`, { cause: error })
    case 'EISDIR':
      return new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `config file ${file} is a directory`, { hint: 'name a YAML or JSON file', cause: error })
  }
  // cosmiconfig's YAML loader prefixes "YAML Error in FILE:\n" (loadJson above does not); keep the reason line.
  const lines = String(e?.message ?? error).split('\n').filter((l) => l.trim() !== '' && !/^YAML Error in /.test(l))
  return new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `cannot parse config file ${file}: ${lines[0]?.trim() ?? 'unknown error'}`, {
    hint: 'fix the YAML or JSON syntax at the position shown',
    cause: error,
  })
}

async function isFile(path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw readError(error, path)
  }
}

/**
 * Finds, reads and validates the daemon's configuration:
 * 1. `configPath` (`--config FILE`) if given;
 * 2. else, unless running as root, a cosmiconfig search for `ngrokd` from `cwd` ({@link CONFIG_SEARCH_PLACES},
 *    `ngrokd` in package.json);
 * 3. else `defaultPath` (/etc/ngrokd/config.yml) if it exists;
 * 4. else defaults only.
 * As root the file read, and `ingress.ca_file`, must pass {@link assertTrustedPath}. Then `NGROKD_*` variables and `NGROK_API_KEY` override the file (see {@link resolveConfig}).
 *
 * ```ts
 * const { config, source, notices } = await loadConfig({ configPath: args.config })
 * for (const n of notices) logger.warn(n)
 * ```
 * @throws NgrokdError `NGROKD_ERR_CONFIG_NOT_FOUND` (missing `configPath`), `NGROKD_ERR_CONFIG_INVALID`
 *   (unparsable file, or a {@link ConfigInvalidError} listing every bad key), `NGROKD_ERR_PERMISSION`,
 *   `NGROKD_ERR_PATH_UNTRUSTED` (as root, a file another user could have written).
 */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<LoadedConfig> {
  const cwd = resolve(options.cwd ?? process.cwd())
  let found: { filepath: string; config?: unknown } | null = null
  let path: string | undefined
  const asRoot = options.asRoot ?? runsAsRoot()
  const baseEnv = options.env ?? process.env
  const instance = options.instance ?? (baseEnv[INSTANCE_ENV] || undefined)
  const env = instance ? { ...baseEnv, [INSTANCE_ENV]: instance } : baseEnv
  const defaultPath = instance ? instanceConfigPath(options.defaultPath ?? DEFAULT_CONFIG_PATH, instance) : (options.defaultPath ?? DEFAULT_CONFIG_PATH)
  try {
    const explorer = cosmiconfig('ngrokd', {
      searchPlaces: CONFIG_SEARCH_PLACES,
      searchStrategy: 'project',
      cache: false,
      loaders: LOADERS,
    })
    const load = async (file: string) => explorer.load(asRoot ? await assertTrustedPath(file, { what: 'config file' }) : file)
    if (options.configPath !== undefined) {
      path = resolve(cwd, options.configPath)
      found = await load(path)
    } else {
      found = asRoot || instance ? null : await explorer.search(cwd)
      path = resolve(cwd, defaultPath)
      if (!found && (await isFile(path))) found = await load(path)
    }
  } catch (error) {
    throw readError(error, path)
  }
  const loaded = resolveConfig(found?.config, {
    ...(found ? { source: found.filepath } : {}),
    cwd,
    env,
  })
  if (asRoot && loaded.config.ingress.caFile) await assertTrustedCaFiles(loaded.config.ingress.caFile)
  return loaded
}

/**
 * The ingress's trust anchors decide who may answer for ngrok: as root, `ingress.ca_file` (a file, or
 * a directory and each file in it) must be one only root can change. A missing one is left to the
 * trust loader, which names it.
 */
async function assertTrustedCaFiles(caFile: string): Promise<void> {
  const what = 'ingress.ca_file'
  const real = await assertTrustedPath(caFile, { what }).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? undefined : Promise.reject(e)))
  if (real === undefined || !(await stat(real)).isDirectory()) return
  for (const entry of await readdir(real)) await assertTrustedPath(join(real, entry), { what })
}
