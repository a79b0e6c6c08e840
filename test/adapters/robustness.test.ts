/**
 * Inputs and handlers that once made an adapter answer 500, answer twice, hang or crash the
 * process: bodies a parser accepted but that cannot be re-serialized, handlers that answer
 * around the signed reply, raw routes whose answer node:http refuses, upload streams that fail,
 * bodies the strict parser refuses on optional routes, and reply data without a JSON form.
 */
import express, { type RequestHandler } from 'express'
import Koa from 'koa'
import Router from '@koa/router'
import { betterAuth as expressAuth } from '../../adapters/express'
import { betterAuth as fetchAuth } from '../../adapters/fetch'
import { betterAuth as koaAuth } from '../../adapters/koa'
import { createServer as createStandalone } from '../../adapters/node'
import { readBody } from '../../adapters/shared/body'
import { accessBody, nonce as newNonce, until } from '../helpers'
import { errorCode, makeServer, session, supertestTarget, verifiedReply } from './contract'

/** 10,000 nested arrays: ~20 KB, under every size limit, too deep to re-serialize. */
const DEEP = '{"payload":' + '['.repeat(10_000) + ']'.repeat(10_000) + '}'

/**
 * Collects the process's unhandled rejections while `run` runs and until the work it started has
 * `settled` (then one more turn of the event loop, in which Node reports rejections).
 */
async function unhandledDuring(
  run: () => Promise<void>,
  settled: () => boolean = () => true
): Promise<unknown[]> {
  const seen: unknown[] = []
  const listener = (reason: unknown): void => {
    seen.push(reason)
  }
  process.on('unhandledRejection', listener)
  try {
    await run()
    await until(settled, { what: 'the work the request started settled' })
    await new Promise(resolve => setImmediate(resolve))
  } finally {
    process.off('unhandledRejection', listener)
  }
  return seen
}

describe('a body a JSON parser accepted but that cannot be re-serialized', () => {
  it('Express after express.json(): 400 BA101 on endpoints and protected routes', async () => {
    const server = makeServer()
    const auth = expressAuth(server.auth)
    const app = express()
    app.use(express.json())
    app.use(auth.express({ prefix: '/auth' }))
    app.post('/notes', auth.requireAccess(), (_req, res) => {
      res.json({})
    })
    const target = supertestTarget(app)
    for (const path of ['/auth/session/request', '/notes']) {
      const reply = await target.post(path, DEEP)
      expect([path, reply.status, errorCode(reply)]).toEqual([path, 400, 'BA101'])
    }
  })

  it('Koa after a body parser: 400 BA101 on endpoints and protected routes', async () => {
    const server = makeServer()
    const auth = koaAuth(server.auth)
    const app = new Koa()
    app.silent = true
    app.use(async (ctx, next) => {
      const text = (await readBody(ctx.req, 1 << 20)).toString('utf8')
      ;(ctx.request as { body?: unknown }).body = JSON.parse(text) as unknown
      await next()
    })
    app.use(auth.koa({ prefix: '/auth' }))
    const router = new Router()
    router.post('/notes', auth.requireAccess(), ctx => {
      ctx.body = {}
    })
    app.use(router.routes())
    const target = supertestTarget(app.callback())
    for (const path of ['/auth/session/request', '/notes']) {
      const reply = await target.post(path, DEEP)
      expect([path, reply.status, errorCode(reply)]).toEqual([path, 400, 'BA101'])
    }
  })
})

