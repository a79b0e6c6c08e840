/**
 * A Nest application for the adapter tests, on either platform: compiled from the given modules
 * and controllers, initialised (Fastify ready), and served to supertest. With `protocolFilter`,
 * the protocol's exception filter is global, as the examples mount it.
 */
import { type INestApplication } from '@nestjs/common'
import { HttpAdapterHost } from '@nestjs/core'
import { ExpressAdapter } from '@nestjs/platform-express'
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify'
import { Test } from '@nestjs/testing'
import {
  BetterAuthExceptionFilter,
  BetterAuthServer,
  expressServerAdapter,
} from '../../adapters/nestjs'
import { supertestTarget, type Target } from './contract'

export type Platform = 'express' | 'fastify' | 'express-own'

export async function startNest(
  imports: unknown[],
  controllers: unknown[],
  rawBody = true,
  platform: Platform = 'express',
  protocolFilter = false
): Promise<{ app: INestApplication; target: Target }> {
  const moduleRef = await Test.createTestingModule({
    imports: imports as never[],
    controllers: controllers as never[],
  }).compile()
  let app: INestApplication
  if (platform === 'fastify') {
    const fastify = moduleRef.createNestApplication<NestFastifyApplication>(new FastifyAdapter(), {
      rawBody,
      logger: false,
    })
    if (protocolFilter) withFilter(fastify)
    await fastify.init()
    await fastify.getHttpAdapter().getInstance().ready()
    app = fastify
  } else {
    app =
      platform === 'express-own'
        ? moduleRef.createNestApplication(expressServerAdapter(new ExpressAdapter()), {
            rawBody,
            logger: false,
          })
        : moduleRef.createNestApplication({ rawBody, logger: false })
    if (protocolFilter) withFilter(app)
    await app.init()
  }
  return { app, target: supertestTarget(app.getHttpServer(), () => app.close()) }
}

function withFilter(app: INestApplication): void {
  app.useGlobalFilters(
    new BetterAuthExceptionFilter(app.get(HttpAdapterHost), app.get(BetterAuthServer))
  )
}
