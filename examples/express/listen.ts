/**
 * Serves the Express example (`make example-express`). The app lives in ./server, which only
 * builds it, so it can be imported from CommonJS or ES modules without listening.
 */
import { handleClientErrors } from 'better-auth-protocol/express'
import { gracefulShutdown } from 'better-auth-protocol/node'
import { app, auth } from './server'

const port = Number(process.env.PORT ?? 8080)
const host = process.env.HOST ?? '127.0.0.1'
const server = app.listen(port, host, () =>
  console.log(`Express example on http://${host}:${port}`)
)
// SIGTERM / SIGINT: finish the requests in flight (10 s at most), close the store, exit 0.
handleClientErrors(server)
gracefulShutdown(server, { onClose: () => auth.close() })
