/**
 * The protocol's endpoints and default HTTP paths: the one route table every adapter uses,
 * derived from the operation table (`./operations`) plus the two key endpoints.
 */
import { OPERATIONS, OPERATION_DEFINITIONS, type Operation } from './operations'

export { OPERATIONS, type Operation }

/** The key endpoints: served by the core itself, not operations. */
export const KEY_ENDPOINTS = Object.freeze({
  responseKey: {
    path: '/key/response',
    summary: "The server's response public key as text (pin it out of band)",
  },
  accessKeys: {
    path: '/key/access',
    summary: 'The access verification keys, signed by the response key (for resource servers)',
  },
})

export type KeyEndpoint = keyof typeof KEY_ENDPOINTS

/** The protocol operations plus the key endpoints. */
export type Endpoint = Operation | KeyEndpoint

export type Paths = Record<Endpoint, string>

const isKeyEndpoint = (endpoint: Endpoint): endpoint is KeyEndpoint => endpoint in KEY_ENDPOINTS

const infoOf = (endpoint: Endpoint): { path: string; summary: string } =>
  isKeyEndpoint(endpoint) ? KEY_ENDPOINTS[endpoint] : OPERATION_DEFINITIONS[endpoint]

/** Every endpoint, operations first. */
export const ENDPOINTS: readonly Endpoint[] = Object.freeze([
  ...OPERATIONS,
  ...(Object.keys(KEY_ENDPOINTS) as KeyEndpoint[]),
])

/** The default path of every endpoint. */
export const DEFAULT_PATHS: Readonly<Paths> = Object.freeze(
  Object.fromEntries(ENDPOINTS.map(endpoint => [endpoint, infoOf(endpoint).path])) as Paths
)

export interface RouteInfo {
  endpoint: Endpoint
  path: string
  /** HTTP methods answered. Operations are POST; the key endpoints also answer GET. */
  methods: readonly string[]
  summary: string
  /** Whether the request is signed (requestSession is not). */
  signed: boolean
}

/** Builds the route table for the given paths (defaults filled in) under an optional prefix. */
export function routeTable(paths: Partial<Paths> = {}, prefix = ''): RouteInfo[] {
  const base = prefix.replace(/\/+$/, '')
  return ENDPOINTS.map(endpoint => ({
    endpoint,
    path: base + (paths[endpoint] ?? DEFAULT_PATHS[endpoint]),
    methods: isKeyEndpoint(endpoint) ? ['GET', 'POST'] : ['POST'],
    summary: infoOf(endpoint).summary,
    signed: !isKeyEndpoint(endpoint) && OPERATION_DEFINITIONS[endpoint].signed,
  }))
}
