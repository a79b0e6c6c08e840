/**
 * `expressServerOptions(app)` (adapters/shared/server-classes.ts): a node:http server whose
 * requests and responses are built with an Express application's own prototypes. The adapter
 * contract runs on such a server in express.test.ts; here, what the classes themselves promise.
 */
import express5 from 'express'
import type { Express } from 'express'
import { createServer, IncomingMessage, ServerResponse, type Server } from 'node:http'
import { once } from 'node:events'
import { Socket } from 'node:net'
import { expressServerOptions } from '../../adapters/express'
import { isBuiltPrototype, withPrototype } from '../../adapters/shared/server-classes'
import { principals } from '../../adapters/shared/principals'
import type { AccessPrincipal } from '../../src/server/core'

// eslint-disable-next-line @typescript-eslint/no-require-imports
const express4 = require('express4') as typeof express5

async function listen(server: Server): Promise<string> {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`
}

const close = (server: Server) => new Promise<void>(resolve => server.close(() => resolve()))

for (const [name, express] of [
  ['Express 5', express5],
  ['Express 4', express4],
] as const) {
  describe(`${name}: expressServerOptions(app)`, () => {
    let server: Server | undefined
    afterEach(async () => {
      if (server !== undefined) await close(server)
      server = undefined
    })

    it('builds each request and response with the app prototypes before Express sees them', async () => {
      const app: Express = express()
      app.get('/', (req, res) => {
        res.json({
          request: Object.getPrototypeOf(req) === app.request,
          response: Object.getPrototypeOf(res) === app.response,
          ip: typeof req.ip,
        })
      })
      const seen: boolean[] = []
      server = createServer(expressServerOptions(app), (req, res) => {
        // As node handed them over: Express has not touched them yet.
        seen.push(Object.getPrototypeOf(req) === app.request)
        seen.push(Object.getPrototypeOf(res) === app.response)
        seen.push(req instanceof IncomingMessage && res instanceof ServerResponse)
        app(req, res)
      })
      const url = await listen(server)
      for (let i = 0; i < 2; i++) {
        const reply = await fetch(url)
        expect(reply.status).toBe(200)
        expect(await reply.json()).toEqual({ request: true, response: true, ip: 'string' })
      }
      expect(seen).toEqual([true, true, true, true, true, true])
    })

    it('leaves a mounted sub-application its own prototypes, and gives the parent its own back', async () => {
      const app: Express = express()
      const sub: Express = express()
      ;(sub.request as unknown as { where: string }).where = 'sub'
      ;(app.request as unknown as { where: string }).where = 'app'
      sub.get('/here', (req, res) => {
        res.json({ where: (req as unknown as { where: string }).where })
      })
      app.use('/sub', sub)
      app.use('/sub', (req, res) => {
        // `next()` out of the sub-application: the parent's prototype again.
        res.json({ after: (req as unknown as { where: string }).where })
      })
      server = createServer(expressServerOptions(app), app)
      const url = await listen(server)
      expect(await (await fetch(`${url}/sub/here`)).json()).toEqual({ where: 'sub' })
      expect(await (await fetch(`${url}/sub/elsewhere`)).json()).toEqual({ after: 'app' })
    })

    it('lets the adapter keep the principal on the request itself', () => {
      const app: Express = express()
      const { IncomingMessage: Request } = expressServerOptions(app)
      const req = new Request(new Socket())
      expect(Object.getPrototypeOf(req)).toBe(app.request)
      expect(isBuiltPrototype(app.request)).toBe(true)
      principals.set(req, { identity: 'x' } as unknown as AccessPrincipal<unknown, unknown>)
      expect(principals.get(req)).toEqual({ identity: 'x' })
      expect(
        Object.getOwnPropertySymbols(req).some(s => s.description === 'betterAuth.principal')
      ).toBe(true)
    })
  })
}

describe('expressServerOptions: refusals', () => {
  it('refuses what is not an Express application', () => {
    expect(() => expressServerOptions({} as never)).toThrow(TypeError)
    expect(() => expressServerOptions({ request: {}, response: null } as never)).toThrow(
      'expressServerOptions needs an Express application'
    )
  })

  it('refuses prototypes that do not inherit from node’s request and response', () => {
    expect(() => expressServerOptions({ request: {}, response: {} })).toThrow(
      'app.request does not inherit from IncomingMessage.prototype'
    )
    const request = Object.create(IncomingMessage.prototype) as object
    expect(() => expressServerOptions({ request, response: {} })).toThrow(
      'app.response does not inherit from ServerResponse.prototype'
    )
  })
})

describe('withPrototype', () => {
  it('builds through a class constructor as through a function', () => {
    class Base {
      readonly made: string
      constructor(
        readonly a: unknown,
        readonly b: unknown
      ) {
        this.made = 'by Base'
      }
    }
    const prototype = Object.create(Base.prototype) as { extra?: string }
    prototype.extra = 'on the prototype'
    const Built = withPrototype(Base, prototype, 'prototype')
    const made = new Built(1, 2) as Base & { extra: string }
    expect(Object.getPrototypeOf(made)).toBe(prototype)
    expect([made.a, made.b, made.made, made.extra]).toEqual([1, 2, 'by Base', 'on the prototype'])
  })

  it('builds through a plain function constructor', () => {
    function Base(this: { a: unknown; b: unknown }, a: unknown, b: unknown) {
      this.a = a
      this.b = b
    }
    const prototype = Object.create(Base.prototype as object) as object
    const Built = withPrototype(
      Base as unknown as new (a: unknown, b: unknown) => object,
      prototype,
      'p'
    )
    const made = new Built(3, 4) as { a: unknown; b: unknown }
    expect(Object.getPrototypeOf(made)).toBe(prototype)
    expect([made.a, made.b]).toEqual([3, 4])
  })
})
