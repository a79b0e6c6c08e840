/**
 * NestJS 11 on its Express platform: a bare controller method (`@Body()` parsed by Nest's JSON
 * parser, returning an object) and the same method behind the NestJS adapter's
 * `@BetterAuthAccess()` (its guard verifies, its interceptor signs the return value).
 */
import 'reflect-metadata'
import type { AddressInfo } from 'node:net'
import { Body, Controller, HttpCode, Module, Post } from '@nestjs/common'
import { NestFactory } from '@nestjs/core'
import type { NestExpressApplication } from '@nestjs/platform-express'
import { BetterAuthAccess, BetterAuthModule } from '../../adapters/nestjs'
import type { BetterAuthServer } from '../../src'
import {
  bareEnvelope,
  benchAuth,
  fooBar,
  storeStats,
  type Attributes,
  type FooBar,
  type Start,
} from './common'

@Controller()
class BenchController {
  @Post('bare')
  @HttpCode(200)
  bare(@Body() body: unknown): object {
    return bareEnvelope(body)
  }

  @Post('foo/bar')
  @HttpCode(200)
  @BetterAuthAccess()
  fooBar(@Body() body: FooBar): object {
    return fooBar(body)
  }
}

export function appModule(auth: BetterAuthServer<Attributes>) {
  @Module({
    imports: [BetterAuthModule.forRoot({ auth: auth as BetterAuthServer<unknown> })],
    controllers: [BenchController],
  })
  class BenchModule {}
  return BenchModule
}

export const start: Start = async port => {
  const { auth, store } = benchAuth()
  await auth.ready()
  // rawBody: the guard checks signatures over exactly the bytes received.
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
