/**
 * Uploads the adapters must not be held up by, over real sockets: a body far over the limit (by
 * its declared length, or chunked with no length) is refused with 413 BA603 and the connection is
 * closed after the answer instead of the rest being drained; a client that goes away in the middle
 * of its body is no server error. Run against every node:http adapter, on protocol endpoints and
 * on protected routes where the adapter reads the body itself.
 */
import 'reflect-metadata'
import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import express from 'express'
import Koa from 'koa'
import Router from '@koa/router'
import { Controller, HttpCode, Post, type INestApplication } from '@nestjs/common'
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify'
import { Test } from '@nestjs/testing'
import { betterAuth as expressAuth } from '../../adapters/express'
import { betterAuth as koaAuth } from '../../adapters/koa'
import { BetterAuthAccess, BetterAuthModule } from '../../adapters/nestjs'
import { createServer as createStandalone } from '../../adapters/node'
import type { BetterAuthServer } from '../../src'
import { makeServer, until, type Attributes, type TestServer } from '../helpers'

interface Running {
  port: number
  /** The node:http server the app runs on. */
  server: Server
  close(): Promise<void>
}

/** Paths of a running app: a protocol endpoint, and a protected route if the adapter reads it. */
interface App {
  endpoint: string
  protectedRoute?: string
  /** Content type the endpoint is reached with (Nest on Express parses JSON before us). */
  contentType?: string
  start(core: BetterAuthServer<Attributes>): Promise<Running>
}

async function listen(server: Server): Promise<Running> {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    port: (server.address() as AddressInfo).port,
    server,
    close: () => new Promise(resolve => server.close(() => resolve())),
  }
}

@Controller()
class Protected {
  @Post('foo/bar')
  @HttpCode(200)
  @BetterAuthAccess()
  fooBar() {
    return { ok: true }
  }
}

async function nest(core: BetterAuthServer<Attributes>, fastify: boolean): Promise<Running> {
  const moduleRef = await Test.createTestingModule({
    imports: [
      BetterAuthModule.forRoot({ auth: core as BetterAuthServer<unknown>, prefix: '/auth' }),
    ],
    controllers: [Protected],
  }).compile()
  let app: INestApplication
  if (fastify) {
    const onFastify = moduleRef.createNestApplication<NestFastifyApplication>(
      new FastifyAdapter(),
      {
        rawBody: true,
        logger: false,
      }
    )
    await onFastify.init()
    await onFastify.getHttpAdapter().getInstance().ready()
    app = onFastify
  } else {
    app = moduleRef.createNestApplication({ rawBody: true, logger: false })
    await app.init()
  }
  await app.listen(0, '127.0.0.1')
  const server = app.getHttpServer() as Server
  return {
    port: (server.address() as AddressInfo).port,
    server,
    close: () => app.close(),
  }
}

const apps: [string, App][] = [
  [
    'Express',
    {
      endpoint: '/auth/session/request',
      protectedRoute: '/foo/bar',
      start: core => {
        const auth = expressAuth(core)
        const app = express()
        app.use(auth.express({ prefix: '/auth' }))
        app.post('/foo/bar', auth.requireAccess(), (_req, res) => {
          res.json({ ok: true })
        })
        return listen(createServer(app))
      },
    },
  ],
  [
    'Koa',
    {
      endpoint: '/auth/session/request',
      protectedRoute: '/foo/bar',
      start: core => {
        const auth = koaAuth(core)
        const app = new Koa()
        app.silent = true
        app.use(auth.koa({ prefix: '/auth' }))
        const router = new Router()
        router.post('/foo/bar', auth.requireAccess(), ctx => {
          ctx.body = { ok: true }
        })
        app.use(router.routes())
        return listen(createServer(app.callback()))
      },
    },
  ],
  [
    'NestJS on Express',
    {
      endpoint: '/auth/session/request',
      contentType: 'text/plain',
      start: core => nest(core, false),
    },
  ],
  ['NestJS on Fastify', { endpoint: '/auth/session/request', start: core => nest(core, true) }],
  [
    'standalone',
    {
      endpoint: '/session/request',
      protectedRoute: '/foo/bar',
      start: core => {
        const standalone = createStandalone(core)
        standalone.protect('/foo/bar', () => ({ ok: true }))
        return listen(createServer(standalone.listener))
      },
    },
  ],
]

