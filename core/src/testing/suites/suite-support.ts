import { mkdtemp, mkdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { TestFramework, type TestBody } from '../test-framework.js'

/**
 * Registers one check, or shows it as skipped (`it.skip`) when the runner has that. Only checks a
 * driver author opted out of (a capability the driver does not claim, e.g. `skip: { ipv6: true }`)
 * are skipped, and they are reported as skipped rather than silently left out.
 */
export function check(name: string, skipped: boolean | undefined, body: TestBody): void {
  const it = TestFramework.it
  if (!skipped) it(name, body)
  else if (typeof it.skip === 'function') it.skip(name, body)
}

/**
 * One temporary folder per suite (made in `beforeAll`, removed in `afterAll`) and one fresh
 * sub-folder per test, so tests never see each other's state.
 */
export class SuiteTempDir {
  #root: string | undefined
  #count = 0
  constructor(private readonly prefix: string) {}

  registerHooks(): void {
    TestFramework.beforeAll(async () => {
      await this.root()
    })
    TestFramework.afterAll(async () => {
      if (this.#root) await rm(this.#root, { recursive: true, force: true })
      this.#root = undefined
    })
  }

  async root(): Promise<string> {
    this.#root ??= await mkdtemp(join(tmpdir(), `${this.prefix}-`))
    return this.#root
  }

  /** A new empty folder inside the suite's folder. */
  async fresh(): Promise<string> {
    const dir = join(await this.root(), `t${++this.#count}`)
    await mkdir(dir, { recursive: true })
    return dir
  }
}

/** Runs `body` with things to clean up afterwards, whatever happens; cleanup errors are ignored. */
export async function withCleanup<T>(body: (defer: (fn: () => unknown) => void) => Promise<T>): Promise<T> {
  const stack: Array<() => unknown> = []
  try {
    return await body((fn) => stack.push(fn))
  } finally {
    for (const fn of stack.reverse()) {
      try {
        await fn()
      } catch {
        // cleanup is best effort: the test's own failure (if any) is what matters
      }
    }
  }
}
