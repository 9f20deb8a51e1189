/** A `package-lock.json` (lockfileVersion 3) as far as this file reads and writes it. */
export interface Lockfile {
  name?: string
  lockfileVersion: number
  requires?: boolean
  packages: Record<string, LockEntry>
}

export interface LockEntry {
  name?: string
  version?: string
  resolved?: string
  integrity?: string
  link?: boolean
  dependencies?: Record<string, string>
  optionalDependencies?: Record<string, string>
  peerDependencies?: Record<string, string>
  peerDependenciesMeta?: Record<string, { optional?: boolean }>
  [key: string]: unknown
}

/** A package installed from a local tarball. */
export interface TarballPackage {
  /** `package.json` of the packed package. */
  manifest: { name: string; version: string; license?: string; dependencies?: Record<string, string>; peerDependencies?: Record<string, string>; bin?: string | Record<string, string>; engines?: Record<string, string> }
  /** The dependency spec as written in the project's package.json, e.g. `file:../tarballs/x-1.0.0.tgz`. */
  spec: string
  /** `integrity` from `npm pack --json`. */
  integrity: string
}

export interface ProjectLockfileOptions {
  /** Name of the project's package.json. */
  name: string
  /** The repository's lockfile, which pinned and installed every dependency of `workspacePath`. */
  rootLock: Lockfile
  /** The tarball packages the project depends on. */
  packages: readonly TarballPackage[]
  /** Which tarball is the repository's workspace at `workspacePath` (its dependencies are copied from `rootLock`). */
  workspace: { name: string; path: string }
  /** Registry base URL ending in `/`, for entries the root lock stores without `resolved`. */
  registry: string
}

/**
 * The lockfile of a fresh project that installs `packages` from tarballs, with the workspace's
 * dependencies pinned to exactly the versions the repository's lockfile installed. With it,
 * `npm ci --offline` needs only the tarballs npm's cache already holds from the repository's own
 * `npm ci` — no registry metadata, which a plain `npm install --offline` would need.
 *
 * Dependencies are found the way Node finds them: `<from>/node_modules/<dep>`, then in each parent
 * `node_modules`. Entries under the workspace folder move under `node_modules/<workspace name>/`.
 */
export function projectLockfile({ name, rootLock, packages, workspace, registry }: ProjectLockfileOptions): Lockfile {
  const root = rootLock.packages
  const out: Record<string, LockEntry> = {}
  const prefix = `${workspace.path}/`

  const visit = (from: string, deps: Record<string, string>): void => {
    for (const dep of Object.keys(deps)) {
      const at = findInstalled(root, from, dep)
      if (at === undefined) throw new Error(`project-lockfile: ${dep} (needed by ${from || 'the root'}) is not in the repository's lockfile`)
      const entry = root[at]!
      if (entry.link) throw new Error(`project-lockfile: ${dep} is a workspace link in the repository; it cannot be installed from the registry`)
      const dest = at.startsWith(prefix) ? `node_modules/${workspace.name}/${at.slice(prefix.length)}` : at
      if (out[dest]) continue
      const { dev: _dev, devOptional: _devOptional, peer: _peer, extraneous: _extraneous, ...kept } = entry
      out[dest] = { ...kept, resolved: entry.resolved ?? tarballUrl(registry, entry.name ?? packageNameOf(at), entry.version!) }
      visit(at, { ...entry.dependencies, ...entry.optionalDependencies, ...requiredPeers(entry) })
    }
  }

  const rootEntry: LockEntry = { name, dependencies: {} }
  const tarballs: Record<string, LockEntry> = {}
  for (const { manifest, spec, integrity } of packages) {
    rootEntry.dependencies![manifest.name] = spec
    tarballs[`node_modules/${manifest.name}`] = {
      version: manifest.version,
      resolved: spec,
      integrity,
      ...(manifest.license ? { license: manifest.license } : {}),
      ...(manifest.dependencies ? { dependencies: manifest.dependencies } : {}),
      ...(manifest.peerDependencies ? { peerDependencies: manifest.peerDependencies } : {}),
      ...(manifest.bin ? { bin: normaliseBin(manifest.name, manifest.bin) } : {}),
      ...(manifest.engines ? { engines: manifest.engines } : {}),
    }
    if (manifest.name === workspace.name) visit(workspace.path, manifest.dependencies ?? {})
  }
  return { name, lockfileVersion: 3, requires: true, packages: { '': rootEntry, ...tarballs, ...out } }
}

/** The lock path Node would load `dep` from when required by the package at lock path `from`. */
export function findInstalled(packages: Record<string, LockEntry>, from: string, dep: string): string | undefined {
  for (let dir = from; ; ) {
    const candidate = dir ? `${dir}/node_modules/${dep}` : `node_modules/${dep}`
    if (packages[candidate]) return candidate
    if (!dir) return undefined
    const nested = dir.lastIndexOf('/node_modules/')
    dir = nested >= 0 ? dir.slice(0, nested) : dir.startsWith('node_modules/') ? '' : parentOf(dir)
  }
}

function parentOf(dir: string): string {
  const slash = dir.lastIndexOf('/')
  return slash >= 0 ? dir.slice(0, slash) : ''
}

function packageNameOf(lockPath: string): string {
  return lockPath.slice(lockPath.lastIndexOf('node_modules/') + 'node_modules/'.length)
}

/** npm's registry layout: `<registry><name>/-/<name without scope>-<version>.tgz`. */
function tarballUrl(registry: string, name: string, version: string): string {
  return `${registry}${name}/-/${name.slice(name.indexOf('/') + 1)}-${version}.tgz`
}

function requiredPeers(entry: LockEntry): Record<string, string> {
  const peers = { ...entry.peerDependencies }
  for (const [peer, meta] of Object.entries(entry.peerDependenciesMeta ?? {})) if (meta.optional) delete peers[peer]
  return peers
}

function normaliseBin(name: string, bin: string | Record<string, string>): Record<string, string> {
  const map = typeof bin === 'string' ? { [name.slice(name.indexOf('/') + 1)]: bin } : bin
  return Object.fromEntries(Object.entries(map).map(([k, v]) => [k, v.replace(/^\.\//, '')]))
}
