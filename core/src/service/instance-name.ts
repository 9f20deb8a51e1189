import { NgrokdError } from '../errors/ngrokd-error.js'

/** An instance name as config.schema.json's `instance` pattern has it: a lower-case letter, then up to 7 letters or digits; not `config` or `read`. */
const INSTANCE_NAME = /^(?!(config|read)$)[a-z][a-z0-9]{0,7}$/

/**
 * Checks the instance a service is made for (it goes into a unit name, a launchd label, a service name and a
 * command line), for a caller that did not get it through the config.
 * @throws NgrokdError `NGROKD_ERR_CONFIG_INVALID`
 */
export function checkServiceInstance(manager: string, instance: string | undefined): void {
  if (instance !== undefined && !INSTANCE_NAME.test(instance)) {
    throw new NgrokdError('NGROKD_ERR_CONFIG_INVALID', `${manager}: instance ${JSON.stringify(instance)} is not an instance name`)
  }
}
