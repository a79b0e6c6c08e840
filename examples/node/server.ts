/**
 * Better Auth as a standalone server on node:http, no framework: the protocol endpoints and
 * protected routes, for a deployment where the auth server is its own service.
 *
 *   make example-node             # http://127.0.0.1:8080 (PORT, HOST)
 */
import { storeFromEnv } from 'better-auth-protocol'
import { createServer, lineLogger } from 'better-auth-protocol/node'

interface Attributes {
  permissionsByRole: Record<string, string[]>
}
interface FooBar {
  foo: string
  bar: string
}

// The protocol endpoints (/account/create, /session/create, …, /key/response), their OpenAPI
// document at /openapi.json, and GET /healthz and /readyz. createServer takes the core's options,
// or a core.
export const server = createServer<Attributes>(
  {
    // State in SQLite (./better-auth.db), or BETTER_AUTH_DATABASE / BETTER_AUTH_REDIS.
    store: storeFromEnv(process.env, { database: 'sqlite:./better-auth.db' }),
    attributes: () => ({ permissionsByRole: { admin: ['read', 'write'] } }),
    logger: lineLogger(), // one line per failure
  },
  {
    openapi: true,
    // Browsers preflight header-form requests (below): the allowed origins get their preflights
    // answered and the signature headers exposed; other origins get none (preflights: 403).
    cors: (process.env.ALLOWED_ORIGINS ?? 'http://localhost:5173').split(','),
  }
)

// A protected route: the handler gets the verified principal, and what it returns is sent as a
// signed response envelope echoing the request nonce.
server.protect<FooBar>('/foo/bar', ({ request }) => ({
  wasFoo: request.foo,
  wasBar: request.bar,
}))

// Authorization from the token's attributes: 403 (BA306) for anyone who may not write.
// A note is created: its replies are 201s (`status`).
server.protect<{ text: string }>(
  '/notes',
  ({ request, identity }) => ({ saved: request.text, by: identity }),
  {
    authorize: ({ attributes }) => attributes.permissionsByRole.admin?.includes('write') === true,
    status: 201,
  }
)

// Any method, any body: the access request in headers (HTTP Message Signatures), which
// `client.fetch` sends. The reply is sent as JSON, with its signature in headers. A `:name`
// segment matches one path segment, given to the handler in `params`.
server.protect('/me', ({ identity, device }) => ({ identity, device }), {
  methods: ['GET'],
  binding: 'headers',
})
server.protect('/notes/:id', (_principal, _req, params) => ({ deleted: params.id }), {
  methods: ['DELETE'],
  binding: 'headers',
})

/** The server's request listener (what `server.listen()` serves), e.g. for tests. */
export const listener = server.listener

// An unprotected route answers whatever it returns.
server.route(
  '/health',
  () => ({ status: 200, headers: { 'content-type': 'application/json' }, body: '{"ok":true}' }),
  ['GET']
)

// Conformance (PROTOCOL.md §4): a reply echoing a wrong nonce, which clients must refuse.
server.route('/bad/nonce', async (body, _req, context) => {
  const { request } = await server.auth.verifyAccess<FooBar>(body, context)
  const nonce = server.auth.noncer.generate128()
  const reply = await server.auth.respond(nonce, { wasFoo: request.foo, wasBar: request.bar })
  return { status: 200, headers: { 'content-type': 'application/json' }, body: reply }
})
