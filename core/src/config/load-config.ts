import { constants } from 'node:fs'
import { lstat, open, readdir, readFile, stat } from 'node:fs/promises'
import { basename, dirname, extname, join, parse, resolve, sep } from 'node:path'
import { load as parseYaml } from 'js-yaml'
import { isNgrokdError, NgrokdError, PermissionError } from '../errors/ngrokd-error.js'
import { INSTANCE_ENV, instanceConfigPath } from './instance.js'
import { defaultConfigPath } from './platform-defaults.js'
import { nearestExisting } from '../util/nearest-existing.js'
import { assertTrustedPath, runsAsRoot } from '../util/trusted-path.js'
import type { ConfigNotice, LoadedConfig } from './daemon-config.js'
import { resolveConfig, type ResolveConfigOptions } from './resolve-config.js'

/** This OS's default config file: `/etc/ngrokd/config.yml`, on Windows `%ProgramData%\ngrokd\config.yml` (platform-defaults.ts). */
export const DEFAULT_CONFIG_PATH = defaultConfigPath()

/**
 * What another command needs to reach the daemon of this configuration, for hints (`ngrokd set-api-key` + this):
 * ` --config FILE` for a file of its own (and ` --instance NAME` for an instance's), ` --instance NAME` for an
 * instance read from its default file, and nothing for the default daemon.
 */
export function sameDaemonFlags(instance: string | undefined, configFile: string | undefined): string {
  const defaultFile = instance ? instanceConfigPath(DEFAULT_CONFIG_PATH, instance) : DEFAULT_CONFIG_PATH
  // the instance too: a file of its own need not say `instance:` (`run --instance work --config FILE`)
  const named = instance ? ` --instance ${instance}` : ''
  if (configFile && resolve(configFile) !== defaultFile) return ` --config ${/^[\w@%+=:,./-]+$/.test(configFile) ? configFile : JSON.stringify(configFile)}${named}`
  return named
}

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
  /** false: no search of the current directory (the Windows service, whose working directory is System32's). */
  search?: boolean
  /** As {@link ResolveConfigOptions.salvage}; a file that cannot be parsed is handed to it too, and read as no file. */
  salvage?: ResolveConfigOptions['salvage']
}

/** Parses one file's text; `filepath` is for messages. */
type Loader = (filepath: string, content: string) => unknown

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
    // V8 quotes the text around an unexpected token (`Unexpected token 'g', "ghp_…" is not valid JSON`): never shown,
    // as `--config` may name a file its caller may not read (a command run with privilege would print it)
    const reason = (e as Error).message.replace(/ in JSON at position \d+.*$/, '').replace(/^Unexpected token\b.*$/s, 'Unexpected token')
    const at = /at position (\d+)/.exec((e as Error).message) // V8 gives the offset for most errors
    if (!at) throw new SyntaxError(`${reason} (the file's text is not shown)`)
    const before = text.slice(0, Number(at[1]))
    const line = before.split('\n').length
    const column = before.length - before.lastIndexOf('\n')
    throw new SyntaxError(`${reason} at line ${line}, column ${column}`) // V8's offset would only repeat it
  }
}

/** js-yaml 4's `load` (its default schema builds data only, no `!!js/function`); a syntax error names its line and column, as loadJson's does. */
const loadYaml: Loader = (_filepath, content) => {
  try {
    return parseYaml(content)
  } catch (e) {
    const { reason, mark } = e as { reason?: string; mark?: { line: number; column: number } } // js-yaml's YAMLException; both 0-based
    if (reason === undefined || mark === undefined) throw e
    throw new SyntaxError(`${reason} at line ${mark.line + 1}, column ${mark.column + 1}`)
  }
}

