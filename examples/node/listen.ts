/**
 * Serves the node:http example (`make example-node`). The server lives in ./server, which only
 * builds it, so it can be imported from CommonJS or ES modules without listening.
 */
import { server } from './server'

const port = Number(process.env.PORT ?? 8080)
const host = process.env.HOST ?? '127.0.0.1'
void server
  .listen(port, host)
  .then(() => console.log(`node:http example on http://${host}:${port}`))
// SIGTERM / SIGINT: finish the requests in flight (10 s at most), close the store, exit 0.
server.closeOnSignals()
