/**
 * Serves the Express example (`make example-express`). The app lives in ./server, which only
 * builds it, so it can be imported from CommonJS or ES modules without listening.
 */
import { createServer } from 'node:http'
import { expressServerOptions, handleClientErrors } from 'better-auth-protocol/express'
import { gracefulShutdown } from 'better-auth-protocol/node'
import { app, auth } from './server'

const port = Number(process.env.PORT ?? 8080)
const host = process.env.HOST ?? '127.0.0.1'
// Requests and responses built with the app's own prototypes (docs/performance.md, "Deployment
// advice"); `app.listen(port, host)` serves the same app.
const server = createServer(expressServerOptions(app), app)
server.listen(port, host, () => console.log(`Express example on http://${host}:${port}`))
// SIGTERM / SIGINT: finish the requests in flight (10 s at most), close the store, exit 0.
handleClientErrors(server)
gracefulShutdown(server, { onClose: () => auth.close() })
