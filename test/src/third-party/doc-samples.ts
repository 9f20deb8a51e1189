import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/** The driver guide; this file sits at the same depth in src/ and dist/. */
export const DRIVER_GUIDE = fileURLToPath(new URL('../../../docs/writing-a-driver.md', import.meta.url))
/** The plugin guide. */
export const PLUGIN_GUIDE = fileURLToPath(new URL('../../../docs/writing-a-plugin.md', import.meta.url))

/** `<!-- sample: NAME -->` on the line right before a fenced code block names that block. */
const SAMPLE = /^<!-- sample: (\S+) -->\r?\n(`{3,})[^\n]*\n([\s\S]*?)^\2[ \t]*$/gm

/**
 * The code blocks of the driver guide that the tests build and run, so the guide cannot drift from
 * what works. Read from the guide at test time, never copied.
 *
 * ```ts
 * const samples = DocSamples.read()
 * writeFileSync('index.js', samples.get('ngrokd-driver-sample/index.js'))
 * ```
 */
export class DocSamples {
  private constructor(
    readonly path: string,
    private readonly blocks: ReadonlyMap<string, string>,
  ) {}

  static read(path: string = DRIVER_GUIDE): DocSamples {
    const text = readFileSync(path, 'utf8')
    const blocks = new Map<string, string>()
    for (const m of text.matchAll(SAMPLE)) {
      if (blocks.has(m[1]!)) throw new Error(`${path}: sample ${m[1]} appears twice`)
      blocks.set(m[1]!, m[3]!)
    }
    return new DocSamples(path, blocks)
  }

  get names(): string[] {
    return [...this.blocks.keys()]
  }

  /** The block's text; throws when the guide has no such sample. */
  get(name: string): string {
    const block = this.blocks.get(name)
    if (block === undefined) throw new Error(`${this.path} has no block marked <!-- sample: ${name} --> (has: ${this.names.join(', ')})`)
    return block
  }

  /** The block with each `[from, to]` applied; each `from` must occur exactly once, so a variant cannot silently stop differing. */
  variant(name: string, ...edits: Array<[from: string, to: string]>): string {
    let text = this.get(name)
    for (const [from, to] of edits) {
      const count = text.split(from).length - 1
      if (count !== 1) throw new Error(`sample ${name}: ${JSON.stringify(from)} occurs ${count} times; a variant needs it exactly once`)
      text = text.replace(from, () => to)
    }
    return text
  }
}
