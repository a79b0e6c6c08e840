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
import { AppModule, cors } from './main'

export async function bootstrap(port: number, host: string): Promise<NestFastifyApplication> {
  // rawBody: Fastify's JSON parser keeps the bytes, so signatures are checked over exactly them.
  // Requests Fastify's parser refuses get the protocol error body too.
  const adapter = new FastifyAdapter({ clientErrorHandler: fastifyClientErrorHandler })
  const app = await NestFactory.create<NestFastifyApplication>(AppModule, adapter, {
    rawBody: true,
  })
  app.enableCors(cors)
  // Header-form routes take any body (docs/http-binding.md): a body of a type Fastify has no
  // parser for, or of no type, reaches the route as its bytes, which Content-Digest covers.
  app
    .getHttpAdapter()
    .getInstance()
    .addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body))
  // Every failure (an unknown route, a malformed or oversized body) gets the protocol error body.
  app.useGlobalFilters(
    new BetterAuthExceptionFilter(app.get(HttpAdapterHost), app.get(BetterAuthServer))
  )
  await app.listen(port, host)
  handleClientErrors(app.getHttpServer()) // CONNECT gets 405 BA605 too
  return app
}
