// The module hooks of module-log.ts: every resolved ES module's URL, appended to the log file.
import { appendFileSync } from 'node:fs'

let file = ''

export function initialize(data: { file: string }): void {
  file = data.file
}

type Resolve = (specifier: string, context: object) => Promise<{ url: string }>

export async function resolve(specifier: string, context: object, next: Resolve): Promise<{ url: string }> {
  const resolved = await next(specifier, context)
  appendFileSync(file, `${resolved.url}\n`)
  return resolved
}