/** By extension; any other extension (config.conf, config.yml.bak) and none (.ngrokdrc) is YAML, which also reads JSON. */
const LOADERS: Record<string, Loader> = {
  '.json': loadJson,
  '.yaml': loadYaml,
  '.yml': loadYaml,
  '.js': rejectCode,
  '.mjs': rejectCode,
  '.cjs': rejectCode,
  '.ts': rejectCode,
  '.mts': rejectCode,
  '.cts': rejectCode,
  noExt: loadYaml, // cosmiconfig's key for a file without an extension
  default: loadYaml,
}

/** Largest configuration file read: far above any real one, so that a huge file is refused, not parsed. */
const MAX_CONFIG_BYTES = 1024 * 1024

/**
 * Reads one named file, without cosmiconfig: cosmiconfig reads a "meta config" from the process's working
 * directory (its package.json, `.config/config.yaml`...) whenever it is set up, and that directory may be
 * another user's — or hold a package.json that does not parse, which would fail every command there.
 * An empty YAML file is a file with no settings, as cosmiconfig has it; an empty `.json` file is not JSON.
 */
async function readConfigFile(filepath: string): Promise<{ filepath: string; config?: unknown }> {
  // O_NONBLOCK: a FIFO opens at once (and is then refused) instead of holding a libuv worker thread until a writer comes
  const handle = await open(filepath, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0))
  let content: string
  try {
    const st = await handle.stat()
    if (st.isDirectory()) throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `config file ${filepath} is a directory`, { hint: 'name a YAML or JSON file' })
    if (!st.isFile()) {
      const what = st.isFIFO() ? 'a named pipe' : st.isCharacterDevice() || st.isBlockDevice() ? 'a device' : st.isSocket() ? 'a socket' : 'not a regular file'
      throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `config file ${filepath} is ${what}, not a regular file`, { hint: 'name a YAML or JSON file' })
    }
    if (st.size > MAX_CONFIG_BYTES) {
      throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `config file ${filepath} is ${st.size} bytes, over the ${MAX_CONFIG_BYTES / 1024 / 1024} MiB a configuration may have`, { hint: 'name the configuration file, not a data file' })
    }
    content = await handle.readFile('utf8')
  } finally {
    await handle.close()
  }
  if (content.trim() === '') {
    assertNotEmptyJson(filepath)
    return { filepath }
  }
  return { filepath, config: (LOADERS[extname(filepath)] ?? loadYaml)(filepath, content) }
}

/** JSON has no empty document (`{}` is one with no settings); an empty YAML file is one. */
function assertNotEmptyJson(filepath: string): void {
  if (extname(filepath) !== '.json') return
  throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `config file ${filepath} is empty, which is not JSON`, { hint: 'write {} for a configuration of the defaults, or its settings' })
}

