import { connect, type Socket } from 'node:net'
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { bulkByteAt } from '@ngrokd/plugin-simulator'

// Client side of the simulator's `bulk` backend line protocol (plugins/simulator/src/backends.ts):
//   `GET <n>\n`           → n bytes, byte i = bulkByteAt(i), then close
//   `PUT <n>\n` + n bytes → `<count> <sha256 hex>\n`, then close

const CHUNK = 1 << 20
/** Safety net per transfer; far above what 64 MiB over loopback takes. Not a performance bound. */
const SAFETY_TIMEOUT_MS = 120_000

function open(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, allowHalfOpen: true })
    socket.once('connect', () => {
      socket.off('error', reject)
      resolve(socket)
    })
    socket.once('error', reject)
  })
}

function readAll(socket: Socket, onChunk: (c: Buffer) => void, what: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`${what}: not finished within ${SAFETY_TIMEOUT_MS} ms`))
    }, SAFETY_TIMEOUT_MS)
    socket.on('data', onChunk)
    socket.once('end', () => {
      clearTimeout(timer)
      resolve()
    })
    socket.once('error', (e) => {
      clearTimeout(timer)
      reject(e)
    })
  })
}

/** Uploads `bytes` random bytes; returns our sha256 and what the backend says it received. */
export async function bulkPut(host: string, port: number, bytes: number): Promise<{ sentSha256: string; reply: string }> {
  const socket = await open(host, port)
  const replyChunks: Buffer[] = []
  const reading = readAll(socket, (c) => replyChunks.push(c), `PUT ${bytes} to ${host}:${port}`)
  reading.catch(() => {}) // awaited below
  const hash = createHash('sha256')
  socket.write(`PUT ${bytes}\n`)
  for (let sent = 0; sent < bytes; ) {
    const block = randomBytes(Math.min(CHUNK, bytes - sent))
    hash.update(block)
    sent += block.length
    if (!socket.write(block)) await Promise.race([once(socket, 'drain'), reading])
  }
  socket.end()
  try {
    await reading
  } finally {
    socket.destroy()
  }
  return { sentSha256: hash.digest('hex'), reply: Buffer.concat(replyChunks).toString('latin1').trim() }
}

/** Downloads `bytes`; returns the count and sha256 received and the sha256 the pattern should give. */
export async function bulkGet(host: string, port: number, bytes: number): Promise<{ receivedBytes: number; receivedSha256: string; expectedSha256: string }> {
  const socket = await open(host, port)
  const hash = createHash('sha256')
  let receivedBytes = 0
  const reading = readAll(
    socket,
    (c) => {
      hash.update(c)
      receivedBytes += c.length
    },
    `GET ${bytes} from ${host}:${port}`,
  )
  socket.end(`GET ${bytes}\n`)
  try {
    await reading
  } finally {
    socket.destroy()
  }
  return { receivedBytes, receivedSha256: hash.digest('hex'), expectedSha256: bulkPatternSha256(bytes) }
}

/** sha256 of the first `bytes` bytes of the bulk backend's pattern. */
export function bulkPatternSha256(bytes: number): string {
  const period = Buffer.from(Array.from({ length: 251 }, (_, i) => bulkByteAt(i)))
  const block = Buffer.concat(Array.from({ length: Math.ceil(CHUNK / 251) }, () => period)) // starts at a period boundary
  const whole = block.subarray(0, Math.floor(block.length / 251) * 251)
  const hash = createHash('sha256')
  let left = bytes
  while (left > 0) {
    const n = Math.min(whole.length, left)
    hash.update(whole.subarray(0, n))
    left -= n
  }
  return hash.digest('hex')
}
