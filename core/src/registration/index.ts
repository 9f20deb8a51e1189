export {
  Registration,
  DEFAULT_RENEW_BEFORE_MS,
  MACHINE_ID_METADATA_KEY,
  REGISTRATION_FILES,
  machineIdOf,
  type RegistrationOptions,
  type RegistrationInfo,
  type RegistrationUpdatePending,
  type ClientCredentials,
  type OperatorApi,
} from './registration.js'
