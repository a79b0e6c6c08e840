/**
 * `make example-web`: the web demo of ./server on a port. That module only builds the app, so it
 * can be imported from CommonJS or ES modules without listening.
 */
import { createStoreFromEnv } from '../../src'
import { createWebDemo } from './server'

const port = Number(process.env.PORT ?? 8080)
const host = process.env.HOST ?? '127.0.0.1'
createStoreFromEnv(process.env, { database: 'memory:' })
  .then(async store => {
    const { app, auth } = await createWebDemo({ store })
    await auth.ready()
    const server = app.listen(port, host, () => {
      console.log(`better-auth web demo on http://${host}:${port}`)
    })
    const stop = () => server.close(() => auth.close().finally(() => process.exit(0)))
    process.on('SIGINT', stop)
    process.on('SIGTERM', stop)
  })
  .catch(error => {
    console.error(error)
    process.exit(1)
  })
