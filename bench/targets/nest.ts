/**
 * NestJS 11 on its Express platform: a bare controller method (`@Body()` parsed by Nest's JSON
 * parser, returning an object) and the same method behind the NestJS adapter's
 * `@BetterAuthAccess()` (its guard verifies and has Nest's HTTP adapter sign the return value).
 * Served through `expressServerAdapter(new ExpressAdapter())`, as docs/performance.md advises;
 * BENCH_NEST_SERVER=plain measures Nest's own server (`NestFactory.create(module)`) instead.
 */
import 'reflect-metadata'
import type { AddressInfo } from 'node:net'
import { Body, Controller, HttpCode, Module, Post } from '@nestjs/common'
import { NestFactory, type AbstractHttpAdapter } from '@nestjs/core'
import { ExpressAdapter } from '@nestjs/platform-express'
import { BetterAuthAccess, BetterAuthModule, expressServerAdapter } from '../../adapters/nestjs'
import type { BetterAuthServer } from '../../src'
import {
  bareEnvelope,
  benchAuth,
  fooBar,
  storeStats,
  type Attributes,
  type FooBar,
  type Running,
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

function appModule(auth: BetterAuthServer<Attributes>) {
  @Module({
    imports: [BetterAuthModule.forRoot({ auth: auth as BetterAuthServer<unknown> })],
    controllers: [BenchController],
  })
  class BenchModule {}
  return BenchModule
}

/** The app on Nest's Express platform, or on the platform `adapter` gives (Fastify). */
export async function startNest(port: number, adapter?: AbstractHttpAdapter): Promise<Running> {
  const { auth, store } = benchAuth()
  await auth.ready()
  // rawBody: the guard checks signatures over exactly the bytes received.
  const options = { logger: false as const, rawBody: true }
  const module = appModule(auth)
  const app =
    adapter === undefined
      ? await NestFactory.create(module, options)
      : await NestFactory.create(module, adapter, options)
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

export const start: Start = port =>
  process.env.BENCH_NEST_SERVER === 'plain'
    ? startNest(port)
    : startNest(port, expressServerAdapter(new ExpressAdapter()))
