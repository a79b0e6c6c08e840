/**
 * An OpenAPI 3.1 document of the protocol endpoints, generated from the route table the adapters
 * mount, so the document and the server cannot disagree about paths and methods; and the security
 * scheme and schemas of access-protected routes, for this document or an application's own.
 */
import { ERROR_CODES } from '../errors'
import { DEFAULT_ADMIN_PREFIX } from './admin-http'
import {
  ADMIN_SECURITY_SCHEME,
  ADMIN_SECURITY_SCHEME_OBJECT,
  adminPaths,
  adminSchemas,
} from './openapi-admin'
import { OPERATION_DEFINITIONS, type Operation } from './operations'
import type { Endpoint, RouteInfo } from './routes'
import { errorResponse, object, ref, type Json } from './schema'

export interface OpenApiOptions {
  /**
   * `info` of the document. @default title 'Better Auth', the package version, a description and
   * the package's license
   */
  info?: { title: string; version: string; description?: string; license?: Json }
  /** `servers` of the document. @default `[{ url: '/' }]` (paths are relative to the host) */
  servers?: { url: string; description?: string }[]
  /**
   * Include the security scheme of access-protected routes (`betterAuth`) and the
   * `AccessRequest` and `AccessResponse` schemas, to document the application's protected routes
   * in this document too (as `addBetterAuthSecurity` does for another document). Left out by
   * default: a document without such routes would not use them. @default false
   */
  access?: boolean
  /**
   * Describe the admin endpoints (tag `admin`, security scheme `betterAuthAdmin`) under their
   * prefix (`true`: `/admin`), as a server mounting them serves them. The standalone server and
   * `serve` set it when the endpoints are on. @default false (not described)
   */
  admin?: boolean | { prefix?: string }
}

/** The version of this package (checked against package.json by the build). */
const PACKAGE_VERSION = '0.1.0'

/** The name of the security scheme of access-protected routes in `components.securitySchemes`. */
export const SECURITY_SCHEME = 'betterAuth'

/**
 * The security scheme of access-protected routes: the protocol's signed access request. Its
 * challenge is the `WWW-Authenticate: BetterAuth error="<code>"` header of a 401 answer.
 */
export const SECURITY_SCHEME_OBJECT: Readonly<Json> = Object.freeze({
  type: 'http',
  scheme: 'BetterAuth',
  description:
    "The protocol's signed access request, in the JSON body rather than in a header: " +
    '`{"payload":{"access":{"nonce","timestamp","token"},"request":…},"signature":…}` ' +
    '(schema `AccessRequest`), the access token from `/session/create` or `/session/refresh` and ' +
    'a signature by the access key the token names. The reply is a response envelope signed by ' +
    "the server's response key, echoing the nonce (`AccessResponse`). A failure answers 401 with " +
    '`WWW-Authenticate: BetterAuth error="<code>"` and `{"error":{"code","message"}}`.',
})

const qualified = (pattern: string, description: string, example?: string): Json => ({
  type: 'string',
  pattern,
  description,
  ...(example === undefined ? {} : { examples: [example] }),
})

/** Request envelope: `{"payload":{"access":…,"request":…},"signature":…}`. */
function requestEnvelope(request: Json, signed = true): Json {
  return object(
    { payload: object({ access: ref('RequestAccess'), request }), signature: ref('Signature') },
    signed ? ['payload', 'signature'] : ['payload']
  )
}

function responseEnvelope(response: Json): Json {
  return object({
    payload: object({ access: ref('ResponseAccess'), response }),
    signature: ref('Signature'),
  })
}

/** The protocol operations (the key endpoints are described on their own). */
type OperationEndpoint = Operation

/** The reply of the access-keys endpoint. */
export const ACCESS_KEYS_RESPONSE: Json = responseEnvelope(
  object({
    accessKeys: {
      type: 'array',
      minItems: 1,
      items: object({ publicKey: ref('PublicKey'), retireAt: ref('Timestamp') }, ['publicKey']),
    },
  })
)

