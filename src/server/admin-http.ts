/**
 * The admin HTTP endpoints, for dashboards and support tools: `auth.admin` over JSON, off unless
 * an application mounts them, and never open: every request goes through an operator-supplied
 * `authorize` hook, which names the actor of the audit events or refuses (403 BA306).
 *
 *   GET    <prefix>/identities/:identity                         the identity and its devices
 *   POST   <prefix>/identities/:identity/devices/:device/revoke  revoke a device
 *   POST   <prefix>/identities/:identity/sessions/end            {"device"?}: end sessions
 *   POST   <prefix>/identities/:identity/suspend                 {"reason"?}: suspend
 *   POST   <prefix>/identities/:identity/reinstate               lift a suspension
 *   DELETE <prefix>/identities/:identity                         delete the identity
 *
 * Framework-neutral: `adminHttp(auth, options).handle({ method, path, body, request })` answers
 * `{ status, headers, body }` (or `undefined` for a path outside the prefix); the standalone
 * server (`admin` option), `serve --admin-token`, Express (`auth.adminRouter`) and fetch
 * (`auth.adminHandler`) mount it.
 */
import {
  ForbiddenError,
  InvalidMessageError,
  MethodNotAllowedError,
  NotFoundError,
} from '../errors'
import { decodeUtf8, parseStrictJson } from '../messages/json'
import type { AdminActionResult, AdminApi, AdminIdentity } from './admin'
import { jsonHeaders } from './http'
import type { HandlerResult, RequestContext } from './options'

/** Where the admin endpoints are mounted unless told otherwise. */
export const DEFAULT_ADMIN_PREFIX = '/admin'

/** The `WWW-Authenticate` challenge of a 401 answer, unless told otherwise. */
export const DEFAULT_ADMIN_CHALLENGE = 'Bearer realm="better-auth admin"'

/**
 * What an `authorize` hook answers: the actor (an operator's name or id, 1–256 characters without
 * control characters), whom the audit events name; or `undefined` (also `null`, `false`, `''`)
 * to refuse with 403 BA306. To say the request carries no credentials at all, throw
 * `CredentialsRequiredError` (401 BA404, with the `challenge` header); any other
 * `BetterAuthError` thrown is answered as it is, anything else thrown is a 500.
 */
export type AdminAuthorization = string | undefined | null | false

/** Decides who may use the admin endpoints; gets the framework's request object. */
export type AdminAuthorize<Request = unknown> = (
  request: Request
) => AdminAuthorization | Promise<AdminAuthorization>

export interface AdminHttpOptions<Request = unknown> {
  /**
   * Required: decides each request (see {@link AdminAuthorization}) before anything is read or
   * changed. A hook authorizing by cookie must also guard against cross-site requests (check the
   * `Origin` header): the endpoints take any content type.
   */
  authorize: AdminAuthorize<Request>
  /** The path the endpoints are under. @default '/admin' */
  prefix?: string
  /** `WWW-Authenticate` of a 401 answer. @default 'Bearer realm="better-auth admin"' */
  challenge?: string
}

/** The admin endpoints, named as `auth.admin`'s methods. */
export type AdminEndpoint =
  'getIdentity' | 'revokeDevice' | 'endSessions' | 'suspend' | 'reinstate' | 'deleteIdentity'

/** One admin endpoint: its path under the prefix (`:name` segments), method, and body fields. */
export interface AdminRouteInfo {
  endpoint: AdminEndpoint
  method: 'GET' | 'POST' | 'DELETE'
  /** The path under the prefix, e.g. `/identities/:identity/suspend`. */
  path: string
  /** The fields of its JSON body (all optional); none: an empty body or `{}`. */
  fields: readonly string[]
  summary: string
}

/** The admin endpoints, in the order the OpenAPI document lists them. */
export const ADMIN_ROUTES: readonly AdminRouteInfo[] = Object.freeze([
  {
    endpoint: 'getIdentity',
    method: 'GET',
    path: '/identities/:identity',
    fields: [],
    summary: 'An identity with its devices',
  },
  {
    endpoint: 'deleteIdentity',
    method: 'DELETE',
    path: '/identities/:identity',
    fields: [],
    summary: 'Delete an identity (tombstoned: it can never be created again)',
  },
  {
    endpoint: 'revokeDevice',
    method: 'POST',
    path: '/identities/:identity/devices/:device/revoke',
    fields: [],
    summary: 'Revoke a device (a server-side unlink)',
  },
  {
    endpoint: 'endSessions',
    method: 'POST',
    path: '/identities/:identity/sessions/end',
    fields: ['device'],
    summary: 'End the sessions of an identity, or of one of its devices',
  },
  {
    endpoint: 'suspend',
    method: 'POST',
    path: '/identities/:identity/suspend',
    fields: ['reason'],
    summary: 'Suspend an identity',
  },
  {
    endpoint: 'reinstate',
    method: 'POST',
    path: '/identities/:identity/reinstate',
    fields: [],
    summary: 'Lift the suspension of an identity',
  },
] satisfies AdminRouteInfo[])

