/**
 * Type-level tests of the principal each adapter hands to the code after it: present after a
 * required access check, possibly absent with `credentialsRequired: false`, on the property
 * named by `requestProperty`, with the attributes the app declared. Checked by tsc (`npm run
 * type-check`) and by ts-jest when this file runs; the one runtime test keeps jest satisfied.
 */
import express from 'express'
import Router from '@koa/router'
import type { Middleware } from 'koa'
import { expectTypeOf } from 'expect-type'
import type { AccessPrincipal } from '../../src'
import {
  betterAuth as expressAuth,
  getPrincipal as expressPrincipal,
  requireAccess as expressRequireAccess,
  type AuthedRequest,
  type OptionalAuthedRequest,
  type RequestOf,
} from '../../adapters/express'
import {
  betterAuth as koaAuth,
  getPrincipal as koaPrincipal,
  requireAccess as koaRequireAccess,
} from '../../adapters/koa'
import {
  BetterAuthAccess,
  BetterAuthModule,
  getPrincipal as nestPrincipal,
  type NestAuthorize,
} from '../../adapters/nestjs'

interface Attributes {
  role: string
}
interface Note {
  text: string
}
type Principal<Body = unknown> = AccessPrincipal<Attributes, Body>
type StateOf<M> = M extends Middleware<infer State> ? State : never

/** Express: never called, only its types are checked. */
function expressChecks(): void {
  const auth = expressAuth<Attributes>({})
  const app = express()

  // Required credentials: the principal is there, on `req.betterAuth`.
  const required = auth.requireAccess<Note>()
  expectTypeOf<RequestOf<typeof required>>().toEqualTypeOf<AuthedRequest<Attributes, Note>>()
  expectTypeOf<RequestOf<typeof required>['betterAuth']>().toEqualTypeOf<Principal<Note>>()
  app.post('/notes', required, (req, res) => {
    expectTypeOf(req.body).toEqualTypeOf<Note>()
    res.json({})
  })

  // credentialsRequired: false — possibly absent, and the handler's parameter can say so.
  const optional = auth.requireAccess({ credentialsRequired: false })
  expectTypeOf<RequestOf<typeof optional>>().toEqualTypeOf<OptionalAuthedRequest<Attributes>>()
  app.get('/hello', optional, (req: RequestOf<typeof optional>, res) => {
    expectTypeOf(req.betterAuth).toEqualTypeOf<Principal | undefined>()
    // @ts-expect-error the principal is absent for a caller without credentials
    res.json({ hello: req.betterAuth.identity })
  })
  // The README's form.
  app.get('/hello', optional, (req: RequestOf<typeof optional>, res) => {
    res.json({ hello: req.betterAuth?.identity ?? 'stranger' })
  })
  // A `boolean` (not known to be `true`) counts as optional; `unless` keeps the type.
  const _maybe = auth.requireAccess({ credentialsRequired: Math.random() > 0.5 })
  expectTypeOf<RequestOf<typeof _maybe>['betterAuth']>().toEqualTypeOf<Principal | undefined>()
  const _open = optional.unless({ path: '/health' })
  expectTypeOf<RequestOf<typeof _open>['betterAuth']>().toEqualTypeOf<Principal | undefined>()

  // The property name is inferred from `requestProperty`.
  const _caller = auth.requireAccess({ requestProperty: 'caller' })
  expectTypeOf<RequestOf<typeof _caller>['caller']>().toEqualTypeOf<Principal>()
  const _optionalCaller = auth.requireAccess({
    requestProperty: 'caller',
    credentialsRequired: false,
  })
  expectTypeOf<RequestOf<typeof _optionalCaller>['caller']>().toEqualTypeOf<Principal | undefined>()
  // With a body type argument the name cannot be inferred: it still type-checks, and any
  // property is typed as possibly holding the principal; a second type argument names it.
  const _me = auth.requireAccess<Note>({ requestProperty: 'me' })
  expectTypeOf<RequestOf<typeof _me>['me']>().toEqualTypeOf<Principal<Note> | undefined>()
  expectTypeOf<RequestOf<typeof _me>['method']>().toEqualTypeOf<string>()
  const _named = auth.requireAccess<Note, 'me'>({ requestProperty: 'me' })
  expectTypeOf<RequestOf<typeof _named>['me']>().toEqualTypeOf<Principal<Note>>()

  // The function form of a core, and getPrincipal.
  const _free = expressRequireAccess(auth.core, { credentialsRequired: false })
  expectTypeOf<RequestOf<typeof _free>['betterAuth']>().toEqualTypeOf<Principal | undefined>()
  const _freeRequired = expressRequireAccess(auth.core)
  expectTypeOf<RequestOf<typeof _freeRequired>['betterAuth']>().toEqualTypeOf<Principal>()
  app.get('/who', optional, (req, res) => {
    expectTypeOf(expressPrincipal<Attributes>(req)).toEqualTypeOf<Principal | undefined>()
    res.json({})
  })
}