/** The schemas of the body and reply of an access-protected route. */
function accessSchemas(): Record<string, Json> {
  return {
    AccessRequest: {
      ...object({
        payload: object({
          access: object({ nonce: ref('Nonce'), timestamp: ref('Timestamp'), token: ref('Token') }),
          request: { description: 'The application data of the protected route' },
        }),
        signature: ref('Signature'),
      }),
      description: 'The body of every request to an access-protected route',
    },
    AccessResponse: {
      ...responseEnvelope({ description: 'The application data of the reply' }),
      description: 'The signed reply of an access-protected route; the nonce echoes the request',
    },
  }
}

function schemas(): Record<string, Json> {
  const authentication = {
    device: ref('Hash'),
    identity: ref('Hash'),
    publicKey: ref('PublicKey'),
    rotationHash: ref('Hash'),
  }
  return {
    Hash: qualified('^E[A-Za-z0-9_-]{43}$', 'BLAKE3-256 digest, CESR-qualified (44 characters)'),
    PublicKey: qualified(
      '^1AAI[A-Za-z0-9_-]{44}$',
      'P-256 public key, SEC1 compressed, CESR-qualified (48 characters)'
    ),
    Signature: qualified(
      '^0I[A-Za-z0-9_-]{86}$',
      'ECDSA P-256/SHA-256 signature (r‖s) over the exact payload text, CESR-qualified'
    ),
    Nonce: qualified('^0A[A-Za-z0-9_-]{22}$', '128-bit nonce, CESR-qualified (24 characters)'),
    Timestamp: {
      type: 'string',
      format: 'date-time',
      description: 'RFC 3339 UTC timestamp with millisecond precision',
      examples: ['2025-10-19T17:26:07.097Z'],
    },
    Token: qualified(
      '^0I[A-Za-z0-9_-]{86}[A-Za-z0-9_-]+$',
      'Access token: the access key signature followed by base64url(gzip(claims JSON))'
    ),
    RequestAccess: object({ nonce: ref('Nonce') }),
    ResponseAccess: object({ nonce: ref('Nonce'), serverIdentity: ref('PublicKey') }),
    Authentication: object(authentication),
    NewAccountAuthentication: object({ ...authentication, recoveryHash: ref('Hash') }),
    RecoveryAuthentication: object({
      ...authentication,
      recoveryHash: ref('Hash'),
      recoveryKey: ref('PublicKey'),
    }),
    LinkContainer: object({
      payload: object({ authentication: ref('Authentication') }),
      signature: ref('Signature'),
    }),
    Error: object({
      error: object(
        {
          code: { type: 'string', enum: Object.keys(ERROR_CODES) },
          message: { type: 'string' },
          context: {
            type: 'object',
            description: 'Diagnostics, only when the server runs in debug',
          },
        },
        ['code', 'message']
      ),
    }),
  }
}

function errorResponses(endpoint: Endpoint): Record<string, Json> {
  const codes = (status: number) =>
    Object.entries(ERROR_CODES)
      .filter(([, info]) => info.status === status)
      .map(([code, info]) => `${code} ${info.title}`)
      .join(', ')
  const responses: Record<string, Json> = {
    '400': errorResponse(`Invalid message (${codes(400)})`),
    '401': errorResponse(`Authentication failed (${codes(401)})`, {
      'WWW-Authenticate': { schema: { type: 'string' }, description: 'BetterAuth error="<code>"' },
    }),
  }
  if (endpoint in OPERATION_DEFINITIONS && OPERATION_DEFINITIONS[endpoint as Operation].conflicts)
    responses['409'] = errorResponse(`Conflict (${codes(409)})`)
  if (endpoint in OPERATION_DEFINITIONS && OPERATION_DEFINITIONS[endpoint as Operation].suspendable)
    responses['403'] = errorResponse('Identity suspended (BA307 identity suspended)')
  responses['413'] = errorResponse(`Body too large (${codes(413)})`)
  responses['429'] = errorResponse(`Rate limited (${codes(429)})`, {
    'Retry-After': { schema: { type: 'integer' }, description: 'Seconds to wait' },
  })
  responses['500'] = errorResponse(`Internal error (${codes(500)})`)
  responses['503'] = errorResponse(`Storage unavailable (${codes(503)})`)
  return responses
}

