/** The NestJS adapter, on Nest's Express platform and on its Fastify platform. */
import 'reflect-metadata'
import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Inject,
  Injectable,
  Module,
  Param,
  Post,
  Put,
  Req,
  StreamableFile,
  type ExecutionContext,
  type INestApplication,
} from '@nestjs/common'
import { Test } from '@nestjs/testing'
import {
  AccessData,
  AllowAnonymous,
  BETTER_AUTH_OPTIONS,
  BetterAuthAccess,
  BetterAuthGuard,
  BetterAuthModule,
  BetterAuthServer,
  BetterAuthUnauthorizedException,
  InjectBetterAuth,
  OptionalAccess,
  Principal,
  type BetterAuthModuleOptions,
} from '../../adapters/nestjs'
import type { AccessPrincipal } from '../../src'
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
import { startNest } from './nest-app'
import { Readable } from 'node:stream'
import { streamedChunks } from '../../testing/header-contract'

interface FooBar {
  foo: string
  bar: string
}

const canDelete = (p: AccessPrincipal<unknown, unknown>) =>
  permitsDelete(p.attributes as Attributes)

@Controller()
class ContractController {
  @Post('foo/bar')
  @HttpCode(200)
  @BetterAuthAccess()
  fooBar(@AccessData() data: FooBar) {
    return { wasFoo: data.foo, wasBar: data.bar }
  }

  @Post('admin/delete')
  @HttpCode(200)
  @BetterAuthAccess({ authorize: canDelete })
  remove() {
    return { deleted: true }
  }

  @Post('optional')
  @HttpCode(200)
  @BetterAuthAccess({ credentialsRequired: false })
  optional(@Principal('identity') identity: string | undefined) {
    return { identity: identity ?? null }
  }

  @Get('public')
  open() {
    return { public: true }
  }

  @Post('public')
  @HttpCode(200)
  echo(@Body() body: unknown) {
    return { echo: body }
  }
}

/** The routes of the header-form contract (besides `POST /foo/bar`). */
@Controller()
class HeaderFormController {
  @Get('items')
  @BetterAuthAccess()
  items(@Principal('identity') identity: string, @Req() req: { url: string }) {
    const url = req.url
    return { identity, query: url.slice(url.indexOf('?')) || '?' }
  }

  @Delete('notes/:id')
  @HttpCode(200)
  @BetterAuthAccess({ binding: 'headers' })
  remove(@Param('id') id: string) {
    return { deleted: id }
  }

  @Put('notes/:id')
  @HttpCode(200)
  @BetterAuthAccess({ binding: 'headers' })
  put(@Param('id') id: string, @Body() body: unknown) {
    return { id, body }
  }

  @Get('stream')
  @BetterAuthAccess({ binding: 'headers' })
  stream() {
    return new StreamableFile(Readable.from(streamedChunks()), { type: 'text/plain' })
  }
}

/** The same routes protected by the global guard instead of per-route decorators. */
@Controller()
class GlobalController {
  @Post('foo/bar')
  @HttpCode(200)
  fooBar(@Body() data: FooBar) {
    return { wasFoo: data.foo, wasBar: data.bar }
  }

  @Post('admin/delete')
  @HttpCode(200)
  @BetterAuthAccess({ authorize: canDelete })
  remove() {
    return { deleted: true }
  }

  @Post('optional')
  @HttpCode(200)
  @OptionalAccess()
  optional(@Principal() principal: AccessPrincipal | undefined) {
    return { identity: principal?.identity ?? null }
  }

  @Get('public')
  @AllowAnonymous()
  open() {
    return { public: true }
  }

  @Post('public')
  @HttpCode(200)
  @AllowAnonymous()
  echo(@Body() body: unknown) {
    return { echo: body }
  }
}

const options = (auth: BetterAuthServer<unknown>): BetterAuthModuleOptions => ({
  auth,
  prefix: '/auth',
  openapi: true,
})

for (const [name, rawBody, platform] of [
  ['NestJS', true, 'express'],
  ['NestJS without rawBody (re-serialized bodies)', false, 'express'],
  ['NestJS on Fastify', true, 'fastify'],
  ['NestJS on Fastify without rawBody (re-serialized bodies)', false, 'fastify'],
  ['NestJS on expressServerAdapter', true, 'express-own'],
] as const) {
  adapterContract(name, async core => {
    const { target } = await startNest(
      [BetterAuthModule.forRoot(options(core as BetterAuthServer<unknown>))],
      [ContractController],
      rawBody,
      platform
    )
    return target
  })
}

for (const [name, rawBody, platform] of [
  ['NestJS', true, 'express'],
  ['NestJS on Fastify', true, 'fastify'],
  ['NestJS on Fastify without rawBody (re-serialized bodies)', false, 'fastify'],
  ['NestJS on expressServerAdapter', true, 'express-own'],
] as const) {
  headerFormContract(name, async core => {
    const { target } = await startNest(
      [BetterAuthModule.forRoot(options(core as BetterAuthServer<unknown>))],
      [ContractController, HeaderFormController],
      rawBody,
      platform,
      true
    )
    return target
  })
}

