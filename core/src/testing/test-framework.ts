/** A test body or hook as the kit registers it. */
export type TestBody = () => Promise<void>

/** `describe(name, fn)`: node:test, vitest, jest and mocha all accept this call shape. */
export type DescribeFunction = (name: string, fn: () => void) => unknown

/** `it(name, fn)`; `it.skip(name, fn)` is used when present to show skipped checks. */
export type ItFunction = ((name: string, fn: TestBody) => unknown) & { skip?: (name: string, fn: TestBody) => unknown }

/** `beforeAll(fn)` / `afterAll(fn)` (node:test calls them `before` / `after`). */
export type HookFunction = (fn: TestBody) => unknown

export interface TestFrameworkHooks {
  describe: DescribeFunction
  it: ItFunction
  beforeAll: HookFunction
  afterAll: HookFunction
}

type HookName = keyof TestFrameworkHooks

// Globals searched when nothing was set: vitest/jest (with globals) name them beforeAll/afterAll,
// mocha names them before/after.
const GLOBAL_NAMES: Record<HookName, readonly string[]> = {
  describe: ['describe'],
  it: ['it'],
  beforeAll: ['beforeAll', 'before'],
  afterAll: ['afterAll', 'after'],
}

/**
 * The test functions the conformance suites register with, so the kit runs under any runner
 * (typescript-eslint's `RuleTester` hooks). Each defaults to the global of the same name.
 *
 * ```ts
 * // node:test has no globals: set them once per test file.
 * import { describe, it, before, after } from 'node:test'
 * TestFramework.use({ describe, it, beforeAll: before, afterAll: after })
 * ```
 */
export class TestFramework {
  static #set: Partial<TestFrameworkHooks> = {}

  static get describe(): DescribeFunction {
    return TestFramework.#get('describe')
  }
  static set describe(fn: DescribeFunction) {
    TestFramework.#set.describe = fn
  }
  static get it(): ItFunction {
    return TestFramework.#get('it')
  }
  static set it(fn: ItFunction) {
    TestFramework.#set.it = fn
  }
  static get beforeAll(): HookFunction {
    return TestFramework.#get('beforeAll')
  }
  static set beforeAll(fn: HookFunction) {
    TestFramework.#set.beforeAll = fn
  }
  static get afterAll(): HookFunction {
    return TestFramework.#get('afterAll')
  }
  static set afterAll(fn: HookFunction) {
    TestFramework.#set.afterAll = fn
  }

  /** Sets any of the four at once. */
  static use(hooks: Partial<TestFrameworkHooks>): void {
    for (const name of Object.keys(GLOBAL_NAMES) as HookName[]) {
      if (hooks[name] !== undefined) (TestFramework.#set as Record<HookName, unknown>)[name] = hooks[name]
    }
  }

  /** Forgets what was set; the globals apply again. */
  static reset(): void {
    TestFramework.#set = {}
  }

  static #get<K extends HookName>(name: K): TestFrameworkHooks[K] {
    const own = TestFramework.#set[name]
    if (own !== undefined) return own as TestFrameworkHooks[K]
    const globals = globalThis as Record<string, unknown>
    for (const globalName of GLOBAL_NAMES[name]) {
      if (typeof globals[globalName] === 'function') return globals[globalName] as TestFrameworkHooks[K]
    }
    throw new Error(`Missing definition for \`${name}\` – set \`TestFramework.${name}\` or define it globally`)
  }
}
