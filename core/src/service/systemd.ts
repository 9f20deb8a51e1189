import { isAbsolute, join } from 'node:path'
import { NgrokdError } from '../errors/ngrokd-error.js'
import { checkServiceInstance } from './instance-name.js'

/**
 * The systemd service of ngrokd on Linux: the unit file and the systemctl commands that install,
 * remove and inspect it, returned as data so that the CLI can run them or print them (`--dry-run`).
 *
 * - `Restart=on-failure`: a crash starts it again; a clean stop does not.
 * - `ExecReload` runs `ngrokd reload` (`systemctl reload ngrokd`), which waits for the daemon's answer: a config it
 *   refuses fails the reload job, with the reason in `systemctl status` (a bare SIGHUP would always succeed).
 * - `ExecStopPost=ngrokd cleanup`: after a stop that did not finish (killed at TimeoutStopSec, a
 *   crash), what the daemon left is removed; after a clean stop it finds nothing.
 * - Least privilege: root, but only CAP_NET_ADMIN (interface and addresses) and
 *   CAP_NET_BIND_SERVICE (endpoint ports below 1024) in the bounding set, no new privileges, a
 *   read-only system except the state dir, the hosts file (rewritten in place when its directory
 *   is read-only), the control socket's directory and /run/ngrokd.
 */

export const SYSTEMD_UNIT_DIR = '/etc/systemd/system'
export const DEFAULT_SYSTEMD_UNIT = 'ngrokd.service'
const SYSTEMCTL = 'systemctl'

export interface SystemdServiceOptions {
  /** Absolute path of the node binary. */
  nodePath: string
  /** Absolute path of the ngrokd CLI script. */
  cliPath: string
  /** Absolute path of the configuration file; none: the service runs `ngrokd run` as a root shell would, on the defaults and /etc/ngrokd/config.yml once it exists. */
  configPath?: string
  /** Written by the daemon: `state_dir`, the hosts file, the control socket's directory (absolute). */
  writablePaths: string[]
  /** Seconds systemd waits after SIGTERM: `forwarder.drain_timeout` plus room to clean up. */
  stopTimeoutSeconds: number
  /** Default `/etc/systemd/system`. */
  unitDir?: string
  /** A named instance: unit `ngrokd-NAME.service`, running `ngrokd … --instance NAME`. */
  instance?: string
  /** `control.group` is set: the daemon gives its socket to that group, which needs CAP_CHOWN. */
  controlGroup?: boolean
  /** `NGROKD_*` variables the install ran with: the service gets them too (`Environment=`), or its config differs. */
  environment?: Record<string, string>
}

/** A program and its arguments, run without a shell. */
export type ServiceCommand = readonly string[]

export interface SystemdService {
  unitPath: string
  unit: string
  /** After writing `unitPath` (root, 0644): load it, enable it at boot and (re)start it now, on the unit just written. */
  install: ServiceCommand[]
  /** Stop and disable it (its ExecStopPost cleans up); then delete `unitPath` and reload systemd. */
  uninstall: ServiceCommand[]
  afterUninstall: ServiceCommand[]
  status: ServiceCommand[]
}

/** The unit's file name: `ngrokd.service`, an instance's `ngrokd-NAME.service`. */
export function systemdUnitName(instance?: string): string {
  return instance ? `ngrokd-${instance}.service` : DEFAULT_SYSTEMD_UNIT
}

