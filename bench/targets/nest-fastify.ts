/** The NestJS target's module on Nest's Fastify platform: the same bare and protected routes. */
import { FastifyAdapter } from '@nestjs/platform-fastify'
import type { Start } from './common'
import { startNest } from './nest'

export const start: Start = port => startNest(port, new FastifyAdapter())
