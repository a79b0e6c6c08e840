/**
 * The conformance server as an Express app (examples/express-conformance.ts) on a port:
 *
 *   PORT=8080 npx tsx examples/express-conformance-listen.ts   # HOST overrides 127.0.0.1
 */
import { createStoreFromEnv } from '../src'
import { createConformanceApp } from './express-conformance'

const port = Number(process.env.PORT ?? 8080)
const host = process.env.HOST ?? '127.0.0.1'
createStoreFromEnv(process.env, { database: 'sqlite:./better-auth.db' })
  .then(async store => {
    const { app, auth } = createConformanceApp({ store })
    await auth.ready()
    const server = app.listen(port, host, () => {
      console.log(`better-auth conformance server (Express) on http://${host}:${port}`)
    })
    console.log(`response key: ${await auth.responsePublicKey()}`)
    const stop = () => server.close(() => auth.close().finally(() => process.exit(0)))
    process.on('SIGINT', stop)
    process.on('SIGTERM', stop)
  })
  .catch(error => {
    console.error(error)
    process.exit(1)
  })
