/**
 * The conformance server (PROTOCOL.md §4) on the standalone node:http server: the protocol
 * endpoints at their default paths, `/key/response`, and two access-protected routes,
 * `/foo/bar` and `/bad/nonce`. (examples/express-conformance.ts is the same server on Express.)
 *
 *   make server            # http://127.0.0.1:8080 (PORT and HOST override)
 *
 * State and keys live in `./better-auth.db` (SQLite) unless `BETTER_AUTH_DATABASE` says
 * otherwise (`memory:`, `sqlite:PATH`, `postgres://…`); `BETTER_AUTH_REDIS` (`redis://…`) puts
 * challenges and nonces in Redis.
 */
import { createBetterAuth, createStoreFromEnv, type ServerStore } from '../src'
import { createServer } from '../adapters/node'

interface Attributes {
  permissionsByRole: Record<string, string[]>
}

interface FooBar {
  foo: unknown
  bar: unknown
}

export function createConformanceServer(options: { store?: ServerStore } = {}) {
  const auth = createBetterAuth<Attributes>({
    store: options.store,
    attributes: () => ({ permissionsByRole: { admin: ['read', 'write'] } }),
    // Conformance suites of every client implementation run back to back from one address;
    // a production server keeps the default limits.
    rateLimit: false,
  })
  const server = createServer(auth)

  server.protect<FooBar>('/foo/bar', ({ request }) => ({
    wasFoo: request.foo,
    wasBar: request.bar,
  }))

  // Answers with a nonce other than the request's: clients must reject the reply (BA203).
  server.route('/bad/nonce', async (body, _req, context) => {
    const { request } = await auth.verifyAccess<FooBar>(body, context)
    const reply = await auth.respond(auth.noncer.generate128(), {
      wasFoo: request.foo,
      wasBar: request.bar,
    })
    return { status: 200, headers: { 'content-type': 'application/json' }, body: reply }
  })

  return { server, auth }
}

if (require.main === module) {
  const port = Number(process.env.PORT ?? 8080)
  const host = process.env.HOST ?? '127.0.0.1'
  createStoreFromEnv(process.env, { database: 'sqlite:./better-auth.db' })
    .then(async store => {
      const { server, auth } = createConformanceServer({ store })
      await auth.ready()
      await server.listen(port, host)
      console.log(`better-auth conformance server on http://${host}:${port}`)
      console.log(`response key: ${await auth.responsePublicKey()}`)
      const stop = () => {
        server
          .close()
          .then(() => auth.close())
          .finally(() => process.exit(0))
      }
      process.on('SIGINT', stop)
      process.on('SIGTERM', stop)
    })
    .catch(error => {
      console.error(error)
      process.exit(1)
    })
}
