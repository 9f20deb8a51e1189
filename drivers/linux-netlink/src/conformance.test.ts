// The shared interface-driver conformance suite (@ngrokd/core/testing) against the real kernel, in
// a throwaway network namespace (enterNetworkNamespace re-runs this file under `unshare -n -m`).
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { enterNetworkNamespace, TestFramework, testInterfaceDriver } from '@ngrokd/core/testing'
import driver from './index.js'

TestFramework.use({ describe, it, beforeAll: before, afterAll: after })
const netns = await enterNetworkNamespace(import.meta.url)

describe('linux-netlink', { skip: netns }, () => {
  testInterfaceDriver({
    driver,
    options: { name: 'ngrkc0', subnet: '10.250.0.0/24' },
    additionalTests({ withInterface }) {
      it('the link the suite opens is what `ip -d link` shows', async () => {
        await withInterface(async ({ info }) => {
          const [link] = JSON.parse(execFileSync('ip', ['-j', '-d', 'link', 'show', 'dev', info.name], { encoding: 'utf8' })) as Array<{ linkinfo?: { info_kind?: string } }>
          assert.equal(link!.linkinfo?.info_kind, info.kind.split(' ')[0])
        })
      })
    },
  })
})
