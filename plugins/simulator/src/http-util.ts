import type { IncomingMessage, ServerResponse } from 'node:http'
import { isIP } from 'node:net'

/** Request bodies larger than this are refused (the API's bodies are a few KiB). */
export const MAX_BODY_BYTES = 1 << 20

export class BodyError extends Error {
  override name = 'BodyError'
}

/** Reads a JSON body; an empty body is `{}`. Throws {@link BodyError}. */
export async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_BODY_BYTES) throw new BodyError(`request body exceeds ${MAX_BODY_BYTES} bytes`)
    chunks.push(chunk)
  }
  const text = Buffer.concat(chunks).toString('utf8')
  if (text.trim() === '') return {}
  try {
    return JSON.parse(text) as unknown
  } catch {
    throw new BodyError('request body is not valid JSON')
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const data = Buffer.from(JSON.stringify(body))
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': data.length, ...headers })
  res.end(data)
}

export function isLoopback(address: string | undefined): boolean {
  if (!address) return false
  const a = address.startsWith('::ffff:') ? address.slice(7) : address
  if (isIP(a) === 4) return a.startsWith('127.')
  return a === '::1'
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms).unref())