/** Koa: never called, only its types are checked. */
function koaChecks(): void {
  const auth = koaAuth<Attributes>({})
  const router = new Router()

  router.post('/notes', auth.requireAccess<Note>(), ctx => {
    expectTypeOf(ctx.state.betterAuth).toEqualTypeOf<Principal<Note>>()
  })
  router.get('/hello', auth.requireAccess({ credentialsRequired: false }), ctx => {
    expectTypeOf(ctx.state.betterAuth).toEqualTypeOf<Principal | undefined>()
    // @ts-expect-error the principal is absent for a caller without credentials
    ctx.body = { hello: ctx.state.betterAuth.identity }
    expectTypeOf(koaPrincipal<Attributes>(ctx)).toEqualTypeOf<Principal | undefined>()
  })
  const _maybe = auth.requireAccess({ credentialsRequired: Math.random() > 0.5 })
  expectTypeOf<StateOf<typeof _maybe>['betterAuth']>().toEqualTypeOf<Principal | undefined>()

  // The name is inferred, from `requestProperty` or the deprecated `key`.
  router.get('/me', auth.requireAccess({ requestProperty: 'me' }), ctx => {
    expectTypeOf(ctx.state.me).toEqualTypeOf<Principal>()
  })
  router.get('/me', auth.requireAccess({ key: 'me', credentialsRequired: false }), ctx => {
    expectTypeOf(ctx.state.me).toEqualTypeOf<Principal | undefined>()
  })
  // One type argument (the body) and a custom name type-check; the name cannot be inferred then,
  // so every key may hold the principal; a second type argument names it.
  const _me = auth.requireAccess<Note>({ requestProperty: 'me' })
  expectTypeOf<StateOf<typeof _me>['me']>().toEqualTypeOf<Principal<Note> | undefined>()
  const _key = auth.requireAccess<Note>({ key: 'me' })
  expectTypeOf<StateOf<typeof _key>['me']>().toEqualTypeOf<Principal<Note> | undefined>()
  router.post('/me', auth.requireAccess<Note, 'me'>({ requestProperty: 'me' }), ctx => {
    expectTypeOf(ctx.state.me).toEqualTypeOf<Principal<Note>>()
  })

  // The function form of a core.
  router.get('/caller', koaRequireAccess(auth.core, { key: 'caller' }), ctx => {
    expectTypeOf(ctx.state.caller).toEqualTypeOf<Principal>()
  })
  const _free = koaRequireAccess(auth.core, { key: 'caller', credentialsRequired: false })
  expectTypeOf<StateOf<typeof _free>['caller']>().toEqualTypeOf<Principal | undefined>()
}

/** NestJS: never called, only its types are checked. */
function nestChecks(): void {
  BetterAuthModule.forRoot<Attributes>({
    attributes: () => ({ role: 'admin' }),
    authorize: ({ attributes }) => {
      expectTypeOf(attributes).toEqualTypeOf<Attributes>()
      return attributes.role === 'admin'
    },
  })
  // @ts-expect-error the attributes do not match the declared type
  BetterAuthModule.forRoot<Attributes>({ attributes: () => ({ roles: ['admin'] }) })
  BetterAuthModule.forRootAsync<Attributes>({
    useFactory: () => ({ authorize: ({ attributes }) => attributes.role !== '' }),
    globalGuard: true,
  })
  BetterAuthModule.forRoot({ openapi: true, isGlobal: false })

  const isAdmin: NestAuthorize<Attributes> = ({ attributes }) => attributes.role === 'admin'
  class Controller {
    @BetterAuthAccess({ authorize: isAdmin })
    remove(): void {}

    @BetterAuthAccess<Attributes>({ authorize: ({ attributes }) => attributes.role === 'writer' })
    write(): void {}
  }
  expectTypeOf(new Controller().write).toBeFunction()
  expectTypeOf(nestPrincipal<Attributes, Note>({})).toEqualTypeOf<Principal<Note> | undefined>()
}

it('type-checks', () => {
  expect([expressChecks, koaChecks, nestChecks].map(f => typeof f)).toEqual([
    'function',
    'function',
    'function',
  ])
})
