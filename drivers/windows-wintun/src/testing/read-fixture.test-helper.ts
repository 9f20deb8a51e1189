import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export interface AbiFixture {
  compiler: string
  targets: Record<string, Record<string, number>>
  uncheckedPrototypes: string[]
  wine: { version: string; runtime: Record<string, string | number>; rows: string[] } | null
}

/** The package's folder (the one holding package.json), wherever the compiled test runs from. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json'))) {
    if (dirname(dir) === dir) throw new Error('package.json not found above the test')
    dir = dirname(dir)
  }
  return dir
}

/** probe/windows-abi.json. */
export function readAbiFixture(): AbiFixture {
  return JSON.parse(readFileSync(join(packageRoot(), 'probe', 'windows-abi.json'), 'utf8')) as AbiFixture
}
