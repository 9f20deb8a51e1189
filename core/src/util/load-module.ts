import { didYouMean } from './did-you-mean.js'
import { existsSync, lstatSync, readFileSync, statSync, type Stats } from 'node:fs'
import { lstat, readdir, readlink, realpath } from 'node:fs/promises'
import { createRequire, isBuiltin } from 'node:module'
import { dirname, join, resolve, sep } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { NgrokdError, isNgrokdError } from '../errors/ngrokd-error.js'
import type { NgrokdErrorCode } from '../errors/codes.js'
import { assertTrustedPath, judgeEntry, othersMayAddTo, runsAsRoot, type TrustedPathOptions } from './trusted-path.js'
import { resolveCoreFromOwnInstallation } from './own-core-resolution.js'

export interface LoadModuleOptions {
  /** What is loaded, for messages: `interface driver`, `plugin`. */
  what: string
  /** Directory of the config file: third-party packages and relative paths resolve from here. */
  configDir: string
  /** Short names that ship with ngrokd → their packages. */
  builtins: Readonly<Record<string, string>>
  codes: { notFound: NgrokdErrorCode; invalid: NgrokdErrorCode }
  /** Refuse a module another user could have written (see assertTrustedPath). Default: running as root. */
  trustCheck?: boolean
  /**
   * Evaluate the module's file anew, not the copy (or the failure) this process loaded before: Node keeps an ES
   * module's first result for the life of the process, which a reload's check of a plugin fixed or upgraded on disk
   * must not see. A file unchanged since a load that worked is not loaded again (each load stays in memory); the
   * module's own imports are still shared. Built-ins are ngrokd's.
   */
  fresh?: boolean
}

export interface LoadedModule {
  /** The package name or path that was resolved. */
  specifier: string
  /** The file loaded. */
  file: string
  /** One of ngrokd's own modules, loaded from its installation. */
  builtin: boolean
  exports: { default?: unknown }
}

/** Fresh loads so far (see LoadModuleOptions.fresh): each one's URL is new. */
let freshLoads = 0
/**
 * Each file's last load: what the file was then (inode, size, modification and change times), the URL it was imported by and whether
 * that import worked. A fresh load of a file that has not changed since a load that worked is that same module, so that a
 * reload every few seconds keeps no new copy of it; a changed file, or one whose last import failed, is imported anew.
 */
const loads = new Map<string, { version: string; url: string; ok: boolean }>()

/** Imports `file` (see {@link loads}); `fresh`: not a copy of an older version of it. */
async function importFile(file: string, fresh: boolean): Promise<{ default?: unknown }> {
  const plain = pathToFileURL(file).href
  const st = statSync(file, { throwIfNoEntry: false })
  // ctime too: a tool may set the modification time back (tar, cp -p, npm pack's 1985), never the change time
  const version = st ? `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}` : ''
  const last = loads.get(file)
  const url = !last ? plain : last.ok && (!fresh || last.version === version) ? last.url : `${plain}?fresh=${++freshLoads}`
  try {
    const exports = (await import(url)) as { default?: unknown }
    loads.set(file, { version, url, ok: true })
    return exports
  } catch (e) {
    loads.set(file, { version, url, ok: false })
    throw e
  }
}

export function isPathSpec(spec: string): boolean {
  return spec.startsWith('.') || spec.startsWith('/') || /^[A-Za-z]:[\\/]/.test(spec)
}

/** Where ngrokd itself is installed: its built-in drivers and plugins resolve from here only. */
const OWN_LOCATION = fileURLToPath(import.meta.url)

/**
 * The one way drivers and plugins are found and imported. A built-in name (or its package name)
 * always resolves from ngrokd's own installation, never from the config's or the current directory,
 * where another user could have planted a `node_modules/@ngrokd/...`. A path resolves relative to
 * `configDir`; another package name from `configDir`, then beside ngrokd. As root, a module that is
 * not built in must pass {@link assertTrustedPath}, and so must every file and folder of the installed package
 * it is in (what it imports of its own; a module named by path is judged alone); a built-in one must be root's or owned
 * by whoever owns ngrokd's own files (so one found outside ngrokd's installation, through NODE_PATH or a
 * home folder, is refused).
 *
 * @throws NgrokdError `codes.notFound`, `codes.invalid` (it did not import), `NGROKD_ERR_PATH_UNTRUSTED`.
 */
