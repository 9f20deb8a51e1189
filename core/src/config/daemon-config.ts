import type { ConfigOrigin } from './config-invalid-error.js'

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal'

/**
 * The daemon's configuration after loading: camelCase, every default filled in, durations in
 * milliseconds, paths absolute. Built from config.schema.json, where each key, its default and its
 * documentation live: a key added there appears here at run time under its camelCase name (durations
 * with `Ms`); add it to this type too so it is typed (the defaults test fails until you do).
 */
export interface DaemonConfig {
  api: {
    url: string
    /** Unset when neither the file nor NGROK_API_KEY/NGROKD_API_KEY gives one. */
    key?: string
    /** Accept `http://` to a host that is not loopback (the key then travels in clear text). */
    allowInsecureHttp: boolean
    timeoutMs: number
  }
  ingress: {
    /** `host[:port]`; overrides the endpoint the API returns. */
    endpoint?: string
    /** Absolute path of a PEM file or a directory of PEM files. */
    caFile?: string
    /** `add`: caFile beside Node's roots and ngrok's intermediate; `replace`: caFile alone. */
    caMode: 'add' | 'replace'
    insecureSkipVerify: boolean
    /** ConnRequest field 3 on every request; empty unless configured. */
    podIdentity: {
      uid?: string
      name?: string
      namespace?: string
      annotations: Record<string, string>
    }
    /** Resume TLS sessions with the ingress instead of a full handshake per connection. */
    sessionResumption: boolean
    /** TLS connections kept dialled ahead of demand; 0 = off. */
    predial: number
  }
  registration: {
    /** Default (unset): `ngrokd on <hostname>`. */
    description?: string
    region: string
    deploymentName: string
  }
  boundEndpoints: {
    pollIntervalMs: number
    selectors: string[]
  }
  net: {
    /** `auto`, a built-in driver id, an npm package name or a path (resolve paths from {@link DaemonConfig.configDir}). */
    driver: string
    interfaceName: string
    /** Canonical CIDR, host bits zero: `10.107.0.0/16`. */
    subnet: string
    driverOptions: Record<string, unknown>
    force: boolean
    /** Network mode: endpoints also exposed on `listen`, each on a stable port from `startPort`. */
    network: {
      listen?: string
      startPort: number
    }
  }
  names: {
    resolver: string
    /** Passed to a name-resolver driver's `create()` (names.resolver naming a package or a path). */
    driverOptions: Record<string, unknown>
    hostsFile: string
    /** Suffix patterns: when not empty, only matching hostnames are published. */
    allow: string[]
    /** Suffix patterns: matching hostnames are never published. */
    deny: string[]
  }
  /** A named instance (`instance`): its own defaults for state, socket, interface and subnet, its own hosts block. */
  instance?: string
  stateDir: string
  control: {
    socket: string
    group?: string
  }
  log: {
    level: LogLevel
  }
  cleanup: {
    removeInterfaceOnStop: boolean
  }
  forwarder: {
    /** Worker threads carrying bytes; 0 = the main thread; `auto` = the measured default. */
    workers: number | 'auto'
    maxConnections: number
    maxConnectionsPerEndpoint: number
    idleTimeoutMs: number
    /** Close a connection on which no byte has passed either way after this. */
    firstByteTimeoutMs: number
    handshakeTimeoutMs: number
    connRequestTimeoutMs: number
    drainTimeoutMs: number
    /** Young-generation cap of the main thread and each worker, MiB; 0 = V8's default (see `capYoungGeneration`). */
    maxYoungGenerationMib: number
    /** A young-generation collection per this many MiB carried, per forwarding thread; 0 = V8 decides (see `collectYoungGarbageEvery`). */
    youngGcEveryMib: number
  }
  metrics: {
    /** `host:port` of the Prometheus text endpoint; unset = off. Turns on the prometheus plugin. */
    prometheusListen?: string
  }
  /** The `plugins:` list: names, or names with options. */
  plugins: Array<string | { name: string; options?: Record<string, unknown> }>
  /** Directory of the file the configuration came from, or the working directory when none. */
  configDir: string
  /**
   * Not a key: where each key a file or the environment set was written (`plugins` in FILE, `ngrokd.plugins` in a
   * package.json, or NGROKD_PLUGINS), by its path in the file (`metrics.prometheus_listen`), so that what is found bad
   * after loading (a plugin's options) is named as the user wrote it. Absent when neither set any.
   */
  origins?: Readonly<Record<string, ConfigOrigin>>
}

/** Something about the configuration that loads all the same, said at start-up and by `ngrokd doctor`. */
export interface ConfigNotice {
  /**
   * The doctor check it is: `config.deprecated` (a key of the seed daemon's, renamed or ignored), `config.environment`
   * (an `NGROKD_*` variable that is no key, ignored), `config.search` (a package.json that ended the search for a config
   * file), `api.insecure-http` (plain HTTP to the API allowed).
   */
  check: 'config.deprecated' | 'config.environment' | 'config.search' | 'api.insecure-http'
  message: string
}

export interface LoadedConfig {
  config: DaemonConfig
  /** Absolute path of the file read, if any. */
  source?: string
  /** Deprecation notices and the like, for the log at start-up; `ngrokd doctor` reports each as a warning of its `check`. */
  notices: ConfigNotice[]
  /** Where `api.key` came from, when set: `environment variable NGROK_API_KEY`, `api.key in FILE`. */
  apiKeyOrigin?: string
  /** The file read holds no settings (an empty YAML file). */
  empty?: boolean
}