function readError(error: unknown, fallbackPath: string | undefined): Error {
  if (isNgrokdError(error)) return error
  const e = error as NodeJS.ErrnoException & { filepath?: string }
  const file = e?.filepath ?? e?.path ?? fallbackPath ?? 'the configuration file'
  switch (e?.code) {
    case 'ENXIO': // open() of a socket, or of a device with nothing behind it
      return new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `config file ${file} is a socket or a device, not a regular file`, { hint: 'name a YAML or JSON file', cause: error })
    case 'ENOENT':
      return new NgrokdError('NGROKD_ERR_CONFIG_NOT_FOUND', `config file ${file} does not exist`, {
        hint: 'check the path given with --config, or leave it out to use the default locations',
        cause: error,
      })
    case 'EACCES':
    case 'EPERM':
      return new PermissionError(`cannot read config file ${file}: ${e.code}`, {
        hint: `run the command as a user who may read ${file} (with sudo when it is root's), or name another file with --config`,
        cause: error,
      })
    case 'EISDIR':
      return new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `config file ${file} is a directory`, { hint: 'name a YAML or JSON file', cause: error })
  }
  const firstLine = String(e?.message ?? error).split('\n').find((l) => l.trim() !== '')
  // no `cause`: the parser's whole word is in the message already, and logs and the CLI would say it twice
  return new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `cannot parse config file ${file}: ${firstLine?.trim() ?? 'unknown error'}`, {
    // V8 gives no position for an unexpected token: then what such a token is, the usual cause
    hint: /\bline \d+/.test(firstLine ?? '') ? 'fix the YAML or JSON syntax at the position shown' : 'fix the JSON syntax: a value that is not a quoted string, a number, true, false or null (an unquoted word, a misspelt true), or a stray character',
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
 * 3. else `defaultPath` ({@link DEFAULT_CONFIG_PATH}: /etc/ngrokd/config.yml, on Windows %ProgramData%\ngrokd\config.yml) if it exists;
 * 4. else defaults only.
 * As root the file read, and `ingress.ca_file`, must pass {@link assertTrustedPath}. Then `NGROKD_*` variables and `NGROK_API_KEY` override the file (see {@link resolveConfig}).
 *
 * ```ts
 * const { config, source, notices } = await loadConfig({ configPath: args.config })
 * for (const n of notices) logger.warn(n.message)
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
  const searchNotices: ConfigNotice[] = []
  try {
    const load = async (file: string) => {
      // a folder is no config file, whoever may write it: said as that (never read), before its trust is judged
      if (asRoot && (await stat(file).then((s) => s.isDirectory(), () => false))) {
        throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `config file ${file} is a directory`, { hint: 'name a YAML or JSON file' })
      }
      return readConfigFile(asRoot ? await assertTrustedPath(file, { what: 'config file' }) : file)
    }
    if (options.configPath !== undefined) {
      path = resolve(cwd, options.configPath)
      found = await load(path)
    } else {
      found = asRoot || instance || options.search === false ? null : await searchConfig(cwd, (message) => searchNotices.push({ check: 'config.search', message }))
      path = resolve(cwd, defaultPath)
      if (!found && (await isFile(path))) found = await load(path)
    }
  } catch (error) {
    const e = readError(error, path)
    if (!options.salvage || !isNgrokdError(e, 'NGROKD_ERR_CONFIG_INVALID')) throw e
    options.salvage(e)
    found = null
  }
  const loaded = resolveConfig(found?.config, {
    ...(found ? { source: found.filepath } : {}),
    // package.json holds the configuration under its `ngrokd` key: a bad key there is `ngrokd.net.subnet`
    ...(found && basename(found.filepath) === 'package.json' ? { within: 'ngrokd' } : {}),
    cwd,
    env,
    ...(options.salvage ? { salvage: options.salvage } : {}),
  })
  if (asRoot && loaded.config.ingress.caFile) await assertTrustedCaFiles(loaded.config.ingress.caFile)
  const said = searchNotices.length ? { ...loaded, notices: [...searchNotices, ...loaded.notices] } : loaded
  return found && found.config === undefined ? { ...said, empty: true } : said
}

/**
 * The places cosmiconfig's search opens (from `cwd` up to the folder with the nearest package.json), in its order, up to
 * the one it will take, which is returned (a package.json aside: it counts only with an `ngrokd` key, which only
 * cosmiconfig reads). Each one there but not a regular file is refused (cosmiconfig would open a named pipe and wait for
 * a writer forever), and so is an empty `.json` file, as a named one is (cosmiconfig would pass over it silently).
 */
async function checkSearchPlaces(cwd: string): Promise<string | undefined> {
  for (let dir = cwd; ; dir = dirname(dir)) {
    for (const place of CONFIG_SEARCH_PLACES) {
      const path = join(dir, place)
      const st = await stat(path).catch(() => undefined) // a link by where it leads, as a read would
      if (!st || st.isDirectory()) continue // cosmiconfig passes over a folder
      if (!st.isFile()) {
        throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `config file ${path}, found by the search from ${cwd}, is not a regular file`, { hint: 'remove it, or name the config file with --config' })
      }
      if (place === 'package.json') continue
      const empty = st.size === 0 || (st.size <= EMPTY_PROBE_BYTES && (await readFile(path, 'utf8').catch(() => 'unread')).trim() === '')
      if (!empty) return path // the one cosmiconfig takes
      assertNotEmptyJson(path) // an empty YAML file cosmiconfig passes over, and so does the search
    }
    if ((await stat(join(dir, 'package.json')).catch(() => undefined)) || dirname(dir) === dir) return undefined
  }
}

/** A search place larger than this holds more than white space. */
const EMPTY_PROBE_BYTES = 4096

/**
 * cosmiconfig's search from `cwd` up to the nearest package.json (loaded only for a search: ~20 modules). cosmiconfig
 * stops at a package.json that does not parse: the working directory's, which it reads first for its own "meta config",
 * or the project root's. The file it would have taken before that one is read as it would have been; with none, the
 * search ends without a file, said through `notice` (the package.json's `ngrokd` key may have been meant).
 */
async function searchConfig(cwd: string, notice: (message: string) => void): Promise<{ filepath: string; config?: unknown } | null> {
  const candidate = await checkSearchPlaces(cwd)
  const { cosmiconfig } = await import('cosmiconfig')
  try {
    return await cosmiconfig('ngrokd', { searchPlaces: CONFIG_SEARCH_PLACES, searchStrategy: 'project', cache: false, loaders: LOADERS }).search(cwd)
  } catch (error) {
    const file = (error as { filepath?: unknown }).filepath // set by cosmiconfig on a loader's error
    if (typeof file !== 'string' || basename(file) !== 'package.json') throw error
    if (candidate) return readConfigFile(candidate)
    notice(`${file} does not parse (${parseReason(error)}): the search for a config file ended there, without one (an ngrokd key in it is not read); fix it, or name the config file with --config`)
    return null
  }
}

/** A JSON parser's reason, without cosmiconfig's `JSON Error in FILE:` line, code frames (`> 3 | }`) or the text quoted. */
function parseReason(error: unknown): string {
  const lines = String((error as Error).message).split('\n')
  const reason = lines.find((l) => l.trim() !== '' && !l.startsWith('JSON Error in') && !/^\s*>?\s*\d*\s*\|/.test(l))
  return reason?.replace(/ while parsing .*$/, '').trim() || 'a syntax error'
}

/**
 * The ingress's trust anchors decide who may answer for ngrok: as root, `ingress.ca_file` (a file, or
 * a directory and each file in it) must be one only root can change. A missing one must be one only root could
 * create: the folder it would appear in (the nearest that exists) is judged as the file would be, and a symbolic link to
 * nothing is refused (another user could make its target); then the trust loader names it as missing.
 */
async function assertTrustedCaFiles(caFile: string): Promise<void> {
  const what = 'ingress.ca_file'
  const real = await assertTrustedPath(caFile, { what }).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? undefined : Promise.reject(e)))
  if (real === undefined) {
    // a link to nothing on the way (the file's own, or a folder's) leads where another user might create the target
    let at = parse(resolve(caFile)).root
    for (const part of resolve(caFile).split(sep).filter(Boolean)) {
      at = join(at, part)
      const st = await lstat(at).catch(() => undefined)
      if (!st) break
      if (st.isSymbolicLink() && !(await stat(at).catch(() => undefined))) {
        throw new NgrokdError('NGROKD_ERR_PATH_UNTRUSTED', `refusing ${what} ${caFile}: ${at} is a symbolic link to nothing, whose target another user might create; as root ngrokd uses only files that root alone can change`, {
          hint: `point ${what} at the CA file itself, in a directory only root can write, such as /etc/ngrokd`,
        })
      }
    }
    await assertTrustedPath(nearestExisting(dirname(resolve(caFile))), { what: `${what}'s directory (${caFile} is not there yet)` })
    return
  }
  if (!(await stat(real)).isDirectory()) return
  for (const entry of await readdir(real)) await assertTrustedPath(join(real, entry), { what })
}