export async function loadModule(spec: string, options: LoadModuleOptions): Promise<LoadedModule> {
  const specifier = options.builtins[spec] ?? spec
  const builtin = Object.values(options.builtins).includes(specifier)
  let file: string
  try {
    file = builtin ? resolveFrom(specifier, OWN_LOCATION) : resolveSpecifier(specifier, options.configDir)
  } catch (cause) {
    // a near miss of a built-in name is a typo: never advise installing whatever the registry has under it
    const builtinMeant = builtin || isPathSpec(specifier) ? undefined : didYouMean(spec, Object.keys(options.builtins))
    throw new NgrokdError(
      options.codes.notFound,
      `${options.what} "${spec}" not found (looked for ${specifier} ${builtin ? "in ngrokd's installation" : `from ${options.configDir}`})`,
      {
        cause: withoutRequireStack(cause),
        hint: builtinMeant
          ? `did you mean "${builtinMeant}", the built-in ${options.what}? (a package of another name: npm install it beside ngrokd)`
          : isPathSpec(specifier)
          ? "check the path: it is resolved relative to the config file's directory"
          : /\.[cm]?js$/.test(specifier) || existsSync(resolve(options.configDir, specifier))
          ? `a path starts with ./ or / (without, it names an npm package): write "./${specifier}"`
          : `install it: npm install ${specifier}${builtin ? ' (beside ngrokd)' : ' (next to your config file, or globally beside ngrokd)'}`,
      },
    )
  }
  if (options.trustCheck ?? runsAsRoot()) {
    const what = `${options.what} module`
    if (builtin) file = await assertTrustedPath(file, { what, uid: statSync(OWN_LOCATION).uid, code: true })
    else {
      file = await assertTrustedPath(file, { what, code: true })
      // what it imports of its own: its installed package, else the package (nearest package.json) or folder it is in;
      // then every package it depends on, as Node finds them, and theirs
      const scope = scopeOf(file)
      await assertTrustedTree(scope, what)
      await assertTrustedDependencies(scope, what)
    }
  }
  if (!builtin) resolveCoreFromOwnInstallation() // its @ngrokd/core is ngrokd's own, wherever the module is
  try {
    const exports = builtin ? ((await import(pathToFileURL(file).href)) as { default?: unknown }) : await importFile(file, options.fresh ?? false)
    return { specifier, file, builtin, exports }
  } catch (cause) {
    const missing = /^Cannot find (?:package|module) '([^']+)'/.exec((cause as Error).message)?.[1]
    throw new NgrokdError(options.codes.invalid, `${options.what} "${spec}" (${file}) failed to load: ${(cause as Error).message}`, {
      cause,
      hint:
        (cause as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && missing && !missing.startsWith('.') && !missing.startsWith('/')
          ? `it imports ${missing}, which is not installed where it is: npm install ${missing} in ${dirname(file)} (or a folder above it)`
          : isNgrokdError(cause)
            ? `its own definition is refused as it loads: fix what the message names in its source, or tell its author${cause.hint ? ` (${cause.hint})` : ''}`
            : cause instanceof SyntaxError
              ? `its source is not valid JavaScript for this Node.js (${process.version}): fix the line the message names, or tell its author`
              : (cause as NodeJS.ErrnoException).code === undefined
                ? `its code threw as it loaded: fix what the message names in ${file}, or tell its author`
                : `reinstall the ${options.what} package; if it was built from source, build it (npm run build)`,
    })
  }
}

/** Node's "Cannot find module" without its "Require stack" (a file the resolver made up to resolve from, a bundle chunk). */
function withoutRequireStack(cause: unknown): unknown {
  if (!(cause instanceof Error) || !cause.message.includes('\nRequire stack:')) return cause
  return Object.assign(new Error(cause.message.slice(0, cause.message.indexOf('\nRequire stack:'))), { code: (cause as NodeJS.ErrnoException).code })
}

/** Most files and folders of one module's package that are judged; a bigger tree is refused rather than half-checked. */
const MAX_TREE_ENTRIES = 100_000

