/**
 * Whether this process is a systemd service's main process: systemd sets `INVOCATION_ID` for each service it starts
 * (systemd.exec(5)) and is its parent. The variable alone is inherited by whatever a service starts (a CI runner's
 * jobs), which no unit restarts.
 */
export function runsAsSystemdService(): boolean {
  return process.platform === 'linux' && Boolean(process.env.INVOCATION_ID) && process.ppid === 1
}
