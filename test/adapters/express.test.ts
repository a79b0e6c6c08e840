/** The Express adapter on Express 5 and Express 4. */
import express5 from 'express'
import { createServer } from 'node:http'
import { Readable } from 'node:stream'
import { gzipSync } from 'node:zlib'
import { signHeaderRequest } from '../../src/binding'
import { streamedChunks } from '../../testing/header-contract'
import type { ErrorRequestHandler, Express, RequestHandler } from 'express'
import {
  betterAuth,
  expressServerOptions,
  getPrincipal,
  keepRawBody,
  protocolRouter,
  requireAccess,
  UnauthorizedError,
  type AuthedRequest,
} from '../../adapters/express'
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
  type Target,
  verifiedReply,
} from './contract'

// eslint-disable-next-line @typescript-eslint/no-require-imports
const express4 = require('express4') as typeof express5

/**
 * Where the app parses JSON: only on its own routes (`route-level`), app-wide before everything
 * (`json-first`), or app-wide keeping the raw bytes (`json-verify-first`).
 */
type Parser = 'route-level' | 'json-first' | 'json-verify-first'

interface FooBar {
  foo: string
  bar: string
}

function buildApp(
  express: typeof express5,
  core: BetterAuthServer<Attributes>,
  parser: Parser = 'route-level'
): Express {
  const auth = betterAuth(core)
  const app = express()
  if (parser === 'json-first') app.use(express.json())
  if (parser === 'json-verify-first') app.use(express.json({ verify: keepRawBody }))
  app.use(auth.express({ prefix: '/auth', openapi: true }))
  app.post('/foo/bar', auth.requireAccess<FooBar>(), (req, res) => {
    res.json({ wasFoo: req.body.foo, wasBar: req.body.bar })
  })
  app.post(
    '/admin/delete',
    auth.requireAccess({ authorize: p => permitsDelete(p.attributes) }),
    (_req, res) => {
      res.json({ deleted: true })
    }
  )
  app.post('/optional', auth.requireAccess({ credentialsRequired: false }), (req, res) => {
    res.json({ identity: getPrincipal(req)?.identity ?? null })
  })
  app.get('/items', auth.requireAccess(), (req, res) => {
    const url = req.originalUrl
    res.json({ identity: getPrincipal(req)?.identity, query: url.slice(url.indexOf('?')) || '?' })
  })
  app.delete('/notes/:id', auth.requireAccess({ binding: 'headers' }), (req, res) => {
    res.json({ deleted: req.params.id })
  })
  app.put('/notes/:id', express.json(), auth.requireAccess({ binding: 'headers' }), (req, res) => {
    res.json({ id: req.params.id, body: req.body as unknown })
  })
  app.get('/stream', auth.requireAccess({ binding: 'headers' }), (_req, res) => {
    res.type('text/plain')
    Readable.from(streamedChunks()).pipe(res)
  })
  app.get('/public', (_req, res) => {
    res.json({ public: true })
  })
  app.post('/public', express.json(), (req, res) => {
    res.json({ echo: req.body as unknown })
  })
  app.use(auth.errorHandler())
  return app
}

