/**
 * An admin authorization hook for one bearer token (`serve --admin-token`), for the admin HTTP
 * endpoints of `admin-http.ts`.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { BetterAuthError, InvalidMessageError } from '../errors'
import { actorOf, type AdminAuthorize } from './admin-http'

/** A request with headers: node's `IncomingMessage` (and Express's, Koa's), or a fetch `Request`. */
export interface RequestWithHeaders {
  headers: { get(name: string): string | null } | Record<string, string | string[] | undefined>
}

/** The header a dashboard may name its operator with: `X-Better-Auth-Actor: alice`. */
export const ACTOR_HEADER = 'x-better-auth-actor'

export interface BearerAuthorizeOptions {
  /**
   * The actor of the token's requests; a request carrying `X-Better-Auth-Actor: NAME` acts as
   * `<actor>:NAME` (printable ASCII, at most 128 characters). @default 'admin-token'
   */
  actor?: string
}

function headerOf(request: RequestWithHeaders, name: string): string | undefined {
  const headers = request.headers
  if (typeof (headers as { get?: unknown }).get === 'function') {
    return (headers as { get(name: string): string | null }).get(name) ?? undefined
  }
  const value = (headers as Record<string, string | string[] | undefined>)[name]
  return Array.isArray(value) ? value.join(', ') : value
}

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest()

/**
 * An `authorize` hook accepting one bearer token (`Authorization: Bearer <token>`), compared in
 * constant time: no `Authorization` header (or another scheme) answers 401 BA404, a wrong token
 * 403 BA306. The token must be at least 16 characters. `serve --admin-token` uses it.
 */
export function bearerAuthorize(
  token: string,
  options: BearerAuthorizeOptions = {}
): AdminAuthorize<RequestWithHeaders> {
  if (typeof token !== 'string' || token.length < 16 || /\s/.test(token)) {
    throw new TypeError('admin token: at least 16 characters, without spaces')
  }
  const actor = options.actor ?? 'admin-token'
  if (actorOf(actor) === undefined) throw new TypeError('bearerAuthorize: actor must be a name')
  const expected = digest(token)
  return request => {
    const header = headerOf(request, 'authorization')
    const match = header === undefined ? null : /^Bearer[ ]+(\S+)[ ]*$/i.exec(header)
    if (match === null) {
      throw new BetterAuthError('BA404', 'admin credentials are required (Authorization: Bearer)')
    }
    // Equal-length digests: the comparison takes the same time whatever the token sent.
    if (!timingSafeEqual(digest(match[1] as string), expected)) return undefined
    const name = headerOf(request, ACTOR_HEADER)
    if (name === undefined) return actor
    if (!/^[\x21-\x7e][\x20-\x7e]{0,127}$/.test(name) || name.endsWith(' ')) {
      throw new InvalidMessageError(ACTOR_HEADER, 'printable ASCII, 1 to 128 characters')
    }
    return `${actor}:${name}`
  }
}
