/**
 * Runs examples/deployment.ts: `auth` (the auth server) or `resource` (the resource server).
 * That module only defines the servers, so it can be imported from CommonJS or ES modules.
 *
 *   PORT=8080 npx tsx examples/deployment-listen.ts auth
 */
import { gracefulShutdown } from 'better-auth-protocol/node'
import { authServer, resourceServer } from './deployment'

const role = process.argv[2]
const port = Number(process.env.PORT ?? 8080)
const start = async () => {
  if (role === 'auth') return authServer()
  if (role === 'resource') {
    const { Redis } = await import('ioredis')
    const authUrl = process.env.AUTH_URL ?? 'http://127.0.0.1:8080'
    const key = await (await fetch(`${authUrl}/key/response`)).text() // pin it in production
    return resourceServer(authUrl, key, new Redis(process.env.BETTER_AUTH_REDIS ?? ''))
  }
  throw new Error('usage: deployment-listen.ts auth|resource')
}
start()
  .then(({ app, auth }) => {
    const server = app.listen(port, '127.0.0.1', () => console.log(`${role} on :${port}`))
    // SIGTERM / SIGINT: stop accepting, answer what is in flight, close the stores, exit 0.
    gracefulShutdown(server, { onClose: () => auth.close() })
  })
  .catch(error => {
    console.error(error)
    process.exit(1)
  })