/**
 * The protocol endpoints carry no credential of a security scheme: their messages are signed by
 * the keys they name, or (the key endpoints) they are public.
 */
const PUBLIC: Json[] = []

function operation(route: RouteInfo): Record<string, Json> {
  if (route.endpoint === 'responseKey') {
    const op: Json = {
      operationId: 'responseKey',
      summary: route.summary,
      description:
        'Served without authentication (trust on first use): clients should pin the key out of band.',
      tags: ['keys'],
      security: PUBLIC,
      responses: {
        '200': {
          description: 'The response public key',
          content: { 'text/plain': { schema: ref('PublicKey') } },
        },
        '413': errorResponse('Body too large (BA603 payload too large)'),
        '503': errorResponse('Storage unavailable (the key store could not be read)'),
      },
    }
    return Object.fromEntries(
      route.methods.map(m => [m.toLowerCase(), { ...op, operationId: `responseKey${m}` }])
    )
  }
  if (route.endpoint === 'accessKeys') {
    const op: Json = {
      operationId: 'accessKeys',
      summary: route.summary,
      description:
        'The access verification keys, current first, in a response envelope signed by the ' +
        'response key. A body `{"payload":{"access":{"nonce":N}}}` makes the reply echo N; ' +
        'without one the server picks the nonce.',
      tags: ['keys'],
      security: PUBLIC,
      responses: {
        '200': {
          description: 'Signed response envelope listing the access verification keys',
          content: { 'application/json': { schema: ACCESS_KEYS_RESPONSE } },
        },
        '400': errorResponse('Invalid message (a body without a valid nonce)'),
        '413': errorResponse('Body too large (BA603 payload too large)'),
        '503': errorResponse('Storage unavailable (the key store could not be read)'),
      },
    }
    return Object.fromEntries(
      route.methods.map(m => [
        m.toLowerCase(),
        m === 'GET'
          ? { ...op, operationId: 'accessKeysGET' }
          : {
              ...op,
              operationId: `accessKeys${m}`,
              requestBody: {
                required: false,
                content: {
                  'application/json': {
                    schema: object({ payload: object({ access: ref('RequestAccess') }) }),
                  },
                },
              },
            },
      ])
    )
  }
  const endpoint = route.endpoint
  const { schemas: messages, area } = OPERATION_DEFINITIONS[endpoint]
  const op: Json = {
    operationId: endpoint,
    summary: route.summary,
    tags: [area === 'sessions' ? 'sessions' : 'accounts'],
    security: PUBLIC,
    requestBody: {
      required: true,
      content: {
        'application/json': {
          schema: requestEnvelope(messages.request, route.signed),
        },
      },
    },
    responses: {
      '200': {
        description: 'Signed response envelope echoing the request nonce',
        content: { 'application/json': { schema: responseEnvelope(messages.response) } },
      },
      ...errorResponses(endpoint),
    },
  }
  return Object.fromEntries(route.methods.map(m => [m.toLowerCase(), op]))
}

/** The request and response schemas of one operation (for validating messages). */
export function operationSchemas(endpoint: OperationEndpoint): {
  request: Json
  response: Json
} {
  const definition = OPERATION_DEFINITIONS[endpoint]
  return {
    request: requestEnvelope(definition.schemas.request, definition.signed),
    response: responseEnvelope(definition.schemas.response),
  }
}

/**
 * The OpenAPI 3.1 document of the given routes (`auth.routes(prefix)`, or `routeTable()`). With
 * `access: true` its components also hold the `betterAuth` security scheme and the
 * `AccessRequest` and `AccessResponse` schemas, for documenting protected routes.
 */
