/**
 * The conformance server (PROTOCOL.md §4) on the standalone node:http server: the protocol
 * endpoints at their default paths, `/key/response`, two access-protected routes, `/foo/bar` and
 * `/bad/nonce`, and, in the header form, `GET /me` and `DELETE /notes/:id`. (examples/express-conformance.ts is the same server on Express.)
 *
 *   make server            # http://127.0.0.1:8080 (PORT and HOST override)
 *
 * State and keys live in `./better-auth.db` (SQLite) unless `BETTER_AUTH_DATABASE` says
 * otherwise (`memory:`, `sqlite:PATH`, `postgres://…`); `BETTER_AUTH_REDIS` (`redis://…`) puts
 * challenges and nonces in Redis.
 *
 * `GET /healthz` (liveness) and `GET /readyz` (readiness: 503 BA602 when a store does not answer
 * within 1.5 s) are served too. SIGTERM or SIGINT: it stops accepting, answers the requests in
 * flight (with `Connection: close`), cuts what is still open after 10 s
 * (`BETTER_AUTH_SHUTDOWN_TIMEOUT_MS`), closes the store and exits 0. Failures are logged one line
 * each.
 */
import {
  createBetterAuth,
  rateLimitFromEnv,
  type Logger,
  type RateLimitOptions,
  type ServerStore,
} from '../src'
import { createServer } from '../adapters/node'

interface Attributes {
  permissionsByRole: Record<string, string[]>
}

interface FooBar {
  foo: unknown
  bar: unknown
}

export function createConformanceServer(
  options: { store?: ServerStore; logger?: Logger; rateLimit?: RateLimitOptions | false } = {}
) {
  const auth = createBetterAuth<Attributes>({
    store: options.store,
    ...(options.logger === undefined ? {} : { logger: options.logger }),
    attributes: () => ({ permissionsByRole: { admin: ['read', 'write'] } }),
    // Conformance suites of every client implementation run back to back from one address, so
    // `make server` sets BETTER_AUTH_RATE_LIMIT=off; unset, the defaults hold, as with `serve`.
    rateLimit: options.rateLimit ?? rateLimitFromEnv(),
  })
  const server = createServer(auth)

  server.protect<FooBar>('/foo/bar', ({ request }) => ({
    wasFoo: request.foo,
    wasBar: request.bar,
  }))

  // The header form (docs/http-binding.md), as every example serves it: any method, the reply as
  // written with its signature in headers.
  server.protect('/me', ({ identity, device }) => ({ identity, device }), {
    methods: ['GET'],
    binding: 'headers',
  })
  server.protect('/notes/:id', (_principal, _req, params) => ({ deleted: params.id }), {
    methods: ['DELETE'],
    binding: 'headers',
  })

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
