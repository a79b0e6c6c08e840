/**
 * What every adapter does to mount the protocol: a table of the endpoints under a prefix, the
 * OpenAPI document served beside them, and the adapter object's common part.
 */
import type { AccessPrincipal, BetterAuthOptions, BetterAuthServer } from '../../src/server/core'
import { createBetterAuth } from '../../src/server/core'
import { openApiDocument, type OpenApiOptions } from '../../src/server/openapi'
import type { RouteInfo } from '../../src/server/routes'
import { isCore, normalizePath, normalizePrefix, openapiPath, principals } from './access'
import type { AdapterCore } from './core'

/** Mount options every adapter takes. */
export interface MountOptions {
  /** Path prefix of the protocol endpoints, e.g. `/auth`. @default '' */
  prefix?: string
  /** Serve the OpenAPI 3.1 document with GET at this path under the prefix (`true`: `/openapi.json`). */
  openapi?: boolean | string
  /** `info` / `servers` of the served OpenAPI document. */
  openapiOptions?: OpenApiOptions
}

/** What a request path and method are, as far as the protocol is concerned. */
export type Match =
  | { kind: 'endpoint'; route: RouteInfo }
  /** A protocol path asked with a method it does not answer. */
  | { kind: 'method'; route: RouteInfo }
  | { kind: 'openapi'; document: string }
  | undefined

/** The protocol endpoints of a core under a prefix, and its OpenAPI document. */
export class ProtocolRoutes {
  readonly routes: RouteInfo[]
  /** The path the OpenAPI document is served at, or `undefined` when it is not served. */
  readonly openapi: string | undefined
  private readonly table = new Map<string, RouteInfo>()
  private document: string | undefined

  constructor(
    core: Pick<AdapterCore, 'routes'>,
    private readonly options: MountOptions = {}
  ) {
    this.routes = core.routes(normalizePrefix(options.prefix))
    for (const route of this.routes) this.table.set(route.path, route)
    this.openapi = openapiPath(options.prefix, options.openapi)
  }

  /** The OpenAPI document of the routes, as JSON text (built once). */
  openapiDocument(): string {
    this.document ??= JSON.stringify(openApiDocument(this.routes, this.options.openapiOptions))
    return this.document
  }

  /** Whether `path` is a protocol endpoint or the OpenAPI document. */
  has(path: string): boolean {
    const p = normalizePath(path)
    return this.table.has(p) || p === this.openapi
  }

  match(path: string, method: string): Match {
    const p = normalizePath(path)
    const route = this.table.get(p)
    if (route !== undefined) {
      return route.methods.includes(method)
        ? { kind: 'endpoint', route }
        : { kind: 'method', route }
    }
    if (this.openapi !== undefined && p === this.openapi && method === 'GET') {
      return { kind: 'openapi', document: this.openapiDocument() }
    }
    return undefined
  }
}

/** An existing core, or a new one built from options. */
export function coreOf<Attributes>(
  coreOrOptions: BetterAuthServer<Attributes> | BetterAuthOptions<Attributes>
): BetterAuthServer<Attributes> {
  return isCore<Attributes>(coreOrOptions) ? coreOrOptions : createBetterAuth(coreOrOptions)
}

/** The part every adapter object shares: the core, and what it exposes of it. */
export class AdapterBase<Attributes = unknown> {
  constructor(readonly core: BetterAuthServer<Attributes>) {}

  /**
   * The principal of a request (or context) that passed an access check, typed with this core's
   * attributes. Throws when there is none (no access check, or optional access without one).
   */
  principal<Body = unknown>(source: object): AccessPrincipal<Attributes, Body> {
    const principal = principals.get(source) as AccessPrincipal<Attributes, Body> | undefined
    if (principal === undefined) {
      throw new Error('no Better Auth principal here: is the route behind requireAccess()?')
    }
    return principal
  }

  /** Resolves when the server keys are loaded. */
  ready(): Promise<void> {
    return this.core.ready()
  }

  /** The response public key (the server's identity). */
  responsePublicKey(): Promise<string> {
    return this.core.responsePublicKey()
  }

  /** Closes the store. */
  close(): Promise<void> {
    return this.core.close()
  }
}