interface Exchange {
  /** What the server sent. */
  text: string
  /** Whether the server ended the connection before the client gave up. */
  closedByServer: boolean
}

/** Sends `head`, then lets `body` write to the socket, for at most `ms`. */
function exchange(
  port: number,
  head: string,
  body: (socket: ReturnType<typeof connect>) => void,
  ms: number
): Promise<Exchange> {
  return new Promise(resolve => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(head)
      body(socket)
    })
    let text = ''
    let closedByServer = false
    let finished = false
    const done = (): void => {
      if (finished) return
      finished = true
      clearTimeout(timer)
      socket.destroy()
      resolve({ text, closedByServer })
    }
    const timer = setTimeout(done, ms)
    socket.on('data', chunk => (text += chunk.toString('latin1')))
    socket.on('end', () => {
      closedByServer = true
      done()
    })
    socket.on('close', done)
    socket.on('error', () => undefined)
  })
}

/** Keeps writing 64 KiB pieces (optionally as chunked frames) while the socket takes them. */
function flood(chunked: boolean) {
  const piece = Buffer.alloc(65536, 0x78)
  const frame = Buffer.concat([Buffer.from('10000\r\n'), piece, Buffer.from('\r\n')])
  return (socket: ReturnType<typeof connect>): void => {
    const timer = setInterval(() => {
      if (socket.destroyed) clearInterval(timer)
      else socket.write(chunked ? frame : piece)
    }, 2)
    socket.on('close', () => clearInterval(timer))
  }
}

describe.each(apps)('%s: uploads', (_name, app) => {
  let server: TestServer
  let running: Running
  const errors: unknown[] = []
  beforeEach(async () => {
    errors.length = 0
    server = makeServer({
      logger: {
        error: (...args: unknown[]) => errors.push(args),
        warn: () => undefined,
        info: () => undefined,
        debug: () => undefined,
      },
    })
    running = await app.start(server.auth)
  })
  afterEach(async () => {
    await running.close()
  })

  const paths = [app.endpoint, ...(app.protectedRoute === undefined ? [] : [app.protectedRoute])]
  const head = (path: string, framing: string): string =>
    `POST ${path} HTTP/1.1\r\nHost: localhost\r\n` +
    `Content-Type: ${app.contentType ?? 'application/json'}\r\n${framing}\r\n\r\n`

  /** A body declared far over the limit, and one sent in chunks past it with no length. */
  const floods = paths.flatMap(path => [
    [path, 'a declared 10 GB body', 'Content-Length: 10000000000', false] as const,
    [path, 'a chunked body past the limit', 'Transfer-Encoding: chunked', true] as const,
  ])

  it.each(floods)(
    '%s: %s gets 413 BA603, then the connection closes',
    async (path, _label, framing, chunked) => {
      const reply = await exchange(running.port, head(path, framing), flood(chunked), 5000)
      expect(reply.text).toMatch(/^HTTP\/1\.1 413 /)
      expect(reply.text).toContain('"BA603"')
      expect(reply.text.toLowerCase()).toContain('connection: close')
      expect(reply.closedByServer).toBe(true)
      expect(errors).toEqual([])
    }
  )

  it.each(paths)('%s: a client gone in the middle of its body is no server error', async path => {
    // The client goes once the server has its request; the check waits until the server saw it
    // go (the response closed), then for a turn of the event loop so what noticed it has run.
    let serverSaw = false
    const received = new Promise<void>(resolve => {
      running.server.once('request', (_req: IncomingMessage, res: ServerResponse) => {
        res.once('close', () => (serverSaw = true))
        resolve()
      })
    })
    await exchange(
      running.port,
      head(path, 'Content-Length: 1000'),
      socket => {
        socket.write('{"payload":', () => void received.then(() => socket.destroy()))
      },
      1000
    )
    await until(() => serverSaw, { what: 'the server saw the client go' })
    await new Promise(resolve => setImmediate(resolve))
    expect(errors).toEqual([])
    // The server goes on serving.
    const next = await exchange(
      running.port,
      head(app.endpoint, 'Content-Length: 2\r\nConnection: close') + '{}',
      () => undefined,
      2000
    )
    expect(next.text).toMatch(/^HTTP\/1\.1 400 /)
  })
})
