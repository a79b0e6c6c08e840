/**
 * A Nest application for the adapter tests, on either platform: compiled from the given modules
 * and controllers, initialised (Fastify ready), and served to supertest.
 */
import { type INestApplication } from '@nestjs/common'
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify'
import { Test } from '@nestjs/testing'
import { supertestTarget, type Target } from './contract'

export type Platform = 'express' | 'fastify'

export async function startNest(
  imports: unknown[],
  controllers: unknown[],
  rawBody = true,
  platform: Platform = 'express'
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
    await fastify.init()
    await fastify.getHttpAdapter().getInstance().ready()
    app = fastify
  } else {
    app = moduleRef.createNestApplication({ rawBody, logger: false })
    await app.init()
  }
  return { app, target: supertestTarget(app.getHttpServer(), () => app.close()) }
}
