/**
 * The NestJS example's module on Nest's Fastify platform.
 *
 *   make example-nestjs-fastify   # http://127.0.0.1:8080 (PORT, HOST)
 */
import 'reflect-metadata'
import { HttpAdapterHost, NestFactory } from '@nestjs/core'
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify'
import {
  BetterAuthExceptionFilter,
  BetterAuthServer,
  fastifyClientErrorHandler,
  handleClientErrors,
} from 'better-auth-protocol/nestjs'
import { gracefulShutdown } from 'better-auth-protocol/node'
import { AppModule } from './main'

export async function bootstrap(port: number, host: string): Promise<NestFastifyApplication> {
  // rawBody: Fastify's JSON parser keeps the bytes, so signatures are checked over exactly them.
  // Requests Fastify's parser refuses get the protocol error body too.
  const adapter = new FastifyAdapter({ clientErrorHandler: fastifyClientErrorHandler })
  const app = await NestFactory.create<NestFastifyApplication>(AppModule, adapter, {
    rawBody: true,
  })
  // Every failure (an unknown route, a malformed or oversized body) gets the protocol error body.
  app.useGlobalFilters(
    new BetterAuthExceptionFilter(app.get(HttpAdapterHost), app.get(BetterAuthServer))
  )
  await app.listen(port, host)
  handleClientErrors(app.getHttpServer()) // CONNECT gets 405 BA605 too
  return app
}

if (require.main === module) {
  const port = Number(process.env.PORT ?? 8080)
  const host = process.env.HOST ?? '127.0.0.1'
  void bootstrap(port, host).then(app => {
    console.log(`NestJS (Fastify) example on http://${host}:${port}`)
    // SIGTERM / SIGINT: finish the requests in flight (10 s at most), then app.close(), exit 0.
    gracefulShutdown(app.getHttpServer(), { onClose: () => app.close() })
  })
}