describe('Express: handlers that answer around the signed reply', () => {
  const handlers: [string, RequestHandler][] = [
    [
      'res.json() then next()',
      (_req, res, next) => {
        res.json({ a: 1 })
        next()
      },
    ],
    [
      'res.json() then a throw',
      (_req, res) => {
        res.json({ a: 1 })
        throw new Error('late')
      },
    ],
    [
      'res.json() twice',
      (_req, res) => {
        res.json({ a: 1 })
        res.json({ b: 2 })
      },
    ],
  ]

  it.each(handlers)(
    '%s: never an unsigned 2xx, never an unhandled rejection',
    async (_label, handler) => {
      const server = makeServer()
      const auth = expressAuth(server.auth)
      const app = express()
      app.post('/notes', auth.requireAccess(), handler)
      // The app's own error handler, quiet (Express's default logs the stack).
      app.use(((_error, _req, res, _next) => {
        res.status(500).json({ error: 'handler failed' })
      }) as express.ErrorRequestHandler)
      const target = supertestTarget(app)
      const { key, token } = await session(server)
      const nonce = newNonce()
      // Replies are signed off the event loop, maybe after another answer went out: count the
      // signatures still in progress, so that the check waits for them.
      let signing = 0
      const respond = server.auth.respond.bind(server.auth)
      server.auth.respond = async (replyNonce, data) => {
        signing++
        try {
          return await respond(replyNonce, data)
        } finally {
          signing--
        }
      }
      const rejections = await unhandledDuring(
        async () => {
          const reply = await target.post(
            '/notes',
            accessBody(token, key, { at: server.clock.ms, nonce })
          )
          if (reply.status < 400) {
            expect(await verifiedReply(server.auth, reply, nonce)).toEqual({ a: 1 })
          }
        },
        () => signing === 0
      )
      expect(rejections).toEqual([])
    }
  )
})

describe('standalone: a raw route whose answer node:http refuses', () => {
  it('answers 500 BA600 instead of hanging, with no unhandled rejection', async () => {
    const server = makeServer()
    const standalone = createStandalone(server.auth)
    standalone.route('/bad', () => ({ status: 200, headers: { 'x-bad': 'a\r\nb' }, body: 'ok' }))
    const target = supertestTarget(standalone.listener)
    const rejections = await unhandledDuring(async () => {
      const reply = await target.post('/bad', '{}')
      expect([reply.status, errorCode(reply)]).toEqual([500, 'BA600'])
    })
    expect(rejections).toEqual([])
  })
})

describe('fetch: an upload stream that fails in the middle', () => {
  it('is 400 BA101 (the client went away), not an internal error', async () => {
    const errors: unknown[] = []
    const server = makeServer({
      logger: {
        error: (...args: unknown[]) => errors.push(args),
        warn: () => undefined,
        info: () => undefined,
        debug: () => undefined,
      },
    })
    const auth = fetchAuth(server.auth)
    const failing = (path: string): Request =>
      new Request(`http://localhost${path}`, {
        method: 'POST',
        body: new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(new Uint8Array([0x7b]))
            controller.error(new Error('the client went away'))
          },
        }),
        duplex: 'half',
      } as RequestInit)
    const protectedRoute = auth.requireAccess(() => ({}))
    for (const response of [
      await auth.fetch(failing('/session/request')),
      await protectedRoute(failing('/notes')),
    ]) {
      const body = (await response.json()) as { error: { code: string } }
      expect([response.status, body.error.code]).toEqual([400, 'BA101'])
    }
    expect(errors).toEqual([])
  })
})

describe('bodies the strict parser refuses, on required and optional routes', () => {
  const bodies: [string, Uint8Array][] = [
    ['invalid UTF-8', new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])],
    [
      'payload.access nested past the depth limit',
      new TextEncoder().encode(
        '{"payload":{"access":' + '{"a":'.repeat(100) + '1' + '}'.repeat(100) + '}}'
      ),
    ],
  ]

  it.each(bodies)('%s: 400 BA101, not "no credentials"', async (_label, body) => {
    const server = makeServer()
    const auth = fetchAuth(server.auth)
    const required = auth.requireAccess(() => ({}))
    const optional = auth.requireAccess(() => ({ anonymous: true }), {
      credentialsRequired: false,
    })
    const request = (): Request =>
      new Request('http://localhost/notes', { method: 'POST', body: Buffer.from(body) })
    for (const response of [await required(request()), await optional(request())]) {
      const reply = (await response.json()) as { error?: { code: string } }
      expect([response.status, reply.error?.code]).toEqual([400, 'BA101'])
    }
  })
})

describe('reply data without a JSON form', () => {
  it('is refused by respond, never signed into invalid JSON', async () => {
    const server = makeServer()
    for (const data of [{ toJSON: () => undefined }, () => 1, Symbol('x')]) {
      await expect(server.auth.respond(newNonce(), data)).rejects.toThrow(/no JSON form/)
    }
    const text = await server.auth.respond(newNonce(), undefined)
    expect(JSON.parse(text)).toMatchObject({ payload: { response: {} } })
  })
})