for (const [name, express] of [
  ['Express 5', express5],
  ['Express 4', express4],
] as const) {
  adapterContract(name, core => supertestTarget(buildApp(express, core)))
  adapterContract(`${name}, express.json() mounted first`, core =>
    supertestTarget(buildApp(express, core, 'json-first'))
  )
  headerFormContract(name, core => supertestTarget(buildApp(express, core)))
  headerFormContract(`${name}, express.json({ verify }) mounted first`, core =>
    supertestTarget(buildApp(express, core, 'json-verify-first'))
  )
  // The same app on a server that builds its requests and responses with the app's prototypes.
  const onOwnClasses = (app: Express) => {
    const server = createServer(expressServerOptions(app), app)
    return supertestTarget(server, async () => {
      server.closeAllConnections()
      if (server.listening) await new Promise(resolve => server.close(resolve))
    })
  }
  adapterContract(`${name}, on expressServerOptions(app)`, core =>
    onOwnClasses(buildApp(express, core))
  )
  headerFormContract(`${name}, on expressServerOptions(app)`, core =>
    onOwnClasses(buildApp(express, core))
  )

  describe(`${name}: Express specifics`, () => {
    let server: TestServer
    beforeEach(() => {
      server = makeServer()
    })
    const now = () => server.clock.ms

    it('verifies over the exact bytes whatever the parser order, given the raw bytes', async () => {
      const { key, token } = await session(server)
      for (const parser of ['route-level', 'json-verify-first'] as const) {
        const target = supertestTarget(buildApp(express, server.auth, parser))
        const { body, nonce } = numericKeyBody(token, key, now())
        const reply = await target.post('/foo/bar', body)
        expect(await verifiedReply(server.auth, reply, nonce)).toEqual({
          wasFoo: 'bar',
          wasBar: 'foo',
        })
      }
    })

    it('falls back to the re-serialized body after express.json(), which a reordered payload fails', async () => {
      const warnings: string[] = []
      const auth = createBetterAuth<Attributes>({
        keys: await server.auth.keys(),
        now: server.clock.now,
        logger: {
          error: () => undefined,
          warn: (_o, m) => warnings.push(String(m)),
          info: () => undefined,
          debug: () => undefined,
        },
      })
      const { key, token } = await session(server)
      const target = supertestTarget(buildApp(express, auth, 'json-first'))
      const reply = await target.post('/foo/bar', numericKeyBody(token, key, now()).body)
      expect([reply.status, errorCode(reply)]).toEqual([401, 'BA201'])
      expect(warnings).toHaveLength(1)
      expect(warnings[0]).toContain('express.json')
      // A body whose text is its own re-serialization still verifies.
      const ok = await target.post('/foo/bar', accessBody(token, key, { at: now() }))
      expect(ok.status).toBe(200)
      expect(warnings).toHaveLength(1)
    })

    it('prints the re-serialization warning once, one line, with the default logger', async () => {
      const printed = jest.spyOn(console, 'warn').mockImplementation(() => undefined)
      try {
        const auth = createBetterAuth<Attributes>({
          keys: await server.auth.keys(),
          now: server.clock.now,
        })
        const { key, token } = await session(server)
        const target = supertestTarget(buildApp(express, auth, 'json-first'))
        for (let i = 0; i < 3; i++) {
          const reply = await target.post('/foo/bar', accessBody(token, key, { at: now() }))
          expect(reply.status).toBe(200)
        }
        const lines = printed.mock.calls.map(call => String(call[0]))
        const reserialized = lines.filter(line => line.includes('re-serialized'))
        expect(reserialized).toHaveLength(1)
        expect(reserialized[0]).not.toContain('\n')
        expect(reserialized[0]).toContain('express.json({ verify: auth.verify })')
      } finally {
        printed.mockRestore()
      }
    })

    it('refuses a re-serialized body with 415 BA606 under allowReserializedBody: false', async () => {
      const auth = createBetterAuth<Attributes>({
        keys: await server.auth.keys(),
        now: server.clock.now,
        allowReserializedBody: false,
      })
      const { key, token } = await session(server)
      const target = supertestTarget(buildApp(express, auth, 'json-first'))
      const reply = await target.post('/foo/bar', accessBody(token, key, { at: now() }))
      expect([reply.status, errorCode(reply)]).toEqual([415, 'BA606'])
      expect(reply.text).toContain('express.json({ verify: auth.verify })')
      // With the raw bytes kept, the same core verifies.
      const kept = supertestTarget(buildApp(express, auth, 'json-verify-first'))
      const ok = await kept.post('/foo/bar', accessBody(token, key, { at: now() }))
      expect(ok.status).toBe(200)
    })

    it('passes failures to next(err) as UnauthorizedError with failWithError', async () => {
      const errors: UnauthorizedError[] = []
      const app = express()
      app.post(
        '/foo/bar',
        requireAccess(server.auth, { failWithError: true }),
        (_req, res) => void res.json({})
      )
      app.post(
        '/admin',
        requireAccess(server.auth, {
          failWithError: true,
          authorize: () => {
            throw new TypeError('policy store down')
          },
        }),
        (_req, res) => void res.json({})
      )
      const handler: ErrorRequestHandler = (error: UnauthorizedError, _req, res, _next) => {
        errors.push(error)
        res.status(error.status ?? 500).json({ handled: error.code ?? String(error) })
      }
      app.use(handler)
      const target = supertestTarget(app)
      const { key, token } = await session(server)

      const missing = await target.post('/foo/bar', undefined, {})
      expect(missing.status).toBe(401)
      expect(JSON.parse(missing.text)).toEqual({ handled: 'BA404' })
      const stale = await target.post('/foo/bar', accessBody(token, key, { at: now() - 60_000 }))
      expect(JSON.parse(stale.text)).toEqual({ handled: 'BA501' })
      expect(errors[0]).toBeInstanceOf(UnauthorizedError)
      expect(errors[0]?.name).toBe('UnauthorizedError')
      expect(errors[0]?.headers['www-authenticate']).toBe('BetterAuth error="BA404"')
      expect(errors[1]).toMatchObject({ status: 422, statusCode: 422, code: 'BA501' })
      expect((errors[1]?.cause as Error).name).toBe('StaleRequestError')

      const broken = await target.post('/admin', accessBody(token, key, { at: now() }))
      expect(broken.status).toBe(500)
      expect(errors[2]).toBeInstanceOf(TypeError)
    })

    it('signs res.send(object) and status codes below 400, not error replies or strings', async () => {
      const app = express()
      app.post('/send', requireAccess(server.auth), (_req, res) => {
        res.status(201).send({ created: 1 })
      })
      app.post('/error', requireAccess(server.auth), (_req, res) => {
        res.status(409).json({ error: { code: 'APP1', message: 'taken' } })
      })
      app.post('/text', requireAccess(server.auth), (_req, res) => {
        res.send('plain')
      })
      const target = supertestTarget(app)
      const { key, token } = await session(server)
      const nonce = newNonce()
      const sent = accessBody(token, key, { at: now(), nonce })
      const created = await target.post('/send', sent)
      expect(created.status).toBe(201)
      expect(await verifiedReply(server.auth, created, nonce)).toEqual({ created: 1 })
      const error = await target.post('/error', accessBody(token, key, { at: now() }))
      expect(error.status).toBe(409)
      expect(JSON.parse(error.text)).toEqual({ error: { code: 'APP1', message: 'taken' } })
      const text = await target.post('/text', accessBody(token, key, { at: now() }))
      expect(text.text).toBe('plain')
    })

    it('sends a signed reply with its type and length and no ETag, and no body with 204 or 304', async () => {
      const app = express()
      app.post('/signed', requireAccess(server.auth), (_req, res) => {
        res.json({ ok: true })
      })
      app.post('/chunked', requireAccess(server.auth), (_req, res) => {
        res.set('Transfer-Encoding', 'chunked').json({ chunked: true })
      })
      for (const status of [204, 304, 205]) {
        app.post(`/status/${status}`, requireAccess(server.auth), (_req, res) => {
          res.status(status).json({ dropped: true })
        })
      }
      const target = supertestTarget(app)
      const { key, token } = await session(server)
      const nonce = newNonce()
      const signed = await target.post('/signed', accessBody(token, key, { at: now(), nonce }))
      expect(signed.status).toBe(200)
      expect(signed.headers['content-type']).toBe('application/json; charset=utf-8')
      expect(signed.headers['content-length']).toBe(String(Buffer.byteLength(signed.text)))
      // The envelope echoes a fresh nonce: no ETag of it could ever match a later request.
      expect(signed.headers.etag).toBeUndefined()
      expect(await verifiedReply(server.auth, signed, nonce)).toEqual({ ok: true })

      const chunkedNonce = newNonce()
      const chunked = await target.post(
        '/chunked',
        accessBody(token, key, { at: now(), nonce: chunkedNonce })
      )
      expect(chunked.headers['transfer-encoding']).toBe('chunked')
      expect(chunked.headers['content-length']).toBeUndefined()
      expect(await verifiedReply(server.auth, chunked, chunkedNonce)).toEqual({ chunked: true })

      for (const status of [204, 304]) {
        const empty = await target.post(`/status/${status}`, accessBody(token, key, { at: now() }))
        expect(empty.status).toBe(status)
        expect(empty.text).toBe('')
        expect(empty.headers['content-type']).toBeUndefined()
        expect(empty.headers['content-length']).toBeUndefined()
      }
      const reset = await target.post('/status/205', accessBody(token, key, { at: now() }))
      expect(reset.status).toBe(205)
      expect(reset.text).toBe('')
      expect(reset.headers['content-length']).toBe('0')
    })

    it('puts the principal on a configurable property, typed with AuthedRequest', async () => {
      const auth = betterAuth(server.auth)
      const app = express()
      const seen: unknown[] = []
      app.post(
        '/who',
        auth.requireAccess({ requestProperty: 'caller', replaceBody: false }),
        (req, res) => {
          const typed = req as unknown as AuthedRequest<Attributes, FooBar, 'caller'>
          seen.push(typed.caller.attributes, (req as { betterAuth?: unknown }).betterAuth)
          seen.push(auth.principal<FooBar>(req).request.foo)
          res.json({ body: (req.body as unknown) ?? null })
        }
      )
      app.post('/open', (req, res) => {
        expect(() => auth.principal(req)).toThrow(/requireAccess/)
        res.json({})
      })
      const target = supertestTarget(app)
      const { key, token } = await session(server)
      const reply = await target.post('/who', accessBody(token, key, { at: now() }))
      expect(reply.status).toBe(200)
      expect(seen).toEqual([{ permissionsByRole: { admin: ['read', 'write'] } }, undefined, 'bar'])
      expect((await target.post('/open', '{}')).status).toBe(200)
    })

    it('verifies once when requireAccess runs twice, and applies each authorize', async () => {
      const app = express()
      const router = express.Router()
      router.use(requireAccess(server.auth))
      router.post('/read', requireAccess(server.auth), (_req, res) => void res.json({ ok: 1 }))
      router.post(
        '/delete',
        requireAccess(server.auth, { authorize: p => permitsDelete(p.attributes) }),
        (_req, res) => void res.json({ ok: 2 })
      )
      app.use('/api', router)
      const target = supertestTarget(app)
      const { key, token } = await session(server)
      expect((await target.post('/api/read', accessBody(token, key, { at: now() }))).status).toBe(
        200
      )
      const denied = await target.post('/api/delete', accessBody(token, key, { at: now() }))
      expect([denied.status, errorCode(denied)]).toEqual([403, 'BA306'])
    })

    it('mounts with app.use(prefix, …) and passes the client IP honouring trust proxy', async () => {
      const seen: (string | undefined)[] = []
      const auth = server.auth
      const original = auth.handle.bind(auth)
      auth.handle = (endpoint, body, context) => {
        seen.push(context?.ip, context?.path)
        return original(endpoint, body, context)
      }
      const app = express()
      app.set('trust proxy', 'loopback')
      app.use('/v1', protocolRouter(auth))
      const target = supertestTarget(app)
      const reply = await target.post('/v1/key/response', '', { 'x-forwarded-for': '203.0.113.9' })
      expect(reply.text).toBe(await auth.responsePublicKey())
      expect(seen).toEqual(['203.0.113.9', '/v1/key/response'])
      const get = await target.get('/v1/key/response')
      expect(get.status).toBe(200)
      expect((await target.get('/v1/account/create')).status).toBe(404)
    })

    it('refuses a body over the limit with 413 BA603', async () => {
      const auth = createBetterAuth<Attributes>({
        keys: { env: false },
        limits: { maxBodyBytes: 512 },
      })
      const app = express()
      app.use(protocolRouter(auth as BetterAuthServer<unknown>))
      app.post('/foo/bar', requireAccess(auth), (_req, res) => void res.json({}))
      const target = supertestTarget(app)
      const big = JSON.stringify({ payload: { pad: 'x'.repeat(1000) } })
      const op = await target.post('/account/create', big)
      expect([op.status, errorCode(op)]).toEqual([413, 'BA603'])
      const protectedRoute = await target.post('/foo/bar', big)
      expect([protectedRoute.status, errorCode(protectedRoute)]).toEqual([413, 'BA603'])
    })
  })
}

