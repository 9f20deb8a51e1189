import { mkdtemp, mkdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import assert from 'node:assert/strict'
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

/** How long one call of the code under test may take before the kit fails it by name (a suite's `callTimeoutMs`). */
export const CALL_DEADLINE_MS = 30_000

/**
 * `promise`, or a rejection naming `call` when it has not settled within `ms`: a driver method that never settles
 * fails the check that called it, by name, instead of hanging the run (node:test has no default timeout).
 */
export function settleWithin<T>(promise: Promise<T>, call: string, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new assert.AssertionError({ message: `${call} did not settle within ${ms} ms: every call must resolve or reject` })), ms)
  })
  return Promise.race([promise, late]).finally(() => clearTimeout(timer))
}

/**
 * `target` with every method call that returns a promise bounded by {@link settleWithin} (`<what>.<method>()`). The
 * method runs on `target` itself, so a class's private fields still work.
 */
export function withDeadlines<T extends object>(target: T, what: string, ms: number): T {
  return new Proxy(target, {
    get(t, prop) {
      const value: unknown = Reflect.get(t, prop, t)
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => {
        const result: unknown = value.apply(t, args)
        return result instanceof Promise ? settleWithin(result, `${what}.${String(prop)}()`, ms) : result
      }
    },
  })
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
