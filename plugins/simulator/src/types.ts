import type { EndpointProto } from '@ngrokd/core'

/** What answers connections to an endpoint (see backends.ts for each protocol). */
export type BackendKind = 'http-echo' | 'https-echo' | 'tcp-echo' | 'bulk'

export const BACKEND_KINDS: readonly BackendKind[] = ['http-echo', 'https-echo', 'tcp-echo', 'bulk']

/** An endpoint as ngrok's API returns it (PROTOCOL.md §2). */
export interface EndpointObject {
  id: string
  uri: string
  url: string
  /** Deprecated twin of `url`, still sent by ngrok. */
  public_url: string
  proto: EndpointProto
  /** The url's scheme (same as `proto` here). */
  scheme: string
  hostport: string
  host: string
  port: number
  type: string
  bindings: string[]
  pooling_enabled: boolean
  created_at: string
  updated_at: string
  metadata: string
  description: string
  /** Empty here: the simulator has no regions, endpoint names or traffic policies. */
  name: string
  region: string
  traffic_policy: string
  /** The account user that owns the endpoint. */
  principal: { id: string; uri: string }
}

/** A kubernetes operator as ngrok's API returns it. */
export interface OperatorObject {
  id: string
  uri: string
  created_at: string
  updated_at: string
  description: string
  metadata: string
  principal: { id: string; uri: string }
  enabled_features: string[]
  region: string
  deployment: { name: string; namespace: string; version: string; cluster_name: string }
  /** Only when `enabled_features` holds `bindings` ("if enabled", omitempty: ngrok-api-go's KubernetesOperator). */
  binding?: {
    endpoint_selectors: string[] | null
    cert: { cert: string; not_before: string; not_after: string }
    ingress_endpoint: string
  }
}

export interface AddEndpointInput {
  /** `http://name.namespace[:port]`, `tcp://name.namespace:port`, or legacy `https://host[:port]`. */
  url: string
  /** Default: http-echo for http, tcp-echo for tcp/tls, https-echo for https. */
  backend?: BackendKind
  metadata?: string
  description?: string
  /** ngrok endpoint type. Default `agent`. */
  type?: string
  /** Several endpoints may share a URL only when all of them enable pooling (ngrok's rule). */
  poolingEnabled?: boolean
  /** Warnings sent in every ConnResponse for this endpoint (`notices`). */
  notices?: string[]
  /** Serve the URL as given, without ngrok's validation: for testing a client's own checks. */
  skipValidation?: boolean
}

/** Which API requests a fault applies to (all when both are omitted), and how many times it fires (omitted: until `resetFaults()`). */
export interface ApiFaultScope {
  count?: number
  /** Only requests whose path starts with this. */
  pathPrefix?: string
  /** Only requests with this HTTP method (`GET`, `PATCH`, …; any case). */
  method?: string
}

export type ApiFault = ApiFaultScope &
  (
    | { kind: 'rate-limit'; /** Default 1. */ retryAfterSeconds?: number }
    | { kind: 'server-error'; /** 500 (default) … 599. */ status?: number }
    | { kind: 'latency'; ms: number }
  )

export type IngressFault =
  | {
      kind: 'refuse'
      host: string
      port?: number
      /** Default `ERR_NGROK_3200`. */
      errorCode?: string
      /** Default `endpoint is offline`. */
      errorMessage?: string
      count?: number
    }
  | { kind: 'handshake-delay'; ms: number; count?: number }
  /** Reset the TCP connection once `afterBytes` payload bytes were sent to the client. */
  | { kind: 'cut'; afterBytes: number; host?: string; count?: number }

export interface SimulatorStats {
  api: {
    total: number
    /** Requests per path (no query string), admin calls excluded. */
    byPath: Record<string, number>
    byStatus: Record<string, number>
    /** Requests being answered now (admin calls excluded): a hung request shows here. */
    inFlight: number
  }
  ingress: {
    /** Connections answered with a successful ConnResponse. */
    accepted: number
    /** Connections refused: failed TLS, unknown operator, bad or unknown host, injected refusals. */
    refused: number
    /** Refusals by ngrok error code; `tls` for failed handshakes, `protocol` for unreadable ConnRequests. */
    refusedByCode: Record<string, number>
    /** Relayed connections still open. */
    active: number
  }
}

/** One decoded ConnRequest as the ingress received it, for tests that check what a client sends. */
export interface ConnRequestRecord {
  host: string
  port: number
  /** Field 3, when it was on the wire (`{}` for the empty message ngrok's operator sends without a pod). */
  podIdentity?: { uid?: string; name?: string; namespace?: string; annotations?: Record<string, string> }
  /** The message body (without its 2-byte length), hex. */
  bodyHex: string
}

/** One API request, for tests that check headers a client sent. */
export interface ApiRequestRecord {
  /** When the request arrived (ms since the epoch): its `request` event, before any fault or handler ran. */
  receivedAt: number
  method: string
  path: string
  query: string
  status: number
  headers: Record<string, string | string[] | undefined>
  /** The JSON body of a POST or PATCH, as parsed. */
  body?: unknown
}
