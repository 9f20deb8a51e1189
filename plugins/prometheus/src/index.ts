import { definePlugin } from '@ngrokd/core/plugin'
import { MetricsServer, parseListen } from './metrics-server.js'

export interface PrometheusOptions {
  /** `host:port` of `GET /metrics`, e.g. `127.0.0.1:9464`. */
  listen: string
}

/**
 * Serves the daemon's Prometheus registry — its own metrics and every plugin's — at
 * `http://<listen>/metrics`, from the daemon's start to its stop.
 *
 * ```yaml
 * plugins:
 *   - name: prometheus
 *     options: { listen: 127.0.0.1:9464 }
 * ```
 */
export default definePlugin<PrometheusOptions>({
  name: 'prometheus',
  version: '1.0.0',
  ngrokd: '^1.0.0',
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['listen'],
    // host:port, IPv6 in brackets (parseListen reads it; checked here so that a bad one stops the start)
    properties: {
      listen: {
        type: 'string',
        pattern: '^(\\[[0-9A-Fa-f:.]+\\]|[^:\\[\\]\\s]+):\\d{1,5}$',
        description: 'host:port of GET /metrics, e.g. 127.0.0.1:9464',
        // what an error says is expected, in place of the pattern
        'x-ngrokd': { expected: 'host:port, such as 127.0.0.1:9464 or [::1]:9464 (a port is needed)' },
      },
    },
  },
  // a port past 65535 stops the start (and a reload) too, with the option named, instead of failing the plugin
  checkOptions(options) {
    parseListen(options.listen)
  },
  register(ctx) {
    const server = new MetricsServer(ctx.options.listen, ctx.metrics, ctx.logger)
    let stopped = false
    // a listen that fails (the port held by another program) degrades the plugin, and is tried again after every
    // reconcile until it works: the plugin then runs again, without a restart
    const listen = async (): Promise<void> => {
      if (server.port !== undefined || stopped) return
      await server.start()
      ctx.logger.info(`prometheus: metrics served on http://${ctx.options.listen}/metrics`)
    }
    // one function for both hooks: the host knows a failure of one as the same call's, which the other's success ends
    ctx.hooks.onStart(listen)
    ctx.hooks.afterReconcile(listen)
    ctx.hooks.onStop(() => {
      stopped = true
      return server.close()
    })
    ctx.addDoctorChecks(async () => [
      server.port === undefined
        ? { id: 'prometheus.listen', status: 'warn', summary: `metrics are not served on ${ctx.options.listen} (the daemon is not running, or the listen failed: see its log)` }
        : { id: 'prometheus.listen', status: 'ok', summary: `metrics served on http://${ctx.options.listen}/metrics` },
    ])
  },
})

export { MetricsServer, METRIC_COLLECT_TIMEOUT_MS, parseListen, type MetricsSource } from './metrics-server.js'
