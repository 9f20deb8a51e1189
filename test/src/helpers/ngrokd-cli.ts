import { spawn } from 'node:child_process'
import { E2eDaemon, NGROKD_PACKAGE_BIN } from './e2e-daemon.js'

export interface CliResult {
  /** The exit code; null when a signal ended it. */
  code: number | null
  stdout: string
  stderr: string
}

/** Safety net for one CLI command; the commands under test finish in seconds. */
const CLI_SAFETY_MS = 120_000

/**
 * Runs the CLI users install (the `ngrokd` package's bin) with `args`, `stdin` piped in and the
 * environment of {@link E2eDaemon.childEnv} (no NGROKD_* / NGROK_* of ours) plus `env`.
 */
export function ngrokdCli(args: readonly string[], options: { stdin?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [NGROKD_PACKAGE_BIN, ...args], { env: { ...E2eDaemon.childEnv(), ...options.env }, stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    const timer = setTimeout(() => child.kill('SIGKILL'), CLI_SAFETY_MS)
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
    child.stdin.end(options.stdin ?? '')
  })
}
