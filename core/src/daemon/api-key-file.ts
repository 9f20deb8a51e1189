import { lstat, open } from 'node:fs/promises'
import { join } from 'node:path'
import { NgrokdError, isNgrokdError } from '../errors/ngrokd-error.js'
import { writeStateFile } from '../util/state-dir-guard.js'
import { assertTrustedPath, runsAsRoot } from '../util/trusted-path.js'
import { prepareStateDir, stateDirError } from './state-dir.js'

/** The file in `state_dir` that `set-api-key` writes (0600). */
export const API_KEY_FILE = 'api-key'

/** What an ngrok API key looks like: the dashboard's keys (base62 with `_`), and the simulator's test keys. */
const API_KEY_SHAPE = /^[A-Za-z0-9_-]{8,512}$/

/**
 * The key, trimmed, when it has the shape of an ngrok API key. `setKeyCommand`: how a key reaches the daemon meant, for
 * the hint (`ngrokd set-api-key --config FILE`, under sudo when its state is root's: daemonCommandLine); else said in general.
 * @throws NgrokdError `NGROKD_ERR_API_KEY_MALFORMED` saying what is wrong (never echoing the key).
 */
export function checkApiKey(key: unknown, from = 'the API key', setKeyCommand?: string): string {
  const text = typeof key === 'string' ? key.trim() : ''
  if (API_KEY_SHAPE.test(text)) return text
  const why =
    typeof key !== 'string' ? 'is not text'
    : text === '' ? 'is empty'
    : /\s/.test(text) ? 'contains whitespace (two keys, or a key with words around it?)'
    : text.length < 8 ? `is ${text.length} characters long, too short`
    : text.length > 512 ? `is ${text.length} characters long, too long`
    : 'contains characters other than letters, digits, _ and -'
  throw new NgrokdError('NGROKD_ERR_API_KEY_MALFORMED', `${from} ${why}: it does not look like an ngrok API key`, {
    hint: `copy an API key (not an agent authtoken) from https://dashboard.ngrok.com/api-keys and ${setKeyCommand ? `run: echo "$KEY" | ${setKeyCommand}` : 'give it with ngrokd set-api-key'}`,
  })
}

/** `state_dir/api-key`. */
export function apiKeyFilePath(stateDir: string): string {
  return join(stateDir, API_KEY_FILE)
}

/**
 * The key saved in `state_dir`, trimmed, or undefined when there is no file. Not checked for its
 * shape (callers say what a malformed one means). As root, the file must pass {@link assertTrustedPath}.
 * With `tighten` (the daemon), a file others may read (written by hand) is made 0600 as it is read, as the client
 * key is, but never through a link (a key kept in a secret store stays as that store made it); doctor, which
 * changes nothing, reports such a file instead.
 * @throws NgrokdError `NGROKD_ERR_STATE` when it is not a file, `NGROKD_ERR_PATH_UNTRUSTED`.
 */
export async function readApiKeyFile(stateDir: string, { tighten = false, onTightened }: { tighten?: boolean; /** Told the file's mode before it was made 0600. */ onTightened?: (path: string, mode: number) => void } = {}): Promise<string | undefined> {
  const named = apiKeyFilePath(stateDir)
  let path = named
  try {
    if (runsAsRoot()) path = await assertTrustedPath(path, { what: 'API key file' })
    const file = await open(path, 'r')
    try {
      const st = await file.stat()
      if (!st.isFile()) {
        throw notAKeyFile(named, st.isDirectory())
      }
      if (tighten && (st.mode & 0o077) !== 0 && process.platform !== 'win32' && !(await lstat(named)).isSymbolicLink()) {
        await file.chmod(0o600)
        onTightened?.(named, st.mode & 0o777)
      }
      const text = (await file.readFile('utf8')).trim()
      return text === '' ? undefined : text
    } finally {
      await file.close()
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw e
  }
}

/**
 * Checks the key's shape and saves it to `state_dir/api-key`, 0600, whole or not at all; creates
 * `state_dir` 0700. As root, `state_dir` must pass {@link assertTrustedPath}. Resolves with the file's path.
 * @throws NgrokdError `NGROKD_ERR_API_KEY_MALFORMED`, `NGROKD_ERR_PATH_UNTRUSTED`, `NGROKD_ERR_PERMISSION` or
 * `NGROKD_ERR_STATE` when `state_dir` cannot be made or written in (stateDirError).
 */
export async function saveApiKeyFile(stateDir: string, key: unknown): Promise<string> {
  const checked = checkApiKey(key)
  const path = apiKeyFilePath(await prepareStateDir(stateDir))
  // a state_dir that is there but not this user's to write in (root's, 0700) is said as one it cannot make
  await writeStateFile(path, `${checked}\n`).catch((e: unknown) =>
    Promise.reject(isNgrokdError(e) ? e : (e as NodeJS.ErrnoException).code === 'EISDIR' ? notAKeyFile(path, true, e) : stateDirError(stateDir, e)),
  )
  return path
}

/** `state_dir/api-key` that is a folder or a device: nothing ngrokd wrote. */
function notAKeyFile(path: string, isDirectory: boolean, cause?: unknown): NgrokdError {
  return new NgrokdError('NGROKD_ERR_STATE', `the API key file ${path} is ${isDirectory ? 'a directory' : 'not a regular file'}`, {
    hint: `remove it (rm -r ${path}), then give the key again: ngrokd set-api-key`,
    ...(cause ? { cause } : {}),
  })
}

/**
 * How long `set-api-key`'s check of a new key with the API may take (one attempt): `api.timeout`, at most 30 s, so that
 * the answer reaches the CLI well inside the control socket's 60 s idle limit (control-server.ts).
 */
export function apiKeyCheckTimeoutMs(apiTimeoutMs: number): number {
  return Math.min(apiTimeoutMs, 30_000)
}