/** Whose files are trusted, by which OS's rule (trusted-path.ts); this process's and this OS's when not given. */
type TrustRule = Pick<TrustedPathOptions, 'uid' | 'platform' | 'readSddl'>

/**
 * An installed program whole, as a service runs it as root at every start: every file and folder of its package
 * (`installation`, {@link scopeOf} of its entry file) and of every package it depends on where Node finds them,
 * ngrokd's own `@ngrokd/core` included, and theirs (each folder walked once by its real path: a workspace's links to
 * its packages are followed and loop nowhere). One lstat an entry, a few thousand for a global install of ngrokd
 * (some 3,500): a fraction of a second, once per install.
 * @throws NgrokdError `NGROKD_ERR_PATH_UNTRUSTED` naming the first file or folder another user may change.
 */
export async function assertTrustedInstallation(installation: string, what: string, rule: TrustRule = {}, hintFor?: (refusedPackage: string) => string): Promise<void> {
  const walked = new Set<string>()
  const judging = { package: installation }
  try {
    await assertTrustedTree(installation, what, rule, walked)
    await assertTrustedDependencies(installation, what, rule, { ownCore: true, walked, judging })
  } catch (e) {
    // `hintFor`: the fix, from the package (the installation or one it loads) the refused file or folder belongs to
    throw hintFor && isNgrokdError(e, 'NGROKD_ERR_PATH_UNTRUSTED') ? new NgrokdError(e.code, e.message, { cause: e.cause, hint: hintFor(judging.package) }) : e
  }
}

/**
 * What a module's own imports can reach, to be judged whole (its hidden folders too; only `.git` is passed over):
 * an installed package (`…/node_modules/name`); a module named by path in a package (the folder of the nearest
 * package.json); a lone file, its own folder.
 */
export function scopeOf(file: string): string {
  const installed = packageRootOf(file)
  if (installed) return installed
  for (let dir = dirname(file); ; ) {
    if (existsSync(join(dir, 'package.json'))) return dir
    const parent = dirname(dir)
    if (parent === dir) return dirname(file)
    dir = parent
  }
}

/** The installed package `file` belongs to (`…/node_modules/name` or `…/node_modules/@scope/name`); undefined for a file in none. */
function packageRootOf(file: string): string | undefined {
  const marker = `${sep}node_modules${sep}`
  const at = file.lastIndexOf(marker)
  if (at < 0) return undefined
  const [first, second] = file.slice(at + marker.length).split(sep)
  return first?.startsWith('@') ? join(file.slice(0, at + marker.length), first, second ?? '') : join(file.slice(0, at + marker.length), first ?? '')
}

/**
 * Every file and folder under `root` passes {@link judgeEntry}: another user could not change what the module imports
 * of its own. A link is judged where it leads (a folder it leads to is walked too, once); a link that leads nowhere yet
 * by the folder its target would be made in, as nobody else may make it there. `walked`: real folders already walked
 * (by an earlier call too), not walked again.
 */
async function assertTrustedTree(root: string, what: string, rule: TrustRule = {}, walked = new Set<string>()): Promise<void> {
  const realRoot = await realpath(root)
  if (walked.has(realRoot)) return
  walked.add(realRoot)
  const pending = [root]
  for (let seen = 0; pending.length > 0; ) {
    const dir = pending.pop()!
    for (const name of await readdir(dir)) {
      if (name === '.git') continue // version control's, never imported
      const path = join(dir, name)
      if (++seen > MAX_TREE_ENTRIES) {
        throw new NgrokdError('NGROKD_ERR_PATH_UNTRUSTED', `refusing ${what} in ${root}: more than ${MAX_TREE_ENTRIES} files to check`, { hint: 'give the module a package (or folder) of its own' })
      }
      let st = await lstat(path)
      let real = path
      if (st.isSymbolicLink()) {
        const target = await assertTrustedPath(path, { what: `${what} file`, code: true, ...rule }).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? undefined : Promise.reject(e)))
        if (target === undefined) {
          await assertTrustedDanglingLink(path, st, `${what} file`, rule)
          continue
        }
        real = target
        st = await lstat(real)
      } else judgeEntry(path, st, `${what} file`, rule)
      if (st.isDirectory() && !walked.has(real)) {
        walked.add(real)
        pending.push(real)
      }
    }
  }
}