adapterContract('NestJS on Fastify, global guard', async core => {
  const { target } = await startNest(
    [
      BetterAuthModule.forRoot({
        ...options(core as BetterAuthServer<unknown>),
        globalGuard: true,
      }),
    ],
    [GlobalController],
    true,
    'fastify'
  )
  return target
})

adapterContract('NestJS global guard, forRootAsync', async core => {
  @Injectable()
  class Config {
    get = () => options(core as BetterAuthServer<unknown>)
  }
  @Module({ providers: [Config], exports: [Config] })
  class ConfigModule {}
  const { target } = await startNest(
    [
      BetterAuthModule.forRootAsync({
        imports: [ConfigModule],
        inject: [Config],
        useFactory: (config: Config) => config.get(),
        globalGuard: true,
      }),
    ],
    [GlobalController]
  )
  return target
})

describe('NestJS: Nest specifics', () => {
  let server: TestServer
  let app: INestApplication | undefined
  beforeEach(() => {
    server = makeServer()
  })
  afterEach(async () => {
    await app?.close()
    app = undefined
  })
  const now = () => server.clock.ms
  const core = () => server.auth as BetterAuthServer<unknown>

  it('verifies over the exact bytes with rawBody: true', async () => {
    const started = await startNest(
      [BetterAuthModule.forRoot(options(core()))],
      [ContractController]
    )
    app = started.app
    const { key, token } = await session(server)
    const { body, nonce } = numericKeyBody(token, key, now())
    const reply = await started.target.post('/foo/bar', body)
    expect(await verifiedReply(server.auth, reply, nonce)).toEqual({ wasFoo: 'bar', wasBar: 'foo' })
  })

  it('on Fastify: verifies over the exact bytes, answers endpoints, sets WWW-Authenticate', async () => {
    const started = await startNest(
      [BetterAuthModule.forRoot(options(core()))],
      [ContractController],
      true,
      'fastify'
    )
    app = started.app
    expect(app.getHttpAdapter().getType()).toBe('fastify')
    const key = await started.target.post('/auth/key/response', '')
    expect([key.status, key.text]).toEqual([200, await server.auth.responsePublicKey()])
    const { key: signer, token } = await session(server)
    const { body, nonce } = numericKeyBody(token, signer, now())
    const reply = await started.target.post('/foo/bar', body)
    expect(reply.headers['content-type']).toMatch(/^application\/json/)
    expect(await verifiedReply(server.auth, reply, nonce)).toEqual({ wasFoo: 'bar', wasBar: 'foo' })
    const missing = await started.target.post('/foo/bar', undefined, {})
    expect([missing.status, errorCode(missing)]).toEqual([401, 'BA404'])
    expect(missing.headers['www-authenticate']).toBe('BetterAuth error="BA404"')
  })

  it('provides the core and the options, builds a core from options when none is given', async () => {
    @Controller()
    class Probe {
      constructor(
        @InjectBetterAuth() readonly auth: BetterAuthServer<unknown>,
        @Inject(BETTER_AUTH_OPTIONS) readonly options: BetterAuthModuleOptions
      ) {}
      @Post('key')
      @HttpCode(200)
      async key() {
        return { key: await this.auth.responsePublicKey(), prefix: this.options.prefix ?? null }
      }
    }
    const started = await startNest(
      [BetterAuthModule.forRoot({ keys: { env: false }, isGlobal: false })],
      [Probe]
    )
    app = started.app
    const probe = JSON.parse((await started.target.post('/key', '{}')).text) as { key: string }
    const served = await started.target.post('/key/response', '')
    expect(served.text).toBe(probe.key)
    expect(probe).toEqual({ key: expect.stringMatching(/^1AAI/), prefix: null })
  })

  it("mounts the endpoints under Nest's global prefix and the module prefix", async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [BetterAuthModule.forRoot(options(core()))],
      controllers: [ContractController],
    }).compile()
    app = moduleRef.createNestApplication({ rawBody: true, logger: false })
    app.setGlobalPrefix('api')
    await app.init()
    const target = supertestTarget(app.getHttpServer())
    const key = await target.post('/api/auth/key/response', '')
    expect([key.status, key.text]).toEqual([200, await server.auth.responsePublicKey()])
    expect((await target.post('/auth/key/response', '')).status).toBe(404)
    const { key: signer, token } = await session(server)
    const reply = await target.post('/api/foo/bar', accessBody(token, signer, { at: now() }))
    expect(reply.status).toBe(200)
  })

  it('useClass options factory, and endpoints can be turned off', async () => {
    @Injectable()
    class Factory {
      create = (): BetterAuthModuleOptions => ({ auth: core(), endpoints: false })
    }
    const started = await startNest(
      [BetterAuthModule.forRootAsync({ useClass: Factory })],
      [ContractController]
    )
    app = started.app
    expect((await started.target.post('/key/response', '')).status).toBe(404)
    const { key, token } = await session(server)
    expect(
      (await started.target.post('/foo/bar', accessBody(token, key, { at: now() }))).status
    ).toBe(200)
  })

  it('throws Nest exceptions carrying the code; a subclass may override handleRequest', async () => {
    const seen: unknown[] = []
    @Injectable()
    class LenientGuard extends BetterAuthGuard {
      override handleRequest(
        error: unknown,
        principal: AccessPrincipal<unknown, unknown> | undefined,
        context: ExecutionContext
      ) {
        try {
          return super.handleRequest(error, principal, context)
        } catch (exception) {
          seen.push(exception)
          return undefined // let it through anonymously
        }
      }
    }
    @Controller()
    class Lenient {
      @Post('lenient')
      @HttpCode(200)
      @BetterAuthAccess()
      lenient(@Principal() principal: AccessPrincipal | undefined) {
        return { anonymous: principal === undefined }
      }
    }
    const moduleRef = await Test.createTestingModule({
      imports: [BetterAuthModule.forRoot(options(core()))],
      controllers: [Lenient],
    })
      .overrideGuard(BetterAuthGuard)
      .useClass(LenientGuard)
      .compile()
    app = moduleRef.createNestApplication({ rawBody: true, logger: false })
    await app.init()
    const target = supertestTarget(app.getHttpServer())
    const reply = await target.post('/lenient', undefined, {})
    expect(JSON.parse(reply.text)).toEqual({ anonymous: true })
    expect(seen[0]).toBeInstanceOf(BetterAuthUnauthorizedException)
    expect(seen[0]).toMatchObject({ code: 'BA404' })
    expect((seen[0] as BetterAuthUnauthorizedException).getResponse()).toEqual({
      error: { code: 'BA404', message: 'an access request is required' },
    })
  })

  it('applies the module authorize to every protected route, and signs 201 replies', async () => {
    @Controller()
    class Notes {
      @Post('notes')
      @BetterAuthAccess()
      create(@AccessData('foo') foo: string, @Principal('device') device: string) {
        return { foo, device }
      }
    }
    const started = await startNest(
      [
        BetterAuthModule.forRoot({
          ...options(core()),
          authorize: (p, context) =>
            context.switchToHttp().getRequest<{ headers: Record<string, string> }>().headers[
              'x-tenant'
            ] === 'a' && p.identity.length === 44,
        }),
      ],
      [Notes]
    )
    app = started.app
    const { key, token } = await session(server)
    const nonce = newNonce()
    const ok = await started.target.post('/notes', accessBody(token, key, { at: now(), nonce }), {
      'content-type': 'application/json',
      'x-tenant': 'a',
    })
    expect(ok.status).toBe(201)
    expect((await verifiedReply(server.auth, ok, nonce)).foo).toBe('bar')
    const denied = await started.target.post('/notes', accessBody(token, key, { at: now() }), {
      'content-type': 'application/json',
      'x-tenant': 'b',
    })
    expect([denied.status, errorCode(denied)]).toEqual([403, 'BA306'])
  })

  it("runs the controller's authorize too when a handler has its own @BetterAuthAccess()", async () => {
    @Controller()
    @BetterAuthAccess({ authorize: () => false })
    class Locked {
      @Post('locked')
      @HttpCode(200)
      @BetterAuthAccess()
      read() {
        return { read: true }
      }
    }
    const started = await startNest([BetterAuthModule.forRoot(options(core()))], [Locked])
    app = started.app
    const { key, token } = await session(server)
    const denied = await started.target.post('/locked', accessBody(token, key, { at: now() }))
    expect([denied.status, errorCode(denied)]).toEqual([403, 'BA306'])
  })

  it('takes the core per-route options: checkRevocation and rateLimit', async () => {
    @Controller()
    class Routes {
      @Post('revocable')
      @HttpCode(200)
      @BetterAuthAccess({ checkRevocation: { cacheMs: 0 } })
      revocable() {
        return { ok: true }
      }

      @Post('limited')
      @HttpCode(200)
      @BetterAuthAccess({ rateLimit: { identity: { points: 1, duration: 60 } } })
      limited() {
        return { ok: true }
      }
    }
    const started = await startNest([BetterAuthModule.forRoot(options(core()))], [Routes])
    app = started.app
    // The session helper's device was never registered: the revocation check refuses it.
    const { key, token } = await session(server)
    const revoked = await started.target.post('/revocable', accessBody(token, key, { at: now() }))
    expect([revoked.status, errorCode(revoked)]).toEqual([401, 'BA301'])
    const first = await started.target.post('/limited', accessBody(token, key, { at: now() }))
    const second = await started.target.post('/limited', accessBody(token, key, { at: now() }))
    expect([first.status, second.status, errorCode(second)]).toEqual([200, 429, 'BA601'])
  })
})
