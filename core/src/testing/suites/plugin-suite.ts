import 'reflect-metadata'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import semver from 'semver'
import { Registry } from 'prom-client'
import { container } from 'tsyringe'
import { silentLogger } from '../../contracts/logger.js'
import { isNgrokdError } from '../../errors/ngrokd-error.js'
import { isPluginModule, type PluginInterfaceInfo, type PluginModule, type ServingEntry } from '../../plugin/define-plugin.js'
import { PluginHost } from '../../plugin/plugin-host.js'
import { isPluginRouteOf, pluginRoutePrefix } from '../../plugin/plugin-routes.js'
import { HostsFileNameResolver } from '../../names/hosts-file-name-resolver.js'
import { CORE_VERSION } from '../../version.js'
import { TestFramework } from '../test-framework.js'
import { checkDiagnose } from './check-diagnose.js'
import { check, SuiteTempDir, withCleanup } from './suite-support.js'

export interface PluginSuiteOptions {
  title?: string
  /** The plugin module (the package's default export). */
  plugin: unknown
  /** Options as a user would write them under `plugins: [{ name, options }]`. */
  options?: Record<string, unknown>
  /** What `ctx.interface()` gives. Default `ngrokd0`, 127.0.0.1 (so that a plugin can bind it without privilege). */
  interfaceInfo?: PluginInterfaceInfo
  /** The serving set handed to `afterReconcile`. Default two hostnames on loopback addresses. */
  serving?: readonly ServingEntry[]
  skip?: { doctor?: boolean }
  additionalTests?(ctx: { withHost<T>(fn: (host: PluginHost) => Promise<T>): Promise<T> }): void
}

const DEFAULT_SERVING: readonly ServingEntry[] = [
  { hostname: 'api.prod', address: '127.107.0.2', ports: [{ port: 80, proto: 'http' }] },
  { hostname: 'db.prod', address: '127.107.0.3', ports: [{ port: 5432, proto: 'tcp' }] },
]

/**
 * Registers the plugin conformance suite: what every plugin must do to live in the daemon — a
 * valid `definePlugin` module compatible with this core, options that pass its own schema, a
 * `register()` that does not touch the interface before it is open, hooks that run start →
 * afterReconcile → stop without throwing, doctor checks of the documented shape, JSON control routes.
 *
 * ```ts
 * import plugin from '../src/index.js'
 * testPlugin({ plugin, options: { listen: '127.0.0.1:0' } })
 * ```
 */
export function testPlugin(suite: PluginSuiteOptions): void {
  const temp = new SuiteTempDir('ngrokd-plugin-suite')
  const plugin = suite.plugin as PluginModule
  const interfaceInfo = suite.interfaceInfo ?? { name: 'ngrokd0', address: '127.0.0.1' }

  async function withHost<T>(fn: (host: PluginHost, asked: { interfaceBeforeOpen: boolean }) => Promise<T>): Promise<T> {
    return withCleanup(async (defer) => {
      const dir = await temp.fresh()
      let open = false
      const asked = { interfaceBeforeOpen: false }
      const host = await PluginHost.create([{ plugin, options: structuredClone(suite.options ?? {}) }], {
        configDir: dir,
        stateDir: dir,
        logger: silentLogger,
        scope: container.createChildContainer(),
        metrics: new Registry(),
        interfaceInfo: async () => {
          if (!open) asked.interfaceBeforeOpen = true
          return interfaceInfo
        },
        // a hosts file of the test's own, never the machine's
        hostsFileResolver: () => new HostsFileNameResolver({ path: join(dir, 'hosts'), stateDir: join(dir, 'hosts-state'), logger: silentLogger }),
      })
      open = true
      defer(() => host.stop())
      return fn(host, asked)
    })
  }

  TestFramework.describe(suite.title ?? `plugin conformance: ${String((suite.plugin as { name?: unknown })?.name)}`, () => {
    temp.registerHooks()

    check('is a definePlugin module with a kebab-case name, a version and a core range this core satisfies', false, async () => {
      assert.ok(isPluginModule(suite.plugin), "the default export must be made with definePlugin from '@ngrokd/core/plugin'")
      assert.match(plugin.name, /^[a-z][a-z0-9-]*$/)
      assert.ok(semver.valid(plugin.version), `version ${plugin.version} is not semver`)
      assert.ok(semver.satisfies(semver.coerce(CORE_VERSION)!.version, plugin.ngrokd), `@ngrokd/core ${CORE_VERSION} is outside ${plugin.ngrokd}`)
    })

    check('registers with the given options, and does not ask for the interface before it is open', false, async () => {
      await withHost(async (host, asked) => {
        const [status] = host.status()
        assert.equal(status?.state, 'running', `register() failed: ${status?.error?.message}`)
        assert.equal(asked.interfaceBeforeOpen, false, 'ctx.interface() was awaited in register(): call it from onStart')
      })
    })

    check('runs start → afterReconcile (twice, and with nothing served) → stop without a hook throwing', false, async () => {
      await withHost(async (host) => {
        await host.start()
        await host.afterReconcile(suite.serving ?? DEFAULT_SERVING)
        await host.afterReconcile(suite.serving ?? DEFAULT_SERVING)
        await host.afterReconcile([])
        await host.stop()
        const [status] = host.status()
        assert.equal(status?.state, 'running', `a hook threw: ${status?.error?.message}`)
      })
    })

    check('stop without start (a daemon whose start failed), and stop twice, are safe', false, async () => {
      await withHost(async (host) => {
        await host.stop()
        await host.start()
        await host.stop()
        await host.stop()
        const [status] = host.status()
        assert.equal(status?.state, 'running', `a hook threw: ${status?.error?.message}`)
      })
    })

    check('its control routes live under /v1/plugins/<name> and answer JSON (or a coded error)', false, async () => {
      await withHost(async (host) => {
        await host.start()
        for (const [route, handler] of Object.entries(host.routes())) {
          // the daemon's rule (a route outside it fails register(), which the check above reports)
          assert.ok(isPluginRouteOf(plugin.name, route), `${route}: a plugin's routes are GET or POST at ${pluginRoutePrefix(plugin.name)}<path>`)
          if (!route.startsWith('GET ')) continue
          let answer: unknown
          try {
            answer = (await handler(undefined)) ?? null // the daemon answers JSON null for nothing
          } catch (e) {
            // an NgrokdError is the daemon's answer, 400 {"error":{"code","message","hint"}}; anything else is a bug (500)
            assert.ok(isNgrokdError(e), `${route} threw ${e instanceof Error ? e.message : String(e)}, not an NgrokdError: the daemon answers 500 for it`)
            assert.match(e.code, /^NGROKD_ERR_[A-Z0-9_]+$/, `${route}: the error's code`)
            assert.ok(e.message.length > 0, `${route}: the error has a message`)
            answer = { error: { code: e.code, message: e.message, hint: e.hint } }
          }
          assert.doesNotThrow(() => JSON.parse(JSON.stringify(answer)), route)
        }
      })
    })

    check('its doctor checks have the documented shape', !!suite.skip?.doctor, async () => {
      await withHost(async (host) => {
        await host.start()
        await host.afterReconcile(suite.serving ?? DEFAULT_SERVING)
        await checkDiagnose(() => host.doctorChecks(), `plugin ${plugin.name} doctor checks`)
      })
    })

    suite.additionalTests?.({ withHost: (fn) => withHost((host) => fn(host)) })
  })
}
