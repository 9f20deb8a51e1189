import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { findInstalled, projectLockfile, type Lockfile } from './project-lockfile.js'

const REGISTRY = 'https://registry.example/'

// A workspace repository: `core` needs a@^1 (hoisted), b (nested under core because the root holds
// another b), @s/c (scoped, with an optional peer that is not installed) and d, whose e is nested under d.
const rootLock: Lockfile = {
  lockfileVersion: 3,
  packages: {
    '': { name: 'repo', workspaces: ['core', 'other'] },
    core: { name: '@x/core', version: '1.0.0', dependencies: { a: '^1.0.0', b: '^2.0.0', '@s/c': '^3.0.0', d: '^1.0.0' } },
    'node_modules/@x/core': { resolved: 'core', link: true },
    'node_modules/a': { version: '1.2.0', integrity: 'sha512-a', dev: true, dependencies: { f: '^1.0.0' } },
    'node_modules/b': { version: '1.0.0', integrity: 'sha512-b1' },
    'core/node_modules/b': { version: '2.1.0', integrity: 'sha512-b2', dependencies: { f: '^1.0.0' } },
    'node_modules/@s/c': { version: '3.0.1', integrity: 'sha512-c', peerDependencies: { g: '*' }, peerDependenciesMeta: { g: { optional: true } } },
    'node_modules/d': { version: '1.0.0', resolved: 'https://mirror.example/d-1.0.0.tgz', integrity: 'sha512-d', dependencies: { e: '^2.0.0' } },
    'node_modules/d/node_modules/e': { version: '2.0.0', integrity: 'sha512-e2' },
    'node_modules/e': { version: '1.0.0', integrity: 'sha512-e1' },
    'node_modules/f': { version: '1.0.0', integrity: 'sha512-f' },
    'node_modules/unrelated': { version: '9.9.9', integrity: 'sha512-u' },
  },
}

const coreManifest = { name: '@x/core', version: '1.0.0', license: 'MIT', dependencies: { a: '^1.0.0', b: '^2.0.0', '@s/c': '^3.0.0', d: '^1.0.0' }, bin: { x: './dist/bin/x.js' } }
const driverManifest = { name: 'x-driver-y', version: '0.1.0', peerDependencies: { '@x/core': '^1.0.0' } }

describe('projectLockfile', () => {
  test('findInstalled walks node_modules folders outwards the way Node resolves', () => {
    const p = rootLock.packages
    assert.equal(findInstalled(p, 'core', 'b'), 'core/node_modules/b')
    assert.equal(findInstalled(p, 'core', 'a'), 'node_modules/a')
    assert.equal(findInstalled(p, 'core/node_modules/b', 'f'), 'node_modules/f')
    assert.equal(findInstalled(p, 'node_modules/d', 'e'), 'node_modules/d/node_modules/e')
    assert.equal(findInstalled(p, 'node_modules/@s/c', 'e'), 'node_modules/e')
    assert.equal(findInstalled(p, 'core', 'missing'), undefined)
  })

  test('pins exactly the workspace\'s dependency tree, moving workspace-nested entries under the package', () => {
    const lock = projectLockfile({
      name: 'user',
      rootLock,
      registry: REGISTRY,
      workspace: { name: '@x/core', path: 'core' },
      packages: [
        { manifest: coreManifest, spec: 'file:../t/x-core-1.0.0.tgz', integrity: 'sha512-core' },
        { manifest: driverManifest, spec: 'file:../t/x-driver-y-0.1.0.tgz', integrity: 'sha512-drv' },
      ],
    })
    assert.deepEqual(lock.packages['']!.dependencies, { '@x/core': 'file:../t/x-core-1.0.0.tgz', 'x-driver-y': 'file:../t/x-driver-y-0.1.0.tgz' })
    assert.deepEqual(Object.keys(lock.packages).sort(), [
      '',
      'node_modules/@s/c',
      'node_modules/@x/core',
      'node_modules/@x/core/node_modules/b',
      'node_modules/a',
      'node_modules/d',
      'node_modules/d/node_modules/e',
      'node_modules/f',
      'node_modules/x-driver-y',
    ])
    const core = lock.packages['node_modules/@x/core']!
    assert.equal(core.resolved, 'file:../t/x-core-1.0.0.tgz')
    assert.equal(core.integrity, 'sha512-core')
    assert.deepEqual(core.bin, { x: 'dist/bin/x.js' })
    assert.deepEqual(lock.packages['node_modules/x-driver-y']!.peerDependencies, { '@x/core': '^1.0.0' })
    assert.equal(lock.packages['node_modules/@x/core/node_modules/b']!.version, '2.1.0')
    // registry tarball URLs where the root lock omits them; kept where it has them
    assert.equal(lock.packages['node_modules/a']!.resolved, 'https://registry.example/a/-/a-1.2.0.tgz')
    assert.equal(lock.packages['node_modules/@s/c']!.resolved, 'https://registry.example/@s/c/-/c-3.0.1.tgz')
    assert.equal(lock.packages['node_modules/d']!.resolved, 'https://mirror.example/d-1.0.0.tgz')
    // the repository's dev flag means nothing in the project
    assert.equal(lock.packages['node_modules/a']!.dev, undefined)
  })

  test('a dependency missing from the root lock, or linked from the repository, is refused', () => {
    const options = { name: 'user', registry: REGISTRY, workspace: { name: '@x/core', path: 'core' } }
    const missing = { ...coreManifest, dependencies: { nowhere: '^1.0.0' } }
    assert.throws(() => projectLockfile({ ...options, rootLock, packages: [{ manifest: missing, spec: 'file:c.tgz', integrity: 'sha512-x' }] }), /nowhere .*not in the repository's lockfile/)
    const linked: Lockfile = { ...rootLock, packages: { ...rootLock.packages, 'node_modules/w': { resolved: 'other', link: true } } }
    const needsLink = { ...coreManifest, dependencies: { w: '*' } }
    assert.throws(() => projectLockfile({ ...options, rootLock: linked, packages: [{ manifest: needsLink, spec: 'file:c.tgz', integrity: 'sha512-x' }] }), /w is a workspace link/)
  })
})