/** A request to the admin endpoints, as any framework sees it. */
export interface AdminHttpRequest<Request = unknown> {
  method: string
  /** The request path (a query is ignored). */
  path: string
  /**
   * The body: the raw bytes or text (parsed here as strict JSON), or what a body parser made of
   * it (an object). Absent or empty: `{}`.
   */
  body?: unknown
  /** What the `authorize` hook gets: the framework's request. */
  request: Request
  /** The client IP, for the audit events. */
  context?: RequestContext
}

/** What `adminHttp` needs of a core. */
export interface AdminHttpCore {
  readonly admin: AdminApi
  errorResult(error: unknown, context?: Record<string, unknown>): HandlerResult
}

/** Whether a text has a control character (C0 or DEL). */
const hasControl = (value: string): boolean =>
  [...value].some(c => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)

/** A non-root path of plain segments: `/admin`, `/ops/admin`. */
const PREFIX = /^(\/[\w\-.~]+)+$/

const ANSWER_HEADERS = (): Record<string, string> => ({
  ...jsonHeaders(),
  'cache-control': 'no-store',
})

/** A route of the table with its full pattern split into segments. */
interface CompiledRoute extends AdminRouteInfo {
  /** The full path under the prefix, as a pattern (`/admin/identities/:identity`). */
  pattern: string
  segments: string[]
}

/** The admin endpoints of one core: see the module's description. Build it with `adminHttp`. */
export class AdminHttp<Request = unknown> {
  /** The path the endpoints are under (`/admin`). */
  readonly prefix: string
  /** Each path pattern (under the prefix) with the methods it answers. */
  readonly paths: readonly { path: string; methods: readonly string[] }[]
  private readonly routes: CompiledRoute[]
  private readonly authorize: AdminAuthorize<Request>
  private readonly challenge: string

  constructor(
    private readonly core: AdminHttpCore,
    options: AdminHttpOptions<Request>
  ) {
    if (typeof options !== 'object' || options === null || Array.isArray(options)) {
      throw new TypeError(
        'admin: an object with an authorize hook ({ authorize: request => actor | undefined }); ' +
          'the admin endpoints are never open'
      )
    }
    if (typeof options.authorize !== 'function') {
      throw new TypeError(
        'admin.authorize: a function deciding who may use the admin endpoints is required ' +
          '(it returns the actor, or undefined to refuse); the admin endpoints are never open'
      )
    }
    const prefix = options.prefix ?? DEFAULT_ADMIN_PREFIX
    if (typeof prefix !== 'string' || !PREFIX.test(prefix.replace(/\/+$/, ''))) {
      throw new TypeError('admin.prefix: a path other than "/", e.g. /admin')
    }
    if (
      options.challenge !== undefined &&
      (typeof options.challenge !== 'string' ||
        options.challenge === '' ||
        hasControl(options.challenge))
    ) {
      throw new TypeError('admin.challenge: a WWW-Authenticate value, e.g. Bearer realm="admin"')
    }
    this.prefix = prefix.replace(/\/+$/, '')
    this.authorize = options.authorize
    this.challenge = options.challenge ?? DEFAULT_ADMIN_CHALLENGE
    this.routes = ADMIN_ROUTES.map(route => {
      const pattern = this.prefix + route.path
      return { ...route, pattern, segments: pattern.split('/') }
    })
    const byPath = new Map<string, string[]>()
    for (const route of this.routes) {
      byPath.set(route.pattern, [...(byPath.get(route.pattern) ?? []), route.method])
    }
    this.paths = [...byPath].map(([path, methods]) => ({ path, methods }))
  }

  /** Whether a path is under the prefix (the admin endpoints answer it, if only with 404). */
  owns(path: string): boolean {
    const p = withoutQuery(path)
    return p === this.prefix || p.startsWith(`${this.prefix}/`)
  }

  /**
   * Answers a request: `undefined` for a path outside the prefix; else the JSON answer. In order:
   * 404 BA604 for a path that is no endpoint, 405 BA605 (with `Allow`) for another method, the
   * `authorize` hook (403 BA306, 401), 400 BA101 for a malformed body, then the action (404 BA608
   * for an unknown identity or device, 501 BA609 on a store without administration). Never
   * rejects.
   */
  async handle(input: AdminHttpRequest<Request>): Promise<HandlerResult | undefined> {
    const path = withoutQuery(input.path).replace(/(.)\/+$/, '$1')
    if (!this.owns(path)) return undefined
    const context: RequestContext = { ...input.context, path }
    const found = this.match(path)
    if (found === undefined) return this.fail(new NotFoundError(), { ...context })
    const method = input.method.toUpperCase()
    const route = found.routes.find(r => r.method === method)
    if (route === undefined) {
      const result = this.fail(new MethodNotAllowedError(), { ...context, method })
      result.headers.allow = found.routes.map(r => r.method).join(', ')
      return result
    }
    // Events name the route's pattern: the identity is in them already, as a field.
    const source: RequestContext = { ...context, path: route.pattern }
    try {
      const actor = actorOf(await this.authorize(input.request))
      if (actor === undefined) throw new ForbiddenError('not authorized for the admin endpoints')
      const body = bodyOf(input.body, route.fields)
      const answer = await this.run(route, found.params, body, { actor, context: source })
      return { status: 200, headers: ANSWER_HEADERS(), body: JSON.stringify(answer) }
    } catch (error) {
      return this.fail(error, { ...source, admin: route.endpoint })
    }
  }

