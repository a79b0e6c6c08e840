/**
 * Serves the fetch example on node:http (`make example-fetch`). The handlers live in ./server,
 * which only builds them, so it can be imported from CommonJS or ES modules without listening.
 */
import { createServer } from 'node:http'
import { handleClientErrors } from 'better-auth-protocol/fetch'
import { gracefulShutdown } from 'better-auth-protocol/node'
import { auth, listener } from './server'

const port = Number(process.env.PORT ?? 8080)
const host = process.env.HOST ?? '127.0.0.1'
const server = handleClientErrors(createServer(listener)).listen(port, host, () =>
  console.log(`fetch example on http://${host}:${port}`)
)
// SIGTERM / SIGINT: finish the requests in flight (10 s at most), close the store, exit 0.
gracefulShutdown(server, { onClose: () => auth.close() })
