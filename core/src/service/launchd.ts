import { isAbsolute, join } from 'node:path'
import { NgrokdError } from '../errors/ngrokd-error.js'
import { checkServiceInstance } from './instance-name.js'

/**
 * The launchd job of ngrokd on macOS: the property list for /Library/LaunchDaemons and the
 * launchctl commands that install, remove and inspect it, returned as data so that a CLI can run
 * them or print them (`--dry-run`).
 *
 * Cleanup after stop. launchd has no ExecStopPost, and a wrapper (`sh -c 'ngrokd run; ngrokd
 * cleanup'`) would stand between launchd and ngrokd: launchd's SIGTERM would reach the shell, not
 * ngrokd, and launchd would watch the shell's exit status. So ngrokd is the job itself, and:
 * - a stop (`launchctl bootout`, shutdown) sends SIGTERM, on which `ngrokd run` drains and removes
 *   every listener, hosts line and address it made; ExitTimeOut gives it `forwarder.drain_timeout` and room to
 *   clean up before SIGKILL;
 * - after a crash or SIGKILL, KeepAlive starts it again and the new run adopts or removes what the
 *   old one left (on macOS the utun vanishes by itself; the hosts block and lo0 aliases stay);
 * - `uninstall` runs `ngrokd cleanup` after `launchctl bootout`, for what a killed last run left.
 */

/** Reverse-DNS job label; also the plist's file name. */
export const DEFAULT_LAUNCHD_LABEL = 'com.ngrok.ngrokd'
export const LAUNCH_DAEMONS_DIR = '/Library/LaunchDaemons'
export const DEFAULT_LAUNCHD_LOG = '/var/log/ngrokd.log'
const LAUNCHCTL = '/bin/launchctl'

export interface LaunchdServiceOptions {
  /** Absolute path of the node binary (launchd runs no shell and searches no PATH). */
  nodePath: string
  /** Absolute path of the ngrokd CLI script. */
  cliPath: string
  /** Absolute path of the configuration file `ngrokd run --config` reads; none: the defaults and /etc/ngrokd/config.yml once it exists. */
  configPath?: string
  /** A named instance: the job runs `ngrokd … --instance NAME`, labelled `com.ngrok.ngrokd.NAME`, its log `/var/log/ngrokd-NAME.log`. */
  instance?: string
  /** Default `com.ngrok.ngrokd` (an instance's: `com.ngrok.ngrokd.NAME`). */
  label?: string
  /** Where stdout and stderr go; default `/var/log/ngrokd.log` (an instance's: `/var/log/ngrokd-NAME.log`). */
  logPath?: string
  /** Default `/Library/LaunchDaemons`. */
  launchDaemonsDir?: string
  /** Seconds launchd waits after SIGTERM before SIGKILL (its default is 20): `forwarder.drain_timeout` plus room to clean up. */
  exitTimeoutSeconds: number
  /** `NGROKD_*` variables the install ran with: the job gets them too (EnvironmentVariables), or its config differs. */
  environment?: Record<string, string>
}

/** A program and its arguments, run without a shell. */
export type Command = readonly string[]

export interface LaunchdService {
  label: string
  /** Where the plist goes (root:wheel, 0644). */
  plistPath: string
  /** The plist text. */
  plist: string
  /** Before writing `plistPath`, their failure ignored: unload a job installed before (bootstrap refuses a loaded one). */
  unloadFirst: Command[]
  /** After writing `plistPath`: allow the job (a past `launchctl disable` would block it) and load it, which starts it (RunAtLoad). */
  install: Command[]
  /** Stop and unload the job, then clean up what a killed last run left; then delete `plistPath`. */
  uninstall: Command[]
  /** Prints the job's state (pid, last exit status). */
  status: Command[]
}

/**
 * ```ts
 * const service = launchdService({ nodePath: process.execPath, cliPath: '/usr/local/lib/node_modules/ngrokd/bin/ngrokd.js', configPath: '/etc/ngrokd/config.yml', exitTimeoutSeconds: 45 })
 * // run service.unloadFirst (failures are fine), write service.plist to service.plistPath, then run each of service.install
 * ```
 */
/** The job's label: `com.ngrok.ngrokd`, an instance's `com.ngrok.ngrokd.NAME`. */
export function launchdLabel(instance?: string): string {
  return instance ? `${DEFAULT_LAUNCHD_LABEL}.${instance}` : DEFAULT_LAUNCHD_LABEL
}

