/**
 * NestJS: where the reply of a protected route is signed. The guard arranges it and Nest's HTTP
 * adapter signs the value it sends (after every interceptor of the app); the interceptor, when an
 * app still applies it, signs instead of the adapter, never twice. On both platforms.
 */
import 'reflect-metadata'
import { Readable } from 'node:stream'
import {
  Controller,
  Get,
  HttpCode,
  HttpException,
  Injectable,
  Post,
  Res,
  StreamableFile,
  UseInterceptors,
  type CallHandler,
  type ExecutionContext,
  type INestApplication,
  type NestInterceptor,
} from '@nestjs/common'
import { APP_INTERCEPTOR, HttpAdapterHost } from '@nestjs/core'
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify'
import { Test } from '@nestjs/testing'
import { map, type Observable } from 'rxjs'
import {
  BetterAuthAccess,
  BetterAuthExceptionFilter,
  BetterAuthInterceptor,
  BetterAuthModule,
  type BetterAuthServer,
} from '../../adapters/nestjs'
import { accessBody, nonce as newNonce, type TestServer } from '../helpers'
import {
  errorCode,
  makeServer,
  session,
  supertestTarget,
  verifiedReply,
  type Target,
} from './contract'

/** An app's own interceptor, registered globally: wraps every return value. */
@Injectable()
class Wrap implements NestInterceptor {
  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(map(data => ({ data })))
  }
}

/** What `@Res({ passthrough: true })` gives on both platforms. */
interface HeaderSetter {
  header(name: string, value: string): unknown
}

@Controller()
class Routes {
  @Post('text')
  @HttpCode(200)
  @BetterAuthAccess()
  text() {
    return 'plain'
  }

  @Post('twice')
  @HttpCode(200)
  @BetterAuthAccess()
  @UseInterceptors(BetterAuthInterceptor)
  twice() {
    return { once: true }
  }

  @Post('passthrough')
  @HttpCode(200)
  @BetterAuthAccess()
  passthrough(@Res({ passthrough: true }) res: HeaderSetter) {
    res.header('x-extra', 'yes')
    return { passthrough: true }
  }

  @Post('teapot')
  @BetterAuthAccess()
  teapot(): never {
    throw new HttpException({ teapot: true }, 418)
  }

  @Post('file')
  @HttpCode(200)
  @BetterAuthAccess()
  file() {
    return new StreamableFile(Readable.from([Buffer.from('raw bytes')]), { type: 'text/plain' })
  }

  @Post('created')
  @BetterAuthAccess()
  created() {
    return { created: true }
  }

  @Get('open')
  open() {
    return { open: true }
  }
}

type Platform = 'express' | 'fastify'

async function start(
  core: BetterAuthServer<unknown>,
  platform: Platform,
  extra: { wrap?: boolean; filter?: boolean } = {}
): Promise<{ app: INestApplication; target: Target }> {
  const moduleRef = await Test.createTestingModule({
    imports: [BetterAuthModule.forRoot({ auth: core })],
    controllers: [Routes],
    providers: extra.wrap === true ? [{ provide: APP_INTERCEPTOR, useClass: Wrap }] : [],
  }).compile()
  const app =
    platform === 'fastify'
      ? moduleRef.createNestApplication<NestFastifyApplication>(new FastifyAdapter(), {
          rawBody: true,
          logger: false,
        })
      : moduleRef.createNestApplication({ rawBody: true, logger: false })
  if (extra.filter === true) {
    app.useGlobalFilters(new BetterAuthExceptionFilter(app.get(HttpAdapterHost), core))
  }
  await app.init()
  if (platform === 'fastify') {
    await (app as NestFastifyApplication).getHttpAdapter().getInstance().ready()
  }
  return { app, target: supertestTarget(app.getHttpServer()) }
}

for (const platform of ['express', 'fastify'] as const) {
  describe(`NestJS on ${platform}: the signed reply`, () => {
    let server: TestServer
    let app: INestApplication | undefined
    beforeEach(() => {
      server = makeServer()
    })
    afterEach(async () => {
      await app?.close()
      app = undefined
    })
    const core = () => server.auth as BetterAuthServer<unknown>

    async function signedCall(target: Target, path: string) {
      const { key, token } = await session(server)
      const nonce = newNonce()
      const reply = await target.post(path, accessBody(token, key, { at: server.clock.ms, nonce }))
      return { reply, nonce }
    }

    it('signs a string the route returns, as a JSON string', async () => {
      const started = await start(core(), platform)
      app = started.app
      const { reply, nonce } = await signedCall(started.target, '/text')
      expect(await verifiedReply(server.auth, reply, nonce)).toBe('plain')
    })

    it("keeps the route's status and sends the envelope's type and length, with no ETag", async () => {
      const started = await start(core(), platform)
      app = started.app
      const { reply, nonce } = await signedCall(started.target, '/created')
      expect(reply.status).toBe(201) // Nest's default for POST
      expect(reply.headers['content-type']).toBe('application/json; charset=utf-8')
      expect(reply.headers['content-length']).toBe(String(Buffer.byteLength(reply.text)))
      expect(reply.headers.etag).toBeUndefined()
      expect(await verifiedReply(server.auth, reply, nonce)).toEqual({ created: true })
    })

    it('signs what the app sends: the value after its own interceptors', async () => {
      const started = await start(core(), platform, { wrap: true })
      app = started.app
      const { reply, nonce } = await signedCall(started.target, '/passthrough')
      expect(await verifiedReply(server.auth, reply, nonce)).toEqual({
        data: { passthrough: true },
      })
      expect(reply.headers['x-extra']).toBe('yes')
      expect(JSON.parse((await started.target.get('/open')).text)).toEqual({ data: { open: true } })
    })

    it('signs once when the route applies BetterAuthInterceptor as well', async () => {
      const started = await start(core(), platform)
      app = started.app
      const { reply, nonce } = await signedCall(started.target, '/twice')
      expect(await verifiedReply(server.auth, reply, nonce)).toEqual({ once: true })
    })

    it('leaves errors and files unsigned, and the exception filter still answers', async () => {
      const started = await start(core(), platform, { filter: true })
      app = started.app
      const teapot = (await signedCall(started.target, '/teapot')).reply
      expect([teapot.status, errorCode(teapot)]).toEqual([418, expect.stringMatching(/^BA/)])
      const file = (await signedCall(started.target, '/file')).reply
      expect([file.status, file.text]).toEqual([200, 'raw bytes'])
      const open = await started.target.get('/open')
      expect(JSON.parse(open.text)).toEqual({ open: true })
    })
  })
}
