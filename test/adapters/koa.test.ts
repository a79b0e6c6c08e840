/** The Koa adapter. */
import { Readable } from 'node:stream'
import { gunzipSync, gzipSync } from 'node:zlib'
import { streamedChunks } from '../../testing/header-contract'
import Koa, { type Middleware } from 'koa'
import Router from '@koa/router'
import { betterAuth, getPrincipal, requireAccess, UnauthorizedError } from '../../adapters/koa'
import { readBody } from '../../adapters/shared/body'
import { createBetterAuth, type BetterAuthServer } from '../../src'
import { accessBody, nonce as newNonce, type Attributes, type TestServer } from '../helpers'
import {
  adapterContract,
  errorCode,
  headerFormContract,
  makeServer,
  numericKeyBody,
  permitsDelete,
  session,
  supertestTarget,
  verifiedReply,
} from './contract'

/** A JSON body parser like koa-bodyparser: parses JSON bodies, optionally keeping the raw text. */
function jsonParser(keepRaw: boolean): Middleware {
  return async (ctx, next) => {
    const parsed = (ctx.request as { body?: unknown }).body !== undefined
    if (!parsed && typeof ctx.is('application/json') === 'string') {
      const read = await readBody(ctx.req, 1 << 20)
      // koa-bodyparser inflates a coded body before parsing it.
      const text = (ctx.get('content-encoding') === 'gzip' ? gunzipSync(read) : read).toString(
        'utf8'
      )
      const request = ctx.request as { body?: unknown; rawBody?: string }
      request.body = text === '' ? {} : (JSON.parse(text) as unknown)
      if (keepRaw) request.rawBody = text
    }
    await next()
  }
}

type Parser = 'route-level' | 'parser-first' | 'parser-with-raw-first'

interface FooBar {
  foo: string
  bar: string
}

function buildApp(core: BetterAuthServer<Attributes>, parser: Parser = 'route-level'): Koa {
  const auth = betterAuth(core)
  const app = new Koa()
  app.silent = true
  app.use(auth.errorHandler())
  if (parser !== 'route-level') app.use(jsonParser(parser === 'parser-with-raw-first'))
  app.use(auth.koa({ prefix: '/auth', openapi: true }))
  const router = new Router()
  router.post('/foo/bar', auth.requireAccess<FooBar>(), ctx => {
    const { request } = ctx.state.betterAuth
    ctx.body = { wasFoo: request.foo, wasBar: request.bar }
  })
  router.post(
    '/admin/delete',
    auth.requireAccess({ authorize: p => permitsDelete(p.attributes) }),
    ctx => {
      ctx.body = { deleted: true }
    }
  )
  router.post('/optional', auth.requireAccess({ credentialsRequired: false }), ctx => {
    ctx.body = { identity: getPrincipal(ctx)?.identity ?? null }
  })
  router.get('/items', auth.requireAccess(), ctx => {
    ctx.body = { identity: getPrincipal(ctx)?.identity, query: ctx.search || '?' }
  })
  router.delete('/notes/:id', auth.requireAccess({ binding: 'headers' }), ctx => {
    ctx.body = { deleted: ctx.params.id }
  })
  router.put('/notes/:id', jsonParser(true), auth.requireAccess({ binding: 'headers' }), ctx => {
    ctx.body = { id: ctx.params.id, body: (ctx.request as { body?: unknown }).body }
  })
  router.get('/stream', auth.requireAccess({ binding: 'headers' }), ctx => {
    ctx.type = 'text/plain'
    ctx.body = Readable.from(streamedChunks())
  })
  router.post('/refuse', jsonParser(false), ctx => {
    ctx.throw(400, 'the application refuses')
  })
  router.get('/public', ctx => {
    ctx.body = { public: true }
  })
  router.post('/public', jsonParser(false), ctx => {
    ctx.body = { echo: (ctx.request as { body?: unknown }).body }
  })
  app.use(router.routes())
  return app
}

adapterContract('Koa', core => supertestTarget(buildApp(core).callback()))
adapterContract('Koa, body parser mounted first', core =>
  supertestTarget(buildApp(core, 'parser-first').callback())
)
headerFormContract('Koa', core => supertestTarget(buildApp(core).callback()))
headerFormContract('Koa, body parser keeping the raw body mounted first', core =>
  supertestTarget(buildApp(core, 'parser-with-raw-first').callback())
)

