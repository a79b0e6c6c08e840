/**
 * Type-level tests: the assertions are checked by tsc (`npm run type-check`, and ts-jest when
 * this file runs); the one runtime test only keeps jest satisfied.
 */
import { expectTypeOf } from 'expect-type'
import type { Middleware } from 'koa'
import type { AccessPrincipal } from '../../src'
import { betterAuth as koaAuth } from '../../adapters/koa'
import { type AuthedRequest } from '../../adapters/express'
import { getPrincipal } from '../../adapters/nestjs'
import { BetterAuthStrategy, type BetterAuthUser } from '../../adapters/passport'

interface Attributes {
  role: string
}
interface Note {
  text: string
}

/** Never called: only its types are checked. */
function typeChecks(): void {
  const koa = koaAuth<Attributes>({})

  // Koa: credentials required, the principal is always there, typed with the attributes and body.
  const required = koa.requireAccess<Note>()
  expectTypeOf(required).toExtend<Middleware<{ betterAuth: AccessPrincipal<Attributes, Note> }>>()
  // Koa, credentialsRequired: false: the principal may be absent.
  const _optional = koa.requireAccess({ credentialsRequired: false })
  type OptionalState = typeof _optional extends Middleware<infer State> ? State : never
  expectTypeOf<OptionalState['betterAuth']>().toEqualTypeOf<
    AccessPrincipal<Attributes, unknown> | undefined
  >()
  // A custom property, inferred from the option.
  const _mine = koa.requireAccess({ requestProperty: 'me' })
  type MineState = typeof _mine extends Middleware<infer State> ? State : never
  expectTypeOf<MineState['me']>().toEqualTypeOf<AccessPrincipal<Attributes, unknown>>()
  // `unless` keeps the middleware's type.
  expectTypeOf(required.unless({ path: '/health' })).toExtend<typeof required>()

  // Express: AuthedRequest carries the principal on the property it names.
  expectTypeOf<AuthedRequest<Attributes, Note>['betterAuth']>().toEqualTypeOf<
    AccessPrincipal<Attributes, Note>
  >()
  expectTypeOf<
    AuthedRequest<Attributes, Note, 'caller'>['caller']['attributes']
  >().toEqualTypeOf<Attributes>()

  // NestJS: getPrincipal may find none.
  expectTypeOf(getPrincipal<Attributes, Note>({})).toEqualTypeOf<
    AccessPrincipal<Attributes, Note> | undefined
  >()

  // Passport: req.user is the principal.
  expectTypeOf<BetterAuthUser<Attributes, Note>>().toEqualTypeOf<
    AccessPrincipal<Attributes, Note>
  >()
  expectTypeOf(new BetterAuthStrategy<Attributes>(koa.core).name).toBeString()
}

it('type-checks', () => {
  expect(typeof typeChecks).toBe('function')
})