/** The package.json fields whose packages a module may import. */
const DEPENDENCY_FIELDS = ['dependencies', 'optionalDependencies', 'peerDependencies'] as const

/**
 * Each package `scope` declares in its package.json (dependencies, optional and peer), where Node's resolution
 * finds it (the nearest `node_modules` from `scope` up that holds it in any form: {@link installedPackage}), is judged whole by {@link assertTrustedTree}, and
 * so are the packages each of those declares, once each. ngrokd's own `@ngrokd/core` is never taken from there
 * (a module's import of it resolves to ngrokd's installation), unless `ownCore`: `scope` is ngrokd's installation.
 * A declared package that is not installed is left to the import, which names it. `judging.package`: the package being
 * judged, for a refusal to name.
 */
async function assertTrustedDependencies(scope: string, what: string, rule: TrustRule = {}, { ownCore = false, walked = new Set<string>(), judging = { package: scope } }: { ownCore?: boolean; walked?: Set<string>; judging?: { package: string } } = {}): Promise<void> {
  const judged = new Set<string>([await realpath(scope)])
  const pending = [scope]
  while (pending.length > 0) {
    const dir = pending.pop()!
    let pkg: Partial<Record<(typeof DEPENDENCY_FIELDS)[number], Record<string, string>>>
    try {
      pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as typeof pkg
    } catch {
      continue // a folder without a package.json declares nothing
    }
    const names = new Set(DEPENDENCY_FIELDS.flatMap((f) => Object.keys(pkg[f] ?? {})))
    if (!ownCore) names.delete('@ngrokd/core') // resolved to ngrokd's own installation (resolveCoreFromOwnInstallation)
    for (const name of names) {
      const dependency = `package ${name} that the ${what} depends on`
      const { found, passed } = installedPackage(name, dir)
      judging.package = dir
      if (found.length === 0) assertNoOneElseCanInstall(name, dir, dependency, rule)
      for (const path of passed) {
        judging.package = path
        // what Node passes over today must not be another user's to make loadable tomorrow
        const st = lstatSync(path)
        if (st.isSymbolicLink() && !statSync(path, { throwIfNoEntry: false })) await assertTrustedDanglingLink(path, st, dependency, rule)
        else await assertTrustedPath(path, { what: dependency, code: true, ...rule })
      }
      for (const path of found) {
        judging.package = path
        const real = await assertTrustedPath(path, { what: dependency, code: true, ...rule })
        if (judged.has(real)) continue
        judged.add(real)
        if (!statSync(real).isDirectory()) continue // a lone file: judged above
        judging.package = real
        await assertTrustedTree(real, dependency, rule, walked)
        pending.push(real)
      }
    }
  }
}

/**
 * Where Node finds package `name` from `fromDir`: the nearest `node_modules` that holds it in a form Node loads
 * (require's LOAD_AS_FILE and LOAD_AS_DIRECTORY: `<name>`, `<name>.js`, `.json`, `.node`, a folder with a package.json
 * or an index file), every such entry there (`found`). An entry Node would pass over on its way up (a link to nothing
 * yet, a folder without either) is in `passed`: it could become loadable, so it is judged too.
 */
function installedPackage(name: string, fromDir: string): { found: string[]; passed: string[] } {
  const passed: string[] = []
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const base = join(dir, 'node_modules', name)
    const found: string[] = []
    for (const path of ['', '.js', '.json', '.node', '.cjs', '.mjs'].map((ext) => base + ext)) {
      if (!lstatSync(path, { throwIfNoEntry: false })) continue
      const st = statSync(path, { throwIfNoEntry: false }) // follows a link
      if (st?.isFile() || (st?.isDirectory() && ['package.json', 'index.js', 'index.json', 'index.node'].some((f) => existsSync(join(path, f))))) found.push(path)
      else passed.push(path)
    }
    if (found.length > 0 || dirname(dir) === dir) return { found, passed }
  }
}

/**
 * A declared package that is not installed is imported, if ever, from wherever it appears later on Node's way up: no
 * folder on that way may let another user put it there (a `node_modules` others may write, or a folder others may
 * write in — a sticky /tmp included, where anyone may create one), or what they put would run as root. POSIX modes.
 */