describe('Express adapter: one core, several adapters', () => {
  it('accepts an existing core and builds one from options', async () => {
    const core = createBetterAuth({ keys: { env: false } })
    const wrapped = betterAuth(core)
    expect(wrapped.core).toBe(core)
    const built = betterAuth({ keys: { env: false } })
    expect(built.core).not.toBe(core)
    expect(await built.responsePublicKey()).toMatch(/^1AAI/)
    const handler: RequestHandler = built.express()
    expect(typeof handler).toBe('function')
    await built.ready()
    await built.close()
  })
})

describe('Express: bodies the header form must not miss, errors it must not take over', () => {
  const appError = (fields: Record<string, unknown>): Error =>
    Object.assign(new Error('the application refuses'), fields)
  let target: Target | undefined
  afterEach(async () => {
    await target?.close?.()
    target = undefined
  })

  it('refuses a body a middleware consumed without keeping (400 BA101), unless signed for none', async () => {
    const server = makeServer()
    const { key, token } = await session(server)
    const auth = betterAuth(server.auth)
    const app = express5()
    // A middleware that reads the request and keeps nothing of it.
    const consume: RequestHandler = (req, _res, next) => {
      req.resume()
      req.on('end', () => next())
    }
    app.put('/consumed', consume, auth.requireAccess({ binding: 'headers' }), (_req, res) => {
      res.json({ ok: true })
    })
    app.use(auth.errorHandler())
    target = supertestTarget(app)
    const port = await (target.listen as () => Promise<number>)()
    const url = `http://127.0.0.1:${port}/consumed`
    // Signed for no body, sent with one the handler never sees checked.
    const signed = await signHeaderRequest({
      method: 'PUT',
      url,
      token,
      signer: key,
      nonce: newNonce(),
      timestamp: server.clock.ms,
    })
    const smuggled = await fetch(url, {
      method: 'PUT',
      headers: { ...signed.headers, 'content-type': 'application/json' },
      body: '{"smuggled":true}',
    })
    const text = await smuggled.text()
    expect([smuggled.status, errorCode({ status: smuggled.status, headers: {}, text })]).toEqual([
      400,
      'BA101',
    ])
    // The same request without a body goes through: its nonce was not used.
    expect((await fetch(url, { method: 'PUT', headers: signed.headers })).status).toBe(200)
  })

  it("leaves an application's own 400 alone on a coded body, and a zlib-coded error on a plain one", async () => {
    const server = makeServer()
    const auth = betterAuth(server.auth)
    const app = express5()
    app.post('/coded', express5.json(), (_req, _res, next) => next(appError({ status: 400 })))
    app.post('/plain', express5.json(), (_req, _res, next) =>
      next(appError({ status: 400, code: 'Z_DATA_ERROR' }))
    )
    app.use(auth.errorHandler())
    target = supertestTarget(app)
    const port = await (target.listen as () => Promise<number>)()
    const post = async (path: string, body: Uint8Array<ArrayBuffer> | string, coding?: string) => {
      const reply = await fetch(`http://127.0.0.1:${port}${path}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(coding === undefined ? {} : { 'content-encoding': coding }),
        },
        body,
      })
      const text = await reply.text()
      return { status: reply.status, headers: {}, text }
    }
    expect((await post('/coded', new Uint8Array(gzipSync('{"a":1}')), 'gzip')).status).toBe(400)
    expect((await post('/plain', '{"a":1}')).status).toBe(400)
    // A body that does not decode as its coding says is the coding refused.
    const corrupt = await post('/coded', '{"a":1}', 'gzip')
    expect([corrupt.status, errorCode(corrupt)]).toEqual([415, 'BA606'])
  })
})
