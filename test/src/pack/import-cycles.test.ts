// The layout has no import cycle: between the folders of a package's sources (`core/src/forward` →
// `core/src/daemon` → `core/src/forward` would be one) or between packages. Product sources only:
// tests and `*.test-helper.ts` files are left out, the published kit (`testing/`) is in.
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { describe, it } from 'node:test'
import ts from 'typescript'
import { REPO_ROOT, workspaces } from '../helpers/workspaces.js'

interface Source {
  /** Path from the repository root. */
  file: string
  /** Folder node: `<package dir>/src/<first folder>`, or the file itself when it sits in `src/`. */
  folder: string
  packageName: string
  imports: string[]
}

function productSources(dir: string, packageName: string): Source[] {
  const out: Source[] = []
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name)
      if (statSync(p).isDirectory()) walk(p)
      else if (/\.[cm]?ts$/.test(name) && !/\.d\.[cm]?ts$|\.test\.[cm]?ts$|\.test-helper\.[cm]?ts$/.test(name)) {
        const file = relative(REPO_ROOT, p)
        const imports = ts.preProcessFile(readFileSync(p, 'utf8'), true, true).importedFiles.map((i) => i.fileName)
        out.push({ file, folder: folderOf(file), packageName, imports })
      }
    }
  }
  const src = join(REPO_ROOT, dir, 'src')
  if (statSync(src, { throwIfNoEntry: false })?.isDirectory()) walk(src)
  return out
}

function folderOf(file: string): string {
  const [pkg, rest] = file.replace(/\.[cm]?[jt]s$/, '').split('/src/') as [string, string]
  return `${pkg}/src/${rest.split('/')[0]}`
}

/** Strongly connected components of more than one node (Tarjan), each a cycle. */
function cycles(graph: Map<string, Set<string>>): string[][] {
  let next = 0
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const found: string[][] = []
  const visit = (v: string): void => {
    index.set(v, next)
    low.set(v, next++)
    stack.push(v)
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (stack.includes(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!))
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = []
      let w: string
      do {
        w = stack.pop()!
        component.push(w)
      } while (w !== v)
      if (component.length > 1) found.push(component.sort())
    }
  }
  for (const v of graph.keys()) if (!index.has(v)) visit(v)
  return found
}

/** Each edge of a cycle, with one file that makes it: `a -> b (file)`. */
function explain(cycle: string[], why: Map<string, string>): string {
  return [...why].filter(([edge]) => cycle.includes(edge.split(' -> ')[0]!) && cycle.includes(edge.split(' -> ')[1]!)).map(([edge, file]) => `  ${edge} (${file})`).join('\n')
}

const packages = workspaces().map((dir) => ({ dir, name: (JSON.parse(readFileSync(join(REPO_ROOT, dir, 'package.json'), 'utf8')) as { name: string }).name }))
const sources = packages.flatMap((p) => productSources(p.dir, p.name))
const names = new Set(packages.map((p) => p.name))

describe('no import cycle', () => {
  it('between the folders of each package', () => {
    const graph = new Map<string, Set<string>>()
    const why = new Map<string, string>()
    for (const s of sources) {
      for (const spec of s.imports) {
        if (!spec.startsWith('.')) continue
        const target = folderOf(relative(REPO_ROOT, resolve(REPO_ROOT, dirname(s.file), spec)))
        if (target === s.folder) continue
        graph.set(s.folder, (graph.get(s.folder) ?? new Set()).add(target))
        why.set(`${s.folder} -> ${target}`, s.file)
      }
    }
    assert.ok(graph.size > 10, `the folder graph was read (${graph.size} folders with imports)`)
    const found = cycles(graph)
    assert.deepEqual(found, [], found.map((c) => explain(c, why)).join('\n\n'))
  })

  it('between packages', () => {
    const graph = new Map<string, Set<string>>()
    const why = new Map<string, string>()
    for (const s of sources) {
      for (const spec of s.imports) {
        const target = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!
        if (!names.has(target) || target === s.packageName) continue
        graph.set(s.packageName, (graph.get(s.packageName) ?? new Set()).add(target))
        why.set(`${s.packageName} -> ${target}`, s.file)
      }
    }
    assert.ok(graph.get('@ngrokd/plugin-simulator')?.has('@ngrokd/core'), 'package imports were read')
    const found = cycles(graph)
    assert.deepEqual(found, [], found.map((c) => explain(c, why)).join('\n\n'))
  })

  it('finds a cycle when there is one', () => {
    const graph = new Map([
      ['a', new Set(['b'])],
      ['b', new Set(['c'])],
      ['c', new Set(['a'])],
      ['d', new Set(['a'])],
    ])
    assert.deepEqual(cycles(graph), [['a', 'b', 'c']])
  })
})
