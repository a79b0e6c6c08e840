/**
 * NestJS 11 on its Express platform: a bare controller method (`@Body()` parsed by Nest's JSON
 * parser, returning an object) and the same method behind a guard and an interceptor.
 *
 * TODO(adapters/nestjs): the guard, interceptor and filter below use the core API directly
 * (`verifyAccess` + `respond`) until the NestJS adapter lands; then switch to it. Nothing here
 * relies on constructor injection, so it runs under tsx (which emits no decorator metadata).
 */
import 'reflect-metadata'
import type { AddressInfo } from 'node:net'
import {
  Body,
  Catch,
  Controller,
  HttpCode,
  Module,
  Post,
  Req,
  UseFilters,
  UseGuards,
  UseInterceptors,
  type ArgumentsHost,
  type CallHandler,
  type CanActivate,
  type ExceptionFilter,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common'
import { NestFactory } from '@nestjs/core'
import type { NestExpressApplication } from '@nestjs/platform-express'
import type { Request, Response } from 'express'
import { from, mergeMap, type Observable } from 'rxjs'
import { BetterAuthError, type AccessPrincipal, type BetterAuthServer } from '../../src'
import {
  bareEnvelope,
  benchAuth,
  fooBar,
  storeStats,
  type Attributes,
  type FooBar,
  type Start,
} from './common'

type AuthedRequest = Request & {
  rawBody?: Buffer
  betterAuth: AccessPrincipal<Attributes, FooBar>
}

class AccessGuard implements CanActivate {
  constructor(private readonly auth: BetterAuthServer<Attributes>) {}
  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<AuthedRequest>()
    req.betterAuth = await this.auth.verifyAccess<FooBar>(req.rawBody ?? '', {
      ip: req.ip,
      path: req.path,
    })
    return true
  }
}

class SignInterceptor implements NestInterceptor {
  constructor(private readonly auth: BetterAuthServer<Attributes>) {}
  intercept(context: ExecutionContext, next: CallHandler): Observable<string> {
    const http = context.switchToHttp()
    const req = http.getRequest<AuthedRequest>()
    const res = http.getResponse<Response>()
    return next.handle().pipe(
      mergeMap(data => {
        res.type('application/json')
        return from(this.auth.respond(req.betterAuth.nonce, data))
      })
    )
  }
}

function errorFilter(auth: BetterAuthServer<Attributes>): ExceptionFilter {
  @Catch(BetterAuthError)
  class BetterAuthErrorFilter implements ExceptionFilter {
    catch(error: BetterAuthError, host: ArgumentsHost): void {
      const result = auth.errorResult(error)
      host
        .switchToHttp()
        .getResponse<Response>()
        .status(result.status)
        .set(result.headers)
        .send(result.body)
    }
  }
  return new BetterAuthErrorFilter()
}

function appModule(auth: BetterAuthServer<Attributes>) {
  @Controller()
  class BenchController {
    @Post('bare')
    @HttpCode(200)
    bare(@Body() body: unknown): object {
      return bareEnvelope(body)
    }

    @Post('foo/bar')
    @HttpCode(200)
    @UseGuards(new AccessGuard(auth))
    @UseInterceptors(new SignInterceptor(auth))
    @UseFilters(errorFilter(auth))
    fooBar(@Req() req: AuthedRequest): object {
      return fooBar(req.betterAuth.request)
    }
  }

  @Module({ controllers: [BenchController] })
  class BenchModule {}
  return BenchModule
}

export const start: Start = async port => {
  const { auth, store } = benchAuth()
  await auth.ready()
  const app = await NestFactory.create<NestExpressApplication>(appModule(auth), {
    logger: false,
    rawBody: true,
  })
  await app.listen(port, '127.0.0.1')
  return {
    port: (app.getHttpServer().address() as AddressInfo).port,
    close: async () => {
      await app.close()
      await auth.close()
    },
    stats: () => storeStats(store),
  }
}
