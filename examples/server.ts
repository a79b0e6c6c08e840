/**
 * The conformance server (PROTOCOL.md §4) on the standalone node:http server: the protocol
 * endpoints at their default paths, `/key/response`, and two access-protected routes,
 * `/foo/bar` and `/bad/nonce`. (examples/express-conformance.ts is the same server on Express.)
 *
 *   make server            # http://127.0.0.1:8080 (PORT and HOST override)
 */
import { createBetterAuth } from '../src'
import { createServer } from '../adapters/node'

interface Attributes {
  permissionsByRole: Record<string, string[]>
}

interface FooBar {
  foo: unknown
  bar: unknown
}

export function createConformanceServer() {
  const auth = createBetterAuth<Attributes>({
    attributes: () => ({ permissionsByRole: { admin: ['read', 'write'] } }),
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
  const { server, auth } = createConformanceServer()
  auth
    .ready()
    .then(async () => {
      await server.listen(port, host)
      console.log(`better-auth conformance server on http://${host}:${port}`)
      console.log(`response key: ${await auth.responsePublicKey()}`)
      const stop = () => {
        server
          .close()
          .then(() => auth.close())
          .then(() => process.exit(0))
      }
      process.on('SIGINT', stop)
      process.on('SIGTERM', stop)
    })
    .catch(error => {
      console.error(error)
      process.exit(1)
    })
}