export function launchdService(options: LaunchdServiceOptions): LaunchdService {
  const { nodePath, cliPath, configPath, instance, launchDaemonsDir = LAUNCH_DAEMONS_DIR, exitTimeoutSeconds, environment = {} } = options
  checkServiceInstance('launchd', instance)
  const label = options.label ?? launchdLabel(instance)
  const logPath = options.logPath ?? (instance ? DEFAULT_LAUNCHD_LOG.replace(/\.log$/, `-${instance}.log`) : DEFAULT_LAUNCHD_LOG)
  const config = [...(configPath ? ['--config', configPath] : []), ...(instance ? ['--instance', instance] : [])]
  for (const [key, value] of Object.entries({ nodePath, cliPath, ...(configPath === undefined ? {} : { configPath }), logPath, launchDaemonsDir })) {
    if (typeof value !== 'string' || !isAbsolute(value)) {
      throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `launchd: ${key} ${JSON.stringify(value)} is not an absolute path`, { hint: 'launchd runs the job without a shell or PATH: give absolute paths' })
    }
  }
  if (!/^[A-Za-z0-9][A-Za-z0-9.-]*$/.test(label)) {
    throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `launchd: label ${JSON.stringify(label)} is not a reverse-DNS name`, { hint: `e.g. ${DEFAULT_LAUNCHD_LABEL}` })
  }
  if (!Number.isInteger(exitTimeoutSeconds) || exitTimeoutSeconds < 1) throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `launchd: exit timeout ${exitTimeoutSeconds} s`)
  const plistPath = join(launchDaemonsDir, `${label}.plist`)
  const plist = renderPlist({
    Label: label,
    ProgramArguments: [nodePath, cliPath, 'run', ...config],
    RunAtLoad: true,
    KeepAlive: { SuccessfulExit: false }, // start it again when it exits with an error, not after a clean stop
    ExitTimeOut: exitTimeoutSeconds,
    ...(Object.keys(environment).length ? { EnvironmentVariables: environment } : {}),
    StandardOutPath: logPath,
    StandardErrorPath: logPath,
  })
  return {
    label,
    plistPath,
    plist,
    unloadFirst: [[LAUNCHCTL, 'bootout', `system/${label}`]],
    install: [
      [LAUNCHCTL, 'enable', `system/${label}`],
      [LAUNCHCTL, 'bootstrap', 'system', plistPath],
    ],
    uninstall: [
      [LAUNCHCTL, 'bootout', `system/${label}`],
      [nodePath, cliPath, 'cleanup', ...config],
    ],
    status: [[LAUNCHCTL, 'print', `system/${label}`]],
  }
}

type PlistValue = string | number | boolean | PlistValue[] | { [key: string]: PlistValue }

/** An XML property list (the format of /Library/LaunchDaemons, `plutil -lint` clean) of the value types launchd.plist(5) uses here. */
export function renderPlist(root: { [key: string]: PlistValue }): string {
  const lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">', '<plist version="1.0">']
  const emit = (value: PlistValue, indent: string): void => {
    if (typeof value === 'string') lines.push(`${indent}<string>${escapeXml(value)}</string>`)
    else if (typeof value === 'boolean') lines.push(`${indent}<${value}/>`)
    else if (typeof value === 'number') {
      if (!Number.isSafeInteger(value)) throw new RangeError(`plist: ${value} is not an integer`)
      lines.push(`${indent}<integer>${value}</integer>`)
    } else if (Array.isArray(value)) {
      lines.push(`${indent}<array>`)
      for (const item of value) emit(item, `${indent}\t`)
      lines.push(`${indent}</array>`)
    } else {
      lines.push(`${indent}<dict>`)
      for (const [key, item] of Object.entries(value)) {
        lines.push(`${indent}\t<key>${escapeXml(key)}</key>`)
        emit(item, `${indent}\t`)
      }
      lines.push(`${indent}</dict>`)
    }
  }
  emit(root, '')
  lines.push('</plist>')
  return `${lines.join('\n')}\n`
}

function escapeXml(text: string): string {
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.test(text)) throw new RangeError(`plist: ${JSON.stringify(text)} holds a control character XML cannot carry`)
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}
