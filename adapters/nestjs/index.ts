/**
 * NestJS adapter (Nest 10, 11 and 12; Express or Fastify platform): `better-auth-protocol/nestjs`.
 *
 *   @Module({ imports: [BetterAuthModule.forRoot({ attributes: … })] })
 *   …
 *   @Post('notes') @BetterAuthAccess() create(@AccessData() note: Note) { … }
 *
 * Create the app with `NestFactory.create(AppModule, { rawBody: true })`.
 */
export {
  BetterAuthModule,
  type BetterAuthModuleForRoot,
  type BetterAuthModuleForRootAsync,
} from './module'
export { BetterAuthGuard, BetterAuthGlobalGuard, type GuardRequest } from './guard'
export { BetterAuthInterceptor } from './interceptor'
export {
  AccessData,
  AllowAnonymous,
  BetterAuthAccess,
  InjectBetterAuth,
  OptionalAccess,
  Principal,
} from './decorators'
export {
  BetterAuthForbiddenException,
  BetterAuthHttpException,
  BetterAuthUnauthorizedException,
  toHttpException,
} from './exceptions'
export {
  ACCESS_METADATA,
  ALLOW_ANONYMOUS,
  BETTER_AUTH_OPTIONS,
  OPTIONAL_ACCESS,
  type AccessMetadata,
  type BetterAuthModuleExtras,
  type BetterAuthModuleOptions,
  type NestAuthorize,
} from './options'
export { BetterAuthServer } from '../../src/server/core'
export { BetterAuthHttpError, UnauthorizedError } from '../shared/access'
export type { AdapterCore } from '../shared/core'
export { handleClientErrors, fastifyClientErrorHandler } from '../shared/http'
export { BetterAuthExceptionFilter } from './filter'
export { expressServerAdapter, type NestExpressAdapter } from './express-server'

import type { AccessPrincipal } from '../../src/server/core'
import { principals } from '../shared/access'

/** The principal the guard put on this request, or `undefined`. */
export function getPrincipal<Attributes = unknown, Body = unknown>(
  request: object
): AccessPrincipal<Attributes, Body> | undefined {
  return principals.get(request) as AccessPrincipal<Attributes, Body> | undefined
}
