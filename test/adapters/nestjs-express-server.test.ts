/**
 * `expressServerAdapter(new ExpressAdapter())` (adapters/nestjs/express-server.ts): Nest's Express
 * platform on a server that builds each request and response with the app's own prototypes. The
 * adapter contract and the header-form contract run on it in nestjs.test.ts; here, what the
 * helper itself promises: the prototypes, Nest's `httpsOptions` and `forceCloseConnections`, and
 * an adapter it does not know left as it is.
 */
import 'reflect-metadata'
import {
  Controller,
  Get,
  Req,
  Res,
  type INestApplication,
  type NestApplicationOptions,
} from '@nestjs/common'
import { ExpressAdapter } from '@nestjs/platform-express'
import { Test } from '@nestjs/testing'
import type { Express, Request, Response } from 'express'
import { Server as HttpServer, request as httpRequest, type Agent } from 'node:http'
import { Server as HttpsServer } from 'node:https'
import type { AddressInfo, Socket } from 'node:net'
import { expressServerAdapter } from '../../adapters/nestjs'
import { isBuiltPrototype } from '../../adapters/shared/server-classes'

let seen: { request: boolean; response: boolean; built: boolean } | undefined
let express: Express | undefined

@Controller()
class ProbeController {
  @Get('probe')
  probe(@Req() req: Request, @Res() res: Response): void {
    seen = {
      request: Object.getPrototypeOf(req) === express?.request,
      response: Object.getPrototypeOf(res) === express?.response,
      // Built with it by the server, rather than swapped in by Express.
      built: isBuiltPrototype(Object.getPrototypeOf(req) as object),
    }
    res.json({ ok: true })
  }

  @Get('hang')
  hang(@Res() res: Response): void {
    res.flushHeaders() // and never ends
  }
}

async function make(
  adapter: ExpressAdapter,
  options: NestApplicationOptions = {}
): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({ controllers: [ProbeController] }).compile()
  const app = moduleRef.createNestApplication(adapter, { logger: false, ...options })
  express = adapter.getInstance<Express>()
  await app.init()
  return app
}

let app: INestApplication | undefined
afterEach(async () => {
  await app?.close()
  app = undefined
  seen = undefined
})

async function get(url: string, agent?: Agent): Promise<{ status: number; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent }, res => {
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode ?? 0, socket: req.socket as Socket }))
    })
    req.on('error', reject)
    req.end()
  })
}

it('serves requests and responses built with the Express app prototypes', async () => {
  app = await make(expressServerAdapter(new ExpressAdapter()))
  await app.listen(0, '127.0.0.1')
  const { port } = app.getHttpServer().address() as AddressInfo
  expect((await get(`http://127.0.0.1:${port}/probe`)).status).toBe(200)
  expect(seen).toEqual({ request: true, response: true, built: true })
})

it('without it, Nest serves node objects whose prototypes Express swaps', async () => {
  app = await make(new ExpressAdapter())
  await app.listen(0, '127.0.0.1')
  const { port } = app.getHttpServer().address() as AddressInfo
  expect((await get(`http://127.0.0.1:${port}/probe`)).status).toBe(200)
  // By the time the route runs Express has set them in both cases: the difference is when.
  expect(seen).toEqual({ request: true, response: true, built: false })
  expect(app.getHttpServer()).toBeInstanceOf(HttpServer)
})

it('keeps httpsOptions: an https server', async () => {
  app = await make(expressServerAdapter(new ExpressAdapter()), { httpsOptions: {} })
  expect(app.getHttpServer()).toBeInstanceOf(HttpsServer)
})

it('keeps forceCloseConnections: close() ends a connection with a reply in progress', async () => {
  app = await make(expressServerAdapter(new ExpressAdapter()), { forceCloseConnections: true })
  await app.listen(0, '127.0.0.1')
  const { port } = app.getHttpServer().address() as AddressInfo
  const socket = await new Promise<Socket>((resolve, reject) => {
    const req = httpRequest(`http://127.0.0.1:${port}/hang`, res => {
      res.on('error', () => undefined)
      resolve(req.socket as Socket)
    })
    req.on('error', () => undefined)
    req.once('socket', s => s.once('error', reject))
    req.end()
  })
  const closed = new Promise<void>(resolve => socket.once('close', () => resolve()))
  // Without the connections tracked, close() would wait for the reply that never ends.
  await app.close()
  app = undefined
  await closed
  expect(socket.destroyed).toBe(true)
})

it('leaves an adapter it does not know as it is', () => {
  const initHttpServer = () => undefined
  const foreign = { getInstance: () => ({}), initHttpServer }
  expect(expressServerAdapter(foreign).initHttpServer).toBe(initHttpServer)
  const nest = new ExpressAdapter()
  const own = nest.initHttpServer
  expect(expressServerAdapter(nest).initHttpServer).not.toBe(own)
})