  /** The JSON error answer of the admin endpoints (never cached; 401 with the challenge). */
  fail(error: unknown, context: Record<string, unknown> = {}): HandlerResult {
    const result = this.core.errorResult(error, context)
    const headers: Record<string, string> = { ...result.headers, 'cache-control': 'no-store' }
    if (result.status === 401) headers['www-authenticate'] = this.challenge
    return { ...result, headers }
  }

  private run(
    route: CompiledRoute,
    params: Record<string, string>,
    body: Record<string, unknown>,
    options: { actor: string; context: RequestContext }
  ): Promise<AdminIdentity | AdminActionResult> {
    const admin = this.core.admin
    const identity = params.identity as string
    switch (route.endpoint) {
      case 'getIdentity':
        return admin.getIdentity(identity)
      case 'revokeDevice':
        return admin.revokeDevice(identity, params.device as string, options)
      case 'endSessions':
        return admin.endSessions(
          identity,
          'device' in body ? { ...options, device: body.device as string } : options
        )
      case 'suspend':
        return admin.suspend(
          identity,
          'reason' in body ? { ...options, reason: body.reason as string } : options
        )
      case 'reinstate':
        return admin.reinstate(identity, options)
      case 'deleteIdentity':
        return admin.deleteIdentity(identity, options)
    }
  }

  /** The routes of a path (one or two methods) and its parameters, decoded. */
  private match(
    path: string
  ): { routes: CompiledRoute[]; params: Record<string, string> } | undefined {
    const parts = path.split('/')
    let params: Record<string, string> | undefined
    const routes: CompiledRoute[] = []
    for (const route of this.routes) {
      const found = matchSegments(route.segments, parts)
      if (found === undefined) continue
      params = found
      routes.push(route)
    }
    return params === undefined ? undefined : { routes, params }
  }
}

function withoutQuery(path: string): string {
  const query = path.indexOf('?')
  return query === -1 ? path : path.slice(0, query)
}

function matchSegments(pattern: string[], parts: string[]): Record<string, string> | undefined {
  if (pattern.length !== parts.length) return undefined
  const params: Record<string, string> = {}
  for (let i = 0; i < parts.length; i++) {
    const segment = pattern[i] as string
    const part = parts[i] as string
    if (!segment.startsWith(':')) {
      if (segment !== part) return undefined
      continue
    }
    if (part === '') return undefined
    try {
      params[segment.slice(1)] = decodeURIComponent(part)
    } catch {
      return undefined // malformed percent-encoding: no such path
    }
  }
  return params
}

/** The actor a hook answered, checked: `undefined` when it refused. */
export function actorOf(answer: unknown): string | undefined {
  if (answer === undefined || answer === null || answer === false || answer === '') {
    return undefined
  }
  if (typeof answer !== 'string' || answer.length > 256 || hasControl(answer)) {
    throw new TypeError(
      'admin.authorize must answer the actor (a string of 1 to 256 characters without control ' +
        'characters), or undefined to refuse'
    )
  }
  return answer
}

/** The JSON object of a request body with only `fields` in it (all optional), or BA101. */
function bodyOf(body: unknown, fields: readonly string[]): Record<string, unknown> {
  let value = body
  if (typeof value === 'string' || value instanceof Uint8Array) {
    const text = typeof value === 'string' ? value : decodeUtf8(value)
    value = text.trim() === '' ? undefined : parseStrictJson(text, { maxDepth: 4 }).value
  }
  if (value === undefined || value === null) return {}
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidMessageError('body', 'must be a JSON object')
  }
  const object = value as Record<string, unknown>
  for (const name of Object.keys(object)) {
    if (!fields.includes(name)) {
      const allowed = fields.length === 0 ? 'no fields' : `only ${fields.join(', ')}`
      throw new InvalidMessageError(
        `body.${name}`,
        `unknown field (this endpoint takes ${allowed})`
      )
    }
  }
  return object
}

/**
 * The admin endpoints of a core (`adminHttp(auth, { authorize })`): see {@link AdminHttp}.
 * Throws a `TypeError` naming the option when `authorize` is missing or an option is malformed.
 */
export function adminHttp<Request = unknown>(
  core: AdminHttpCore,
  options: AdminHttpOptions<Request>
): AdminHttp<Request> {
  return new AdminHttp(core, options)
}
