/**
 * Wire shapes of the ngrok REST API (`Ngrok-Version: 2`) as far as ngrokd uses them.
 * Field names are ngrok's own (snake_case). ngrok omits empty fields (`omitempty`), so every
 * field that can be empty is optional here: never rely on `""` or `[]` being sent.
 */

/** A reference to another API object. */
export interface Ref {
  id: string
  uri?: string
}

/** `binding.cert` of a Kubernetes operator: the client certificate ngrok issued for our CSR. */
export interface OperatorCert {
  /** PEM. */
  cert?: string
  /** RFC 3339. */
  not_before?: string
  /** RFC 3339. */
  not_after?: string
}

export interface OperatorBinding {
  /** CEL expressions; `["true"]` selects every kubernetes-bound endpoint of the account. */
  endpoint_selectors?: string[]
  cert?: OperatorCert
  /** `host:port` of the binding ingress; may come without a port (then 443). */
  ingress_endpoint?: string
}

export interface OperatorDeployment {
  name?: string
  namespace?: string
  version?: string
  cluster_name?: string
}

/** A registered Kubernetes operator (`k8sop_…`): what ngrokd registers itself as. */
export interface Operator {
  id: string
  uri?: string
  created_at?: string
  updated_at?: string
  description?: string
  /** Free-form string (max 4096 bytes); ngrokd stores JSON with its machine id in it. */
  metadata?: string
  principal?: Ref
  enabled_features?: string[]
  region?: string
  deployment?: OperatorDeployment
  binding?: OperatorBinding | null
}

/** Body of `POST /kubernetes_operators`. */
export interface OperatorCreate {
  description?: string
  metadata?: string
  enabled_features?: string[]
  region?: string
  deployment?: OperatorDeployment
  binding?: {
    endpoint_selectors?: string[]
    /** PEM PKCS#10 request. */
    csr?: string
    ingress_endpoint?: string
  }
}

/** Body of `PATCH /kubernetes_operators/{id}`: every field optional; a new `binding.csr` renews the certificate. */
export interface OperatorUpdate {
  description?: string
  metadata?: string
  enabled_features?: string[]
  region?: string
  deployment?: Omit<OperatorDeployment, 'namespace' | 'cluster_name'>
  binding?: {
    endpoint_selectors?: string[]
    csr?: string
    ingress_endpoint?: string
  }
}

/** An endpoint as listed by `GET /kubernetes_operators/{id}/bound_endpoints`. */
export interface ApiEndpoint {
  /** `ep_…` */
  id: string
  region?: string
  created_at?: string
  updated_at?: string
  /** The endpoint's URL, e.g. `http://api.prod` or `tcp://db.prod:5432`. */
  url?: string
  /** Deprecated twin of `url`; read it only when `url` is absent. */
  public_url?: string
  /** `http`, `https`, `tcp` or `tls`. */
  proto?: string
  scheme?: string
  /** `host:port`. */
  hostport?: string
  host?: string
  port?: number
  /** `ephemeral`, `edge` or `cloud`. */
  type?: string
  /** Contains `kubernetes` for the endpoints ngrokd serves. */
  bindings?: string[]
  pooling_enabled?: boolean
  metadata?: string
  description?: string
  name?: string
  uri?: string
  upstream_url?: string
  upstream_protocol?: string
  traffic_policy?: string
  principal?: Ref
  domain?: Ref
  tcp_addr?: Ref
  tunnel?: Ref
  tunnel_session?: Ref
  edge?: Ref
}

/**
 * ngrok's error body, on any status >= 400:
 * `{"error_code":"ERR_NGROK_226","status_code":429,"msg":"…","details":{"operation_id":"op_…"}}`.
 * `error_code` is missing on some replies (an unrouted path answers `{"status_code":404,"msg":"Not Found",…}`).
 */
export interface NgrokErrorBody {
  error_code?: string
  status_code?: number
  msg?: string
  details?: Record<string, string>
}

/** One page of a list reply: `{<items>: [...], uri, next_page_uri}`. */
export interface ListPage {
  uri?: string
  /** Absolute URL of the next page, or null on the last one. */
  next_page_uri?: string | null
  [items: string]: unknown
}
