/**
 * Every error code ngrokd raises. Each is documented in docs/errors.md (a test checks that).
 */
export const errorCodes = {
  NGROKD_ERR_CONFIG_INVALID: 'a configuration file or override has a bad value',
  NGROKD_ERR_CONFIG_NOT_FOUND: 'a configuration file named with --config does not exist',
  NGROKD_ERR_DRIVER_NOT_FOUND: 'the driver named in net.driver cannot be resolved',
  NGROKD_ERR_DRIVER_INVALID: 'the module named in net.driver is not an ngrokd driver',
  NGROKD_ERR_DRIVER_INCOMPATIBLE: 'the driver needs another version of @ngrokd/core',
  NGROKD_ERR_DRIVER_UNSUPPORTED_PLATFORM: 'the driver does not run on this operating system',
  NGROKD_ERR_PERMISSION: 'the operating system refused for lack of privilege',
  NGROKD_ERR_SYSCALL: 'a system call failed',
  NGROKD_ERR_ADDRESS_EXHAUSTED: 'no free address is left in net.subnet',
  NGROKD_ERR_ADDRESS_CONFLICT: 'net.subnet overlaps an address or route already on the machine',
  NGROKD_ERR_HOSTS_FILE: 'the hosts file could not be read or written',
  NGROKD_ERR_STATE: 'the state directory could not be read or written',
  NGROKD_ERR_API: 'the ngrok API answered with an error',
  NGROKD_ERR_API_UNREACHABLE: 'the ngrok API could not be reached',
  NGROKD_ERR_API_KEY_MISSING: 'no ngrok API key is configured',
  NGROKD_ERR_CERT: 'the client certificate or key is unusable',
  NGROKD_ERR_INGRESS_TLS: 'the TLS handshake with the binding ingress failed',
  NGROKD_ERR_INGRESS_REFUSED: 'the binding ingress refused a connection',
  NGROKD_ERR_INGRESS_PROTOCOL: 'the binding ingress sent something that is not a ConnResponse',
  NGROKD_ERR_INGRESS_TIMEOUT: 'the binding ingress did not answer in time',
  NGROKD_ERR_HOSTNAME_INVALID: 'a hostname from the API is not safe to publish',
  NGROKD_ERR_ENDPOINT_INVALID: 'an endpoint from the API is malformed',
  NGROKD_ERR_LISTEN: 'a listener could not be opened',
  NGROKD_ERR_CONTROL: 'the control socket could not be opened or answered with an error',
  NGROKD_ERR_PLUGIN_DEPENDENCY: 'a plugin needs another plugin that is not registered',
  NGROKD_ERR_NAMESPACE: 'a private network namespace could not be created',
  NGROKD_ERR_ABORTED: 'the operation was aborted',
  NGROKD_ERR_INGRESS_UNREACHABLE: 'the binding ingress could not be reached (DNS or TCP connect failed)',
  NGROKD_ERR_DRIVER_MISUSE: 'a driver was called before open() or with an argument it cannot use (a bug in the caller)',
  NGROKD_ERR_SERVICE: 'the ngrokd system service could not be installed, changed or removed',
  NGROKD_ERR_DRIVER_LIBRARY: 'a library the driver loads (such as wintun.dll) is missing or cannot be loaded',
} as const

export type NgrokdErrorCode = keyof typeof errorCodes