export function systemdService(options: SystemdServiceOptions): SystemdService {
  const { nodePath, cliPath, configPath, writablePaths, stopTimeoutSeconds, unitDir = SYSTEMD_UNIT_DIR, instance } = options
  checkServiceInstance('systemd', instance)
  for (const [key, value] of Object.entries({ nodePath, cliPath, ...(configPath === undefined ? {} : { configPath }), unitDir, ...Object.fromEntries(writablePaths.map((p, i) => [`writablePaths[${i}]`, p])) })) {
    if (typeof value !== 'string' || !isAbsolute(value) || /[\s"'\\$%;]/.test(value)) {
      throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `systemd: ${key} ${JSON.stringify(value)} is not an absolute path without spaces or quoting characters`, {
        hint: 'install ngrokd and its config under plain absolute paths',
      })
    }
  }
  if (!Number.isInteger(stopTimeoutSeconds) || stopTimeoutSeconds < 1) throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `systemd: stop timeout ${stopTimeoutSeconds} s`)
  const environment = Object.entries(options.environment ?? {})
  for (const [name, value] of environment) {
    // systemd.exec(5) Environment=: a word without quotes, escapes or specifiers (%) carries as written
    if (!/^NGROKD_[A-Z0-9_]+$/.test(name) || !/^[\w.,:/@+=\-\[\]{}]+$/.test(value)) {
      throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `systemd: ${name}=${JSON.stringify(value)} cannot be written into the unit as it is`, {
        hint: `put its setting in the config file and pass that with --config, then unset ${name}`,
      })
    }
  }
  const run = (...args: string[]) => [nodePath, cliPath, ...args, ...(configPath ? ['--config', configPath] : []), ...(instance ? ['--instance', instance] : [])].join(' ')
  const capabilities = `CAP_NET_ADMIN CAP_NET_BIND_SERVICE${options.controlGroup ? ' CAP_CHOWN' : ''}`
  const unit = [
    '[Unit]',
    `Description=ngrokd${instance ? ` (instance ${instance})` : ''}: ngrok's kubernetes-bound endpoints by hostname on this machine`,
    'Wants=network-online.target',
    'After=network-online.target',
    '',
    '[Service]',
    'Type=simple',
    ...environment.map(([name, value]) => `Environment=${name}=${value}`),
    `ExecStart=${run('run')}`,
    `ExecReload=${run('reload')}`,
    `ExecStopPost=${run('cleanup')}`,
    'Restart=on-failure',
    'RestartSec=2s',
    // the journal's tag (`journalctl -t ngrokd`); without it every line says `node`
    'SyslogIdentifier=' + (instance ? `ngrokd-${instance}` : 'ngrokd'),
    `TimeoutStopSec=${stopTimeoutSeconds}s`,
    `CapabilityBoundingSet=${capabilities}`,
    `AmbientCapabilities=${capabilities}`,
    'NoNewPrivileges=yes',
    'ProtectSystem=strict',
    // '-': a path that does not exist yet is skipped instead of failing the start
    `ReadWritePaths=${[...new Set(writablePaths)].map((p) => `-${p}`).join(' ')}`,
    // /run/ngrokd: the per-interface locks, made at each start
    'RuntimeDirectory=ngrokd',
    'RuntimeDirectoryMode=0755',
    // shared by every instance's unit: one stopping must not delete the others' locks
    'RuntimeDirectoryPreserve=yes',
    'ProtectHome=read-only',
    'PrivateTmp=yes',
    'ProtectKernelTunables=yes',
    'ProtectKernelModules=yes',
    'ProtectControlGroups=yes',
    'ProtectKernelLogs=yes',
    'ProtectClock=yes',
    'ProtectHostname=yes',
    'RestrictSUIDSGID=yes',
    'RestrictRealtime=yes',
    'SystemCallArchitectures=native',
    'LockPersonality=yes',
    'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n')
  const name = systemdUnitName(instance)
  return {
    unitPath: join(unitDir, name),
    unit,
    install: [
      [SYSTEMCTL, 'daemon-reload'],
      [SYSTEMCTL, 'enable', name],
      // a unit that already ran keeps its old command line until restarted: a second install applies at once
      [SYSTEMCTL, 'restart', name],
    ],
    uninstall: [[SYSTEMCTL, 'disable', '--now', name]],
    afterUninstall: [[SYSTEMCTL, 'daemon-reload']],
    status: [[SYSTEMCTL, 'status', '--no-pager', name]],
  }
}
