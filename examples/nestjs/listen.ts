/**
 * Serves the NestJS example (`make example-nestjs`; `make example-nestjs-fastify` passes
 * `fastify`). The module and `bootstrap` live in ./main and ./fastify, which only define them, so
 * they can be imported from CommonJS or ES modules without listening.
 */
import { gracefulShutdown } from 'better-auth-protocol/node'
import { bootstrap } from './main'
import { bootstrap as bootstrapFastify } from './fastify'

const port = Number(process.env.PORT ?? 8080)
const host = process.env.HOST ?? '127.0.0.1'
const fastify = process.argv[2] === 'fastify'
void (fastify ? bootstrapFastify : bootstrap)(port, host).then(app => {
  console.log(`NestJS${fastify ? ' (Fastify)' : ''} example on http://${host}:${port}`)
  // SIGTERM / SIGINT: finish the requests in flight (10 s at most), then app.close() (which
  // closes the store), exit 0.
  gracefulShutdown(app.getHttpServer(), { onClose: () => app.close() })
})