describe('Koa: Koa specifics', () => {
  let server: TestServer
  beforeEach(() => {
    server = makeServer()
  })
  const now = () => server.clock.ms

  it("answers an application's own 400 on a coded body as a 400, a body that does not decode as 415", async () => {
    const target = supertestTarget(buildApp(server.auth).callback())
    const port = await (target.listen as () => Promise<number>)()
    const post = async (body: Uint8Array<ArrayBuffer> | string) => {
      const reply = await fetch(`http://127.0.0.1:${port}/refuse`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
        body,
      })
      return { status: reply.status, headers: {}, text: await reply.text() }
    }
    try {
      const refused = await post(new Uint8Array(gzipSync('{"a":1}')))
      expect([refused.status, errorCode(refused)]).toEqual([400, 'BA101'])
      const corrupt = await post('{"a":1}')
      expect([corrupt.status, errorCode(corrupt)]).toEqual([415, 'BA606'])
    } finally {
      await target.close?.()
    }
  })

  it('verifies over the exact bytes when the stream is unread or the parser kept rawBody', async () => {
    const { key, token } = await session(server)
    for (const parser of ['route-level', 'parser-with-raw-first'] as const) {
      const target = supertestTarget(buildApp(server.auth, parser).callback())
      const { body, nonce } = numericKeyBody(token, key, now())
      const reply = await target.post('/foo/bar', body)
      expect(await verifiedReply(server.auth, reply, nonce)).toEqual({
        wasFoo: 'bar',
        wasBar: 'foo',
      })
    }
    const reserialized = supertestTarget(buildApp(server.auth, 'parser-first').callback())
    const reply = await reserialized.post('/foo/bar', numericKeyBody(token, key, now()).body)
    expect([reply.status, errorCode(reply)]).toEqual([401, 'BA201'])
  })

  it('throws UnauthorizedError with failWithError (Koa answers with its status and headers)', async () => {
    const app = new Koa()
    app.silent = true
    const caught: unknown[] = []
    app.use(async (ctx, next) => {
      try {
        await next()
      } catch (error) {
        caught.push(error)
        throw error
      }
    })
    app.use(requireAccess(server.auth, { failWithError: true }))
    app.use(ctx => {
      ctx.body = { ok: true }
    })
    const target = supertestTarget(app.callback())
    const reply = await target.post('/x', undefined, {})
    expect(reply.status).toBe(401)
    expect(reply.headers['www-authenticate']).toBe('BetterAuth error="BA404"')
    expect(reply.text).toBe('an access request is required')
    expect(caught[0]).toBeInstanceOf(UnauthorizedError)
    expect(caught[0]).toMatchObject({ status: 401, code: 'BA404', expose: true })
  })

  it('puts the principal on a configurable state key, signs only JSON bodies below 400', async () => {
    const app = new Koa()
    app.silent = true
    const router = new Router()
    router.post('/who', requireAccess(server.auth, { key: 'caller' }), ctx => {
      ctx.status = 201
      ctx.body = {
        identity: ctx.state.caller.identity,
        body: (ctx.request as { body?: unknown }).body,
      }
    })
    router.post('/fail', requireAccess(server.auth), ctx => {
      ctx.status = 409
      ctx.body = { error: { code: 'APP1', message: 'taken' } }
    })
    router.post('/text', requireAccess(server.auth), ctx => {
      ctx.body = 'plain'
    })
    app.use(router.routes())
    const target = supertestTarget(app.callback())
    const { key, token } = await session(server)
    const nonce = newNonce()
    const who = await target.post('/who', accessBody(token, key, { at: now(), nonce }))
    expect(who.status).toBe(201)
    const response = await verifiedReply(server.auth, who, nonce)
    expect(response.body).toEqual({ foo: 'bar', bar: 'foo' })
    const fail = await target.post('/fail', accessBody(token, key, { at: now() }))
    expect(JSON.parse(fail.text)).toEqual({ error: { code: 'APP1', message: 'taken' } })
    const text = await target.post('/text', accessBody(token, key, { at: now() }))
    expect(text.text).toBe('plain')
  })

  it('verifies once when requireAccess runs twice, signs once, and applies each authorize', async () => {
    const app = new Koa()
    app.silent = true
    const router = new Router()
    router.use(requireAccess(server.auth))
    router.post('/read', requireAccess(server.auth), ctx => {
      ctx.body = { ok: 1 }
    })
    router.post(
      '/delete',
      requireAccess(server.auth, { authorize: p => permitsDelete(p.attributes) }),
      ctx => {
        ctx.body = { ok: 2 }
      }
    )
    app.use(router.routes())
    const target = supertestTarget(app.callback())
    const { key, token } = await session(server)
    const nonce = newNonce()
    const read = await target.post('/read', accessBody(token, key, { at: now(), nonce }))
    expect(await verifiedReply(server.auth, read, nonce)).toEqual({ ok: 1 })
    const denied = await target.post('/delete', accessBody(token, key, { at: now() }))
    expect([denied.status, errorCode(denied)]).toEqual([403, 'BA306'])
  })

  it('passes the client IP honouring app.proxy, and hides error context unless debug', async () => {
    const seen: (string | undefined)[] = []
    const core = createBetterAuth<Attributes>({ keys: { env: false }, debug: false })
    const original = core.verifyAccess.bind(core)
    core.verifyAccess = (body, context) => {
      seen.push(context?.ip)
      return original(body, context)
    }
    for (const proxy of [true, false]) {
      const app = new Koa()
      app.proxy = proxy
      app.silent = true
      app.use(requireAccess(core))
      const target = supertestTarget(app.callback())
      const reply = await target.post('/x', '{"payload":{"access":{"token":"x"}}}', {
        'content-type': 'application/json',
        'x-forwarded-for': '203.0.113.7',
      })
      expect(JSON.parse(reply.text).error).not.toHaveProperty('context')
    }
    expect(seen[0]).toBe('203.0.113.7')
    expect(seen[1]).not.toBe('203.0.113.7')
  })
})