function assertNoOneElseCanInstall(name: string, fromDir: string, what: string, rule: TrustRule): void {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const modules = join(dir, 'node_modules')
    // where `node_modules/<name>` (or its `@scope` folder) would be made: the deepest of them that exists
    const place = [join(modules, name.split('/')[0]!), modules, dir].find((p) => statSync(p, { throwIfNoEntry: false })?.isDirectory())!
    if (othersMayAddTo(place, rule)) {
      throw new NgrokdError('NGROKD_ERR_PATH_UNTRUSTED', `refusing the ${what}: it is not installed, and ${place} lets another user put it there, which the module would then import as root`, {
        hint: `install ${name} beside the module (npm install in ${fromDir}), or remove it from its package.json`,
      })
    }
    if (dirname(dir) === dir) return
  }
}

/** A link whose target is not there (yet): its owner, and the nearest folder above the target that exists, by the rule of assertTrustedPath. */
async function assertTrustedDanglingLink(link: string, st: Stats, what: string, rule: TrustRule = {}): Promise<void> {
  const uid = rule.uid ?? process.getuid?.() ?? 0
  if (st.uid !== 0 && st.uid !== uid) {
    throw new NgrokdError('NGROKD_ERR_PATH_UNTRUSTED', `refusing ${what} ${link}: the link is owned by uid ${st.uid}; as root ngrokd uses only files that root alone can change`, { hint: `chown -h root ${link}, or remove it` })
  }
  for (let dir = dirname(resolve(dirname(link), await readlink(link))); ; dir = dirname(dir)) {
    try {
      await assertTrustedPath(dir, { what: `the folder ${what} ${link} leads into`, code: true, ...rule })
      return
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(dir) === dir) throw e
    }
  }
}

/** The file a third-party specifier names: a path (relative to `configDir`), or a package next to the config, then beside ngrokd. */
export function resolveSpecifier(specifier: string, configDir: string): string {
  const fromConfig = join(configDir, 'noop.js')
  if (isPathSpec(specifier)) {
    try {
      return createRequire(fromConfig).resolve(specifier)
    } catch (e) {
      // a package's folder whose entry is in `exports` only (no `main`): the entry its package.json names
      const entry = importOnlyEntryOf(resolve(configDir, specifier))
      if (entry) return entry
      throw e
    }
  }
  try {
    return resolveFrom(specifier, fromConfig)
  } catch {
    return resolveFrom(specifier, OWN_LOCATION)
  }
}

/** `require.resolve` from `from`, or a package's import-only entry. */
function resolveFrom(specifier: string, from: string): string {
  // require.resolve('dns') answers Node's own module: never a driver or plugin
  if (isBuiltin(specifier)) throw Object.assign(new Error(`${specifier} is a module of Node itself`), { code: 'MODULE_NOT_FOUND' })
  try {
    return createRequire(from).resolve(specifier)
  } catch (e) {
    const importOnly = importOnlyEntry(specifier, dirname(from))
    if (importOnly) return importOnly
    throw e
  }
}

/**
 * require.resolve() only sees a package's `require`/`default` export conditions. A module that
 * publishes only `import` is still found: walk up node_modules and read its `exports` ourselves.
 */
function importOnlyEntry(name: string, fromDir: string): string | undefined {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const pkgDir = join(dir, 'node_modules', name)
    if (existsSync(join(pkgDir, 'package.json'))) return importOnlyEntryOf(pkgDir)
    if (dirname(dir) === dir) return undefined
  }
}

/** The `import` (or `node`) entry of `exports["."]` of the package in `pkgDir`; undefined when it has none. */
function importOnlyEntryOf(pkgDir: string): string | undefined {
  try {
    const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { exports?: unknown; main?: string }
    const root = typeof pkg.exports === 'object' && pkg.exports !== null && '.' in pkg.exports ? (pkg.exports as Record<string, unknown>)['.'] : pkg.exports
    const entry = typeof root === 'string' ? root : typeof root === 'object' && root !== null ? ((root as Record<string, unknown>).import ?? (root as Record<string, unknown>).default ?? (root as Record<string, unknown>).node) : undefined
    return typeof entry === 'string' ? join(pkgDir, entry) : undefined
  } catch {
    return undefined // no package.json there, or not JSON
  }
}
