export {
  NgrokApiClient,
  DEFAULT_API_BASE_URL,
  parseRetryAfter,
  type NgrokApiClientOptions,
  type RequestOptions,
  type ListOptions,
} from './ngrok-api-client.js'
export { NgrokApiError, isNgrokApiError, ngrokDocsUrl, type NgrokApiErrorInit } from './ngrok-api-error.js'
export { chooseIngressEndpoint, normalizeIngressEndpoint, splitIngressEndpoint, DEFAULT_INGRESS_ENDPOINT, type IngressTarget } from './ingress-endpoint.js'
export type {
  ApiEndpoint,
  ListPage,
  NgrokErrorBody,
  Operator,
  OperatorBinding,
  OperatorCert,
  OperatorCreate,
  OperatorDeployment,
  OperatorUpdate,
  Ref,
} from './types.js'
