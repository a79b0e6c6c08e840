/** The protocol's operations and default HTTP paths: the one route table every adapter uses. */

export const OPERATIONS = [
  'createAccount',
  'deleteAccount',
  'recoverAccount',
  'linkDevice',
  'unlinkDevice',
  'rotateDevice',
  'requestSession',
  'createSession',
  'refreshSession',
  'changeRecoveryKey',
] as const

export type Operation = (typeof OPERATIONS)[number]

/** The protocol operations plus the key endpoints. */
export type Endpoint = Operation | 'responseKey' | 'accessKeys'

export type Paths = Record<Endpoint, string>

export const DEFAULT_PATHS: Readonly<Paths> = Object.freeze({
  createAccount: '/account/create',
  deleteAccount: '/account/delete',
  recoverAccount: '/account/recover',
  linkDevice: '/device/link',
  unlinkDevice: '/device/unlink',
  rotateDevice: '/device/rotate',
  requestSession: '/session/request',
  createSession: '/session/create',
  refreshSession: '/session/refresh',
  changeRecoveryKey: '/recovery/change',
  responseKey: '/key/response',
  accessKeys: '/key/access',
})

export interface RouteInfo {
  endpoint: Endpoint
  path: string
  /** HTTP methods answered. Operations are POST; the key endpoints also answer GET. */
  methods: readonly string[]
  summary: string
  /** Whether the request is signed (requestSession is not). */
  signed: boolean
}

const SUMMARIES: Record<Endpoint, string> = {
  createAccount: 'Create an identity with its first device and recovery hash',
  deleteAccount: 'Delete an identity and all its devices (rotates the signing device)',
  recoverAccount: 'Recover an identity with its recovery key; revokes every device',
  linkDevice: "Link a new device (its signed link container) to the signer's identity",
  unlinkDevice: 'Unlink a device of the identity (rotates the signing device)',
  rotateDevice: "Rotate a device's authentication key",
  requestSession: 'Request a single-use session challenge for an identity',
  createSession: 'Answer a session challenge and receive an access token',
  refreshSession: 'Exchange an access token and its next key for a new token',
  changeRecoveryKey: 'Replace the recovery hash (rotates the signing device)',
  responseKey: "The server's response public key as text (pin it out of band)",
  accessKeys: 'The access verification keys, signed by the response key (for resource servers)',
}

const KEY_ENDPOINTS: ReadonlySet<Endpoint> = new Set(['responseKey', 'accessKeys'])

/** Builds the route table for the given paths (defaults filled in) under an optional prefix. */
export function routeTable(paths: Partial<Paths> = {}, prefix = ''): RouteInfo[] {
  const base = prefix.replace(/\/+$/, '')
  return (Object.keys(DEFAULT_PATHS) as Endpoint[]).map(endpoint => ({
    endpoint,
    path: base + (paths[endpoint] ?? DEFAULT_PATHS[endpoint]),
    methods: KEY_ENDPOINTS.has(endpoint) ? ['GET', 'POST'] : ['POST'],
    summary: SUMMARIES[endpoint],
    signed: endpoint !== 'requestSession' && !KEY_ENDPOINTS.has(endpoint),
  }))
}
