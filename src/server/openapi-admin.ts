/**
 * The admin endpoints in the OpenAPI document (only when a server mounts them): their paths,
 * schemas and security scheme.
 */
import { ADMIN_ROUTES, type AdminRouteInfo } from './admin-http'
import { errorResponse, object, ref, type Json } from './schema'

/** The name of the security scheme of the admin endpoints in `components.securitySchemes`. */
export const ADMIN_SECURITY_SCHEME = 'betterAuthAdmin'

export const ADMIN_SECURITY_SCHEME_OBJECT: Json = {
  type: 'http',
  scheme: 'bearer',
  description:
    "The operator's credential, checked by the server's admin authorization hook. `serve " +
    '--admin-token` (or `BETTER_AUTH_ADMIN_TOKEN`) checks `Authorization: Bearer <token>`; ' +
    'an optional `X-Better-Auth-Actor: NAME` header names the operator in the audit events. ' +
    'No credentials: 401 `BA404`; refused: 403 `BA306`.',
}

/** A time in ms since the epoch, or null when not recorded. */
const moment = (description: string): Json => ({
  type: ['number', 'null'],
  description: `${description} (ms since the epoch; null when not recorded)`,
})

export function adminSchemas(): Record<string, Json> {
  return {
    AdminDevice: object({
      device: ref('Hash'),
      createdAt: moment('When the device was registered'),
      rotatedAt: moment('When its key last rotated'),
      lastSessionAt: moment('Its last createSession or refresh, to the minute'),
      sessionsEndedAt: moment('Its tokens issued at or before this are refused'),
    }),
    AdminIdentity: object({
      identity: ref('Hash'),
      createdAt: moment('When the identity was created'),
      suspendedAt: moment('When it was suspended; null when it is not'),
      suspendedReason: { type: ['string', 'null'], description: 'Why it was suspended' },
      sessionsEndedAt: moment('Tokens of every device issued at or before this are refused'),
      devices: { type: 'array', items: ref('AdminDevice'), description: 'Oldest first' },
    }),
    AdminActionResult: object(
      {
        action: {
          type: 'string',
          enum: [
            'admin.device.revoked',
            'admin.sessions.ended',
            'admin.identity.suspended',
            'admin.identity.reinstated',
            'admin.identity.deleted',
          ],
          description: 'The action, named as its audit event',
        },
        identity: ref('Hash'),
        device: { ...ref('Hash'), description: 'The device acted on' },
        at: { type: 'number', description: 'When it took effect, ms since the epoch' },
        changed: {
          type: 'boolean',
          description: 'False for suspending a suspended identity or reinstating one that is not',
        },
        actor: { type: 'string', description: 'Who acted, as the authorization hook named them' },
      },
      ['action', 'identity', 'at', 'changed', 'actor']
    ),
  }
}

const adminBodies: Partial<Record<AdminRouteInfo['endpoint'], Json>> = {
  endSessions: {
    ...object({ device: ref('Hash') }, []),
    additionalProperties: false,
    description: 'Without `device`: every device of the identity',
  },
  suspend: {
    ...object({ reason: { type: 'string', minLength: 1, maxLength: 1000 } }, []),
    additionalProperties: false,
  },
}

function adminOperation(route: AdminRouteInfo): Json {
  const names = [...route.path.matchAll(/:(\w+)/g)].map(m => m[1] as string)
  const reply = route.endpoint === 'getIdentity' ? 'AdminIdentity' : 'AdminActionResult'
  const body = adminBodies[route.endpoint]
  return {
    operationId: `admin${route.endpoint[0]?.toUpperCase()}${route.endpoint.slice(1)}`,
    summary: route.summary,
    tags: ['admin'],
    security: [{ [ADMIN_SECURITY_SCHEME]: [] }],
    parameters: names.map(name => ({
      name,
      in: 'path',
      required: true,
      description: name === 'identity' ? 'The identity' : 'A device of the identity',
      schema: { type: 'string', minLength: 1, maxLength: 512 },
    })),
    ...(body === undefined
      ? {}
      : {
          requestBody: {
            required: false,
            content: { 'application/json': { schema: body } },
          },
        }),
    responses: {
      '200': {
        description: route.endpoint === 'getIdentity' ? 'The identity' : 'What the action did',
        content: { 'application/json': { schema: ref(reply) } },
      },
      '400': errorResponse('Invalid message (BA101: a malformed body or argument)'),
      '401': errorResponse('No credentials (BA404)', {
        'WWW-Authenticate': { schema: { type: 'string' }, description: 'Bearer realm="…"' },
      }),
      '403': errorResponse('Refused by the authorization hook (BA306)'),
      '404': errorResponse('Unknown identity or device; nothing was changed (BA608)'),
      '500': errorResponse('Internal error (BA600)'),
      '501': errorResponse('The store does not support administration (BA609)'),
      '503': errorResponse('Storage unavailable (BA602)'),
    },
  }
}

/** The admin endpoints' paths under `prefix`. */
export function adminPaths(prefix: string): Record<string, Json> {
  const paths: Record<string, Json> = {}
  for (const route of ADMIN_ROUTES) {
    const path = prefix + route.path.replace(/:(\w+)/g, '{$1}')
    paths[path] = { ...paths[path], [route.method.toLowerCase()]: adminOperation(route) }
  }
  return paths
}
