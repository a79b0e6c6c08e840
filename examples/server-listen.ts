/**
 * `make server`: the conformance server of examples/server.ts on a port. That module only
 * defines the server, so it can be imported from CommonJS or ES modules without listening.
 */
import { createStoreFromEnv } from '../src'
import { lineLogger } from '../adapters/node'
import { createConformanceServer } from './server'

const port = Number(process.env.PORT ?? 8080)
const host = process.env.HOST ?? '127.0.0.1'
createStoreFromEnv(process.env, { database: 'sqlite:./better-auth.db' })
  .then(async store => {
    const logger = lineLogger()
    const { server, auth } = createConformanceServer({ store, logger })
    await auth.ready()
    await server.listen(port, host)
    // SIGTERM / SIGINT: graceful close, then auth.close(), then exit 0.
    server.closeOnSignals({ logger })
    console.log(`better-auth conformance server on http://${host}:${port}`)
    console.log(`response key: ${await auth.responsePublicKey()}`)
  })
  .catch((error: unknown) => {
    console.error(`better-auth conformance server: ${(error as Error).message ?? error}`)
    process.exit(1)
  })
