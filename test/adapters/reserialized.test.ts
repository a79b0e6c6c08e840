/**
 * `allowReserializedBody` on Koa and NestJS (both platforms): a body parser that consumed the
 * request before the adapter without keeping its bytes leaves only the parsed body. With
 * `allowReserializedBody: false` such a protected request is refused (415 BA606, saying how to keep
 * the raw body) before any nonce is reserved, so the same request sent correctly still verifies;
 * with `true` (the default) it is verified over the re-serialized body and a warning is printed,
 * once.
 */
import 'reflect-metadata'
import Koa, { type Middleware } from 'koa'
import Router from '@koa/router'
import { Body, Controller, HttpCode, Post } from '@nestjs/common'
import { betterAuth as koaAuth } from '../../adapters/koa'
import { BetterAuthAccess, BetterAuthModule } from '../../adapters/nestjs'
import { readBody } from '../../adapters/shared/body'
import type { BetterAuthServer } from '../../src'
import { accessBody, nonce as newNonce, type Attributes, type TestServer } from '../helpers'
import {
  errorCode,
  makeServer,
  session,
  supertestTarget,
  verifiedReply,
  type Target,
} from './contract'
import { startNest, type Platform } from './nest-app'

interface FooBar {
  foo: string
  bar: string
}

/** A JSON body parser as koa-bodyparser is one: it reads the stream and parses it, keeping the raw text only when asked. */
function koaJsonParser(keepRaw: boolean): Middleware {
  return async (ctx, next) => {
    if (typeof ctx.is('application/json') === 'string') {
      const text = (await readBody(ctx.req, 1 << 20)).toString('utf8')
      const request = ctx.request as { body?: unknown; rawBody?: string }
      request.body = text === '' ? {} : (JSON.parse(text) as unknown)
      if (keepRaw) request.rawBody = text
    }
    await next()
  }
}

function koaApp(core: BetterAuthServer<Attributes>, keepRaw: boolean): Target {
  const auth = koaAuth(core)
  const app = new Koa()
  app.silent = true
  app.use(koaJsonParser(keepRaw))
  const router = new Router()
  router.post('/foo/bar', auth.requireAccess<FooBar>(), ctx => {
    const { request } = ctx.state.betterAuth
    ctx.body = { wasFoo: request.foo, wasBar: request.bar }
  })
  app.use(router.routes())
  return supertestTarget(app.callback())
}

@Controller()
class FooBarController {
  @Post('foo/bar')
  @HttpCode(200)
  @BetterAuthAccess()
  fooBar(@Body() body: FooBar) {
    return { wasFoo: body.foo, wasBar: body.bar }
  }
}

async function nestApp(
  core: BetterAuthServer<Attributes>,
  platform: Platform,
  rawBody: boolean
): Promise<Target> {
  const imports = [BetterAuthModule.forRoot({ auth: core })]
  return (await startNest(imports, [FooBarController], rawBody, platform)).target
}

/** An app whose parser consumed the body (`keepRaw: false`), or kept its bytes (`true`). */
type AppFactory = (core: BetterAuthServer<Attributes>, keepRaw: boolean) => Promise<Target>

const apps: [string, AppFactory, string][] = [
  [
    'Koa, a body parser mounted first',
    async (core, keepRaw) => koaApp(core, keepRaw),
    'koa-bodyparser',
  ],
  [
    'NestJS (Express), rawBody: false',
    (core, keepRaw) => nestApp(core, 'express', keepRaw),
    'rawBody: true',
  ],
  [
    'NestJS (Fastify), rawBody: false',
    (core, keepRaw) => nestApp(core, 'fastify', keepRaw),
    'rawBody: true',
  ],
]

describe.each(apps)('%s', (_name, build, advice) => {
  const targets: Target[] = []
  const open = async (core: BetterAuthServer<Attributes>, keepRaw: boolean) => {
    const target = await build(core, keepRaw)
    targets.push(target)
    return target
  }
  afterEach(async () => {
    await Promise.all(targets.splice(0).map(target => target.close?.()))
  })

  it('refuses a re-serialized body with 415 BA606 under allowReserializedBody: false, reserving no nonce', async () => {
    const server: TestServer = makeServer({ allowReserializedBody: false })
    const { key, token } = await session(server)
    const nonce = newNonce()
    const body = accessBody(token, key, { at: server.clock.ms, nonce })

    const consumed = await open(server.auth, false)
    const refused = await consumed.post('/foo/bar', body)
    expect([refused.status, errorCode(refused)]).toEqual([415, 'BA606'])
    expect(refused.text).toContain(advice)
    expect(server.store.dump().accessNonces).toEqual([])

    // The same request, its bytes kept this time, verifies: its nonce was not used up.
    const kept = await open(server.auth, true)
    const accepted = await kept.post('/foo/bar', body)
    expect(await verifiedReply(server.auth, accepted, nonce)).toEqual({
      wasFoo: 'bar',
      wasBar: 'foo',
    })
    expect(server.store.dump().accessNonces).toHaveLength(1)
    // And now it is: the same request again is a replay.
    const replay = await kept.post('/foo/bar', body)
    expect([replay.status, errorCode(replay)]).toEqual([401, 'BA304'])
  })

  it('verifies the re-serialized body under allowReserializedBody: true, warning once', async () => {
    const printed = jest.spyOn(console, 'warn').mockImplementation(() => undefined)
    try {
      // The default logger: warnings print on stderr.
      const server = makeServer({ allowReserializedBody: true, logger: undefined })
      const { key, token } = await session(server)
      const consumed = await open(server.auth, false)
      for (let i = 0; i < 3; i++) {
        const nonce = newNonce()
        const reply = await consumed.post(
          '/foo/bar',
          accessBody(token, key, { at: server.clock.ms, nonce })
        )
        expect(await verifiedReply(server.auth, reply, nonce)).toEqual({
          wasFoo: 'bar',
          wasBar: 'foo',
        })
      }
      const lines = printed.mock.calls.map(call => String(call[0]))
      const reserialized = lines.filter(line => line.includes('re-serialized'))
      expect(reserialized).toHaveLength(1)
      expect(reserialized[0]).not.toContain('\n')
      expect(reserialized[0]).toContain(advice)
    } finally {
      printed.mockRestore()
    }
  })
})
