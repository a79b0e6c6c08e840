/**
 * Better Auth on NestJS: a module for the protocol endpoints, a decorator for protected routes.
 *
 *   make example-nestjs           # http://127.0.0.1:8080 (PORT, HOST)
 */
import 'reflect-metadata'
import { storeFromEnv } from 'better-auth-protocol'
import { Body, Controller, Delete, Get, HttpCode, Module, Param, Post, Res } from '@nestjs/common'
import { HttpAdapterHost, NestFactory } from '@nestjs/core'
import { ExpressAdapter } from '@nestjs/platform-express'
import {
  BetterAuthAccess,
  BetterAuthExceptionFilter,
  BetterAuthModule,
  BetterAuthServer,
  InjectBetterAuth,
  Principal,
  expressServerAdapter,
  handleClientErrors,
} from 'better-auth-protocol/nestjs'

interface Attributes {
  permissionsByRole: Record<string, string[]>
}
interface FooBar {
  foo: string
  bar: string
}

/** What `@Res()` gives on both of Nest's platforms (Express's response, Fastify's reply). */
interface Reply {
  header(name: string, value: string): { send(body: string): unknown }
}

@Controller()
export class AppController {
  constructor(@InjectBetterAuth() private readonly auth: BetterAuthServer) {}

  // A protected route: `@Body()` is the verified request data and the return value is sent as a
  // signed response envelope echoing the request nonce.
  @Post('foo/bar')
  @HttpCode(200)
  @BetterAuthAccess()
  fooBar(@Body() body: FooBar) {
    return { wasFoo: body.foo, wasBar: body.bar }
  }

  // Authorization from the token's attributes: 403 (BA306) for anyone who may not write.
  @Post('notes')
  @BetterAuthAccess<Attributes>({
    authorize: ({ attributes }) => attributes.permissionsByRole.admin?.includes('write') === true,
  })
  createNote(@Body() note: { text: string }, @Principal('identity') identity: string) {
    return { saved: note.text, by: identity }
  }

  // Any method, any body: the access request in headers (HTTP Message Signatures), which
  // `client.fetch` sends. The reply goes out as returned, with its signature in headers.
  @Get('me')
  @BetterAuthAccess({ binding: 'headers' })
  me(@Principal('identity') identity: string, @Principal('device') device: string) {
    return { identity, device }
  }

  @Delete('notes/:id')
  @HttpCode(200)
  @BetterAuthAccess({ binding: 'headers' })
  deleteNote(@Param('id') id: string) {
    return { deleted: id }
  }

  // Routes without @BetterAuthAccess() stay as they were.
  @Get('health')
  health() {
    return { ok: true }
  }

  // Conformance (PROTOCOL.md §4): a reply echoing a wrong nonce, which clients must refuse.
  @Post('bad/nonce')
  @BetterAuthAccess()
  async badNonce(@Body() body: FooBar, @Res() res: Reply) {
    const nonce = this.auth.noncer.generate128()
    const reply = await this.auth.respond(nonce, { wasFoo: body.foo, wasBar: body.bar })
    res.header('content-type', 'application/json').send(reply)
  }
}

@Module({
  imports: [
    // The protocol endpoints (/account/create, /session/create, …, /key/response) and their
    // OpenAPI document; the core is injectable as BetterAuthServer.
    BetterAuthModule.forRoot<Attributes>({
      // State in SQLite (./better-auth.db), or BETTER_AUTH_DATABASE / BETTER_AUTH_REDIS.
      store: storeFromEnv(process.env, { database: 'sqlite:./better-auth.db' }),
      attributes: () => ({ permissionsByRole: { admin: ['read', 'write'] } }),
      openapi: true,
    }),
  ],
  controllers: [AppController],
})
export class AppModule {}

/**
 * CORS, on both platforms: browsers preflight header-form requests. The allowed origins only; the
 * header form's request headers allowed, the reply's signature exposed.
 */
export const cors = {
  origin: (process.env.ALLOWED_ORIGINS ?? 'http://localhost:5173').split(','),
  methods: ['GET', 'POST', 'DELETE'],
  allowedHeaders: [
    'authorization',
    'content-type',
    'content-digest',
    'signature',
    'signature-input',
  ],
  exposedHeaders: ['Signature', 'Signature-Input', 'Content-Digest'],
  maxAge: 600,
}

export async function bootstrap(port: number, host: string) {
  // Requests and responses built with Express's prototypes from the start: a third less CPU per
  // request (docs/performance.md, "Deployment advice"). rawBody: signatures are checked over
  // exactly the bytes the client sent.
  const adapter = expressServerAdapter(new ExpressAdapter())
  const app = await NestFactory.create(AppModule, adapter, { rawBody: true })
  app.enableCors(cors)
  // Every failure (an unknown route, a malformed or oversized body) gets the protocol error body.
  app.useGlobalFilters(
    new BetterAuthExceptionFilter(app.get(HttpAdapterHost), app.get(BetterAuthServer))
  )
  await app.listen(port, host)
  handleClientErrors(app.getHttpServer())
  return app
}
