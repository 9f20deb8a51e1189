import { NgrokdError } from '../errors/ngrokd-error.js'
import { getConfigModel } from './config-schema.js'
import type { DaemonConfig } from './daemon-config.js'

/**
 * Named instances (`instance: work`, `ngrokd --instance work`): a second daemon for a second ngrok
 * account on one machine. Every key that would make two daemons meet gets an instance default here,
 * used unless the file or the environment sets the key; the hosts block is the instance's own
 * (hosts-block.ts). One rule each:
 * - state_dir `/var/lib/ngrokd` → `/var/lib/ngrokd-work`; control.socket `/run/ngrokd/ngrokd.sock` →
 *   `/run/ngrokd/ngrokd-work.sock` (the name goes before the extension);
 * - net.interface_name `ngrokd-work` (8 characters of name keep it within IFNAMSIZ − 1 = 15);
 * - net.subnet one /16 of 10.108.0.0–10.127.255.255, from a hash of the name: stable, and apart
 *   from the default 10.107.0.0/16. Two instances whose names hash alike are told by the interface
 *   driver's overlap check, and set net.subnet.
 */
/** The environment variable of the `instance` key (as for every key: NGROKD_ and the path). */
export const INSTANCE_ENV = 'NGROKD_INSTANCE'

export const INSTANCE_KEYS = ['state_dir', 'control.socket', 'net.interface_name', 'net.subnet'] as const

/** The instance's values of {@link INSTANCE_KEYS}, from the default daemon's `defaults`. */
export function instanceDefaults(instance: string, defaults: ReadonlyMap<string, unknown>): Map<string, unknown> {
  const suffixed = (path: string) => path.replace(/(\.sock)?$/, `-${instance}$1`)
  return new Map<string, unknown>([
    ['state_dir', suffixed(String(defaults.get('state_dir')))],
    ['control.socket', suffixed(String(defaults.get('control.socket')))],
    ['net.interface_name', `ngrokd-${instance}`],
    ['net.subnet', `10.${108 + (fnv1a(instance) % 20)}.0.0/16`],
  ])
}

/** `{ instance }` of a config, or nothing for the default daemon: for options objects. */
export function instanceOf(config: Pick<DaemonConfig, 'instance'>): { instance?: string } {
  return config.instance ? { instance: config.instance } : {}
}

/** The default config file of an instance: `/etc/ngrokd/work.yml` beside `/etc/ngrokd/config.yml`. */
export function instanceConfigPath(defaultPath: string, instance: string): string {
  return defaultPath.replace(/[^/\\]+$/, `${instance}.yml`)
}

/** FNV-1a, 32 bits: a stable hash of a short name. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0
  return h
}

/**
 * `--instance NAME` checked as the `instance` key is (config.schema.json), before it is handed on as
 * NGROKD_INSTANCE: a bad name is the flag's usage error (exit 2), not the environment's.
 * @throws NgrokdError `NGROKD_ERR_USAGE`
 */
export function checkInstanceFlag(name: string): void {
  const schema = getConfigModel().byPath.get('instance')!.schema
  if (new RegExp(schema.pattern!).test(name)) return
  throw new NgrokdError('NGROKD_ERR_USAGE', `--instance ${JSON.stringify(name)} is not an instance name`, {
    hint: `an instance name is ${schema['x-ngrokd']?.expected ?? 'as config.schema.json says'}`,
  })
}