export function openApiDocument(routes: readonly RouteInfo[], options: OpenApiOptions = {}): Json {
  const paths: Record<string, Json> = {}
  for (const route of routes) paths[route.path] = { ...paths[route.path], ...operation(route) }
  const admin = options.admin === undefined || options.admin === false ? undefined : options.admin
  if (admin !== undefined) {
    const prefix = (admin === true ? undefined : admin.prefix) ?? DEFAULT_ADMIN_PREFIX
    Object.assign(paths, adminPaths(prefix.replace(/\/+$/, '')))
  }
  const securitySchemes: Json = {
    ...(options.access === true ? { [SECURITY_SCHEME]: { ...SECURITY_SCHEME_OBJECT } } : {}),
    ...(admin === undefined
      ? {}
      : { [ADMIN_SECURITY_SCHEME]: { ...ADMIN_SECURITY_SCHEME_OBJECT } }),
  }
  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: options.info ?? {
      title: 'Better Auth',
      version: PACKAGE_VERSION,
      description:
        'Key-based, passwordless authentication (the Better Auth protocol). Every request and ' +
        'response is a signed envelope; errors are `{"error":{"code","message"}}`.',
      license: { name: 'MIT', identifier: 'MIT' },
    },
    servers: options.servers ?? [{ url: '/', description: 'The host serving this document' }],
    tags: [
      { name: 'accounts', description: 'Accounts, devices and recovery' },
      { name: 'sessions', description: 'Session challenges and access tokens' },
      { name: 'keys', description: 'Server keys' },
      ...(admin === undefined
        ? []
        : [{ name: 'admin', description: 'Administration of identities, devices and sessions' }]),
    ],
    paths,
    components: {
      schemas: {
        ...schemas(),
        ...(options.access === true ? accessSchemas() : {}),
        ...(admin === undefined ? {} : adminSchemas()),
      },
      ...(Object.keys(securitySchemes).length === 0 ? {} : { securitySchemes }),
    },
  }
}

export interface SecurityOptions {
  /** The name of the security scheme. @default 'betterAuth' */
  name?: string
  /**
   * Also add the `AccessRequest` and `AccessResponse` schemas (self-contained, without `$ref`s)
   * to `components.schemas`, for the request bodies and replies of protected routes. Schemas
   * already there keep their definition. @default true
   */
  schemas?: boolean
}

/** `#/components/schemas/X` references replaced by the schemas they name. */
function inlined(value: unknown, all: Record<string, Json>, openApi30: boolean): unknown {
  if (Array.isArray(value)) return value.map(item => inlined(item, all, openApi30))
  if (typeof value !== 'object' || value === null) return value
  const node = value as Json
  const target =
    typeof node.$ref === 'string' ? /^#\/components\/schemas\/(.+)$/.exec(node.$ref) : null
  if (target !== null) return inlined(all[target[1] as string], all, openApi30)
  const out: Json = {}
  for (const [key, item] of Object.entries(node)) {
    // OpenAPI 3.0 schemas have one `example`, not JSON Schema's `examples`.
    if (openApi30 && key === 'examples' && Array.isArray(item)) out.example = item[0]
    else out[key] = inlined(item, all, openApi30)
  }
  return out
}

/**
 * Adds the security scheme of access-protected routes (`components.securitySchemes.betterAuth`)
 * and the `AccessRequest` and `AccessResponse` schemas to an OpenAPI 3.x document made elsewhere,
 * such as `SwaggerModule.createDocument` of `@nestjs/swagger`. The document is changed in place
 * and returned. Protected operations then declare `security: [{ betterAuth: [] }]` (in NestJS,
 * `@ApiSecurity('betterAuth')`), and their body `$ref: '#/components/schemas/AccessRequest'`.
 */
export function addBetterAuthSecurity<Document extends object>(
  document: Document,
  options: SecurityOptions = {}
): Document {
  const doc = document as Json
  const components = (doc.components ??= {}) as Json
  const schemes = (components.securitySchemes ??= {}) as Json
  schemes[options.name ?? SECURITY_SCHEME] = { ...SECURITY_SCHEME_OBJECT }
  if (options.schemas !== false) {
    const existing = (components.schemas ??= {}) as Json
    const all = { ...schemas(), ...accessSchemas() }
    const openApi30 = typeof doc.openapi === 'string' && doc.openapi.startsWith('3.0')
    for (const [name, schema] of Object.entries(accessSchemas())) {
      existing[name] ??= inlined(schema, all, openApi30)
    }
  }
  return document
}
