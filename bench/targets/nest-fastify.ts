/** The NestJS target's module on Nest's Fastify platform: the same bare and protected routes. */
import 'reflect-metadata'
import type { AddressInfo } from 'node:net'
import { NestFactory } from '@nestjs/core'
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify'
import { benchAuth, storeStats, type Start } from './common'
import { appModule } from './nest'

export const start: Start = async port => {
  const { auth, store } = benchAuth()
  await auth.ready()
  // rawBody: Fastify's JSON parser keeps the bytes the guard verifies.
  const app = await NestFactory.create<NestFastifyApplication>(
    appModule(auth),
    new FastifyAdapter(),
    { logger: false, rawBody: true }
  )
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
