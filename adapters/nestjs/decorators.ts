/** Route and parameter decorators. */
import {
  applyDecorators,
  createParamDecorator,
  Inject,
  SetMetadata,
  UseGuards,
  type ExecutionContext,
} from '@nestjs/common'
import { BetterAuthServer, type AccessPrincipal } from '../../src/server/core'
import { principals } from '../shared/access'
import { BetterAuthGuard } from './guard'
import { ACCESS_METADATA, ALLOW_ANONYMOUS, OPTIONAL_ACCESS, type AccessMetadata } from './options'

/**
 * Protects a controller or a handler: the guard verifies the access request and arranges that
 * the reply is signed (no interceptor). Options: `authorize` (403 when it refuses),
 * `credentialsRequired: false`.
 * `@BetterAuthAccess<Attributes>({ authorize: ({ attributes }) => … })` types the attributes.
 */
export function BetterAuthAccess<Attributes = unknown>(
  options: AccessMetadata<Attributes> = {}
): ClassDecorator & MethodDecorator {
  return applyDecorators(
    SetMetadata(ACCESS_METADATA, options as AccessMetadata),
    UseGuards(BetterAuthGuard)
  )
}

/**
 * Lets a route through without an access request (in global-guard mode, or under a protected
 * controller). On a controller, a handler's own `@BetterAuthAccess()` or `@OptionalAccess()`
 * overrides it: the handler is checked.
 */
export const AllowAnonymous = (): ClassDecorator & MethodDecorator =>
  SetMetadata(ALLOW_ANONYMOUS, true)

/**
 * Verifies an access request when there is one; a request without credentials passes. Applies
 * where the guard runs (global-guard mode, or with `@BetterAuthAccess()` on the handler or its
 * controller). On a controller, a handler's `@BetterAuthAccess({ credentialsRequired: true })`
 * overrides it.
 */
export const OptionalAccess = (): ClassDecorator & MethodDecorator =>
  SetMetadata(OPTIONAL_ACCESS, true)

const principalOf = (context: ExecutionContext): AccessPrincipal<unknown, unknown> | undefined =>
  principals.get(context.switchToHttp().getRequest<object>())

/**
 * The verified principal (`identity`, `device`, `attributes`, `token`, `nonce`, `request`), or one
 * of its fields: `@Principal('identity') identity: string`. `undefined` for an anonymous caller.
 */
export const Principal = createParamDecorator(
  (field: keyof AccessPrincipal | undefined, context: ExecutionContext) => {
    const principal = principalOf(context)
    return field === undefined ? principal : principal?.[field]
  }
)

/** The verified request data (`payload.request`), or one of its fields: `@AccessData('foo')`. */
export const AccessData = createParamDecorator(
  (field: string | undefined, context: ExecutionContext) => {
    const data = principalOf(context)?.request
    if (field === undefined) return data
    return typeof data === 'object' && data !== null
      ? (data as Record<string, unknown>)[field]
      : undefined
  }
)

/** Injects the core (`BetterAuthServer`) without relying on emitted decorator metadata. */
export const InjectBetterAuth = (): PropertyDecorator & ParameterDecorator =>
  Inject(BetterAuthServer)
