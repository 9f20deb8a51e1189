import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, relative, sep } from 'node:path'
import type { DocSamples } from './doc-samples.js'
import { projectLockfile, type Lockfile, type TarballPackage } from './project-lockfile.js'
import { runNpm } from './run-npm.js'

/** The driver package the driver guide describes. */
export const SAMPLE_PACKAGE = 'ngrokd-driver-sample'

interface PackResult {
  filename: string
  integrity: string
  files: Array<{ path: string }>
}

/**
 * A stranger's setup, built in a temp folder outside the repository:
 *
 * ```
 * <root>/ngrokd-driver-sample/   the author's package (a driver, or a plugin), written from the guide's sample blocks
 * <root>/tarballs/               `npm pack` of the repository's built @ngrokd/core and of the author's package
 * <root>/project/                the user's folder: package.json, node_modules (npm ci --offline), config files
 * ```
 *
 * The project installs both packages from their tarballs, so the driver sees @ngrokd/core only through
 * what the core package publishes, as a copy of its own (not the repository's).
 */
export class SampleProject {
  readonly authorDir: string
  readonly tarballDir: string
  readonly dir: string
  /** Paths inside the author's tarball. */
  driverTarballFiles: string[] = []

  private constructor(
    readonly root: string,
    readonly packageName: string,
  ) {
    this.authorDir = join(root, packageName)
    this.tarballDir = join(root, 'tarballs')
    this.dir = join(root, 'project')
  }

  /** `packageName`: the guide's package whose `<packageName>/…` sample blocks are written, packed and installed. */
  static async create(samples: DocSamples, packageName = SAMPLE_PACKAGE): Promise<SampleProject> {
    const coreDir = dirname(createRequire(import.meta.url).resolve('@ngrokd/core/package.json'))
    const repoRoot = findUp(coreDir, 'package-lock.json')
    const project = new SampleProject(mkdtempSync(join(tmpdir(), 'ngrokd-third-party-')), packageName)
    if (!relative(repoRoot, project.root).startsWith('..')) throw new Error(`sample-project: ${project.root} is inside the repository ${repoRoot}`)
    try {
      await project.install(samples, coreDir, repoRoot)
      return project
    } catch (e) {
      project.dispose()
      throw e
    }
  }

  /** Writes `text` to `path` relative to the project folder (folders are made). */
  write(path: string, text: string): string {
    const file = join(this.dir, path)
    mkdirSync(dirname(file), { recursive: true })
    writeFileSync(file, text)
    return file
  }

  dispose(): void {
    if (process.env.NGROKD_E2E_KEEP === '1') {
      console.error(`# third-party: kept ${this.root}`)
      return
    }
    rmSync(this.root, { recursive: true, force: true })
  }

  private async install(samples: DocSamples, coreDir: string, repoRoot: string): Promise<void> {
    for (const name of samples.names) {
      if (!name.startsWith(`${this.packageName}/`)) continue
      const file = join(this.root, name)
      mkdirSync(dirname(file), { recursive: true })
      writeFileSync(file, samples.get(name))
    }
    mkdirSync(this.tarballDir, { recursive: true })
    mkdirSync(this.dir, { recursive: true })

    const [core, driver] = await Promise.all([this.pack(coreDir), this.pack(this.authorDir)])
    this.driverTarballFiles = driver.files.map((f) => f.path).sort()
    const registry = (await runNpm(['config', 'get', 'registry'], { cwd: this.dir })).trim().replace(/\/?$/, '/')

    const tarball = (packed: PackResult, manifestDir: string): TarballPackage => ({
      manifest: JSON.parse(readFileSync(join(manifestDir, 'package.json'), 'utf8')) as TarballPackage['manifest'],
      spec: `file:../tarballs/${packed.filename}`,
      integrity: packed.integrity,
    })
    const packages = [tarball(core, coreDir), tarball(driver, this.authorDir)]
    const name = 'ngrokd-sample-user'
    const rootLock = JSON.parse(readFileSync(join(repoRoot, 'package-lock.json'), 'utf8')) as Lockfile
    const workspace = { name: packages[0]!.manifest.name, path: relative(repoRoot, coreDir).split(sep).join('/') }
    const lock = projectLockfile({ name, rootLock, packages, workspace, registry })
    this.write('package.json', `${JSON.stringify({ name, private: true, dependencies: lock.packages['']!.dependencies }, null, 2)}\n`)
    this.write('package-lock.json', `${JSON.stringify(lock, null, 2)}\n`)
    // offline: the tests run in a namespace without a network; the repository's npm ci cached every tarball
    try {
      await runNpm(['ci', '--offline'], { cwd: this.dir })
    } catch (e) {
      if (!/ENOTCACHED/.test((e as Error).message)) throw e
      throw new Error(`${(e as Error).message}\nhint: npm's cache lacks a tarball of the repository's lockfile: run npm ci at the repository root (with the same npm cache) first`, { cause: e })
    }
  }

  private async pack(dir: string): Promise<PackResult> {
    const out = JSON.parse(await runNpm(['pack', dir, '--json', '--pack-destination', this.tarballDir], { cwd: this.tarballDir })) as PackResult[]
    if (out.length !== 1 || !out[0]!.filename) throw new Error(`npm pack ${dir}: unexpected output ${JSON.stringify(out).slice(0, 200)}`)
    return out[0]!
  }
}

function findUp(from: string, file: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, file))) return dir
    if (dirname(dir) === dir) throw new Error(`sample-project: no ${file} above ${from}`)
  }
}
