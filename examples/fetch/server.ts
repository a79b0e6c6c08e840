/**
 * Better Auth as Web-standard `Request → Response` handlers (what Bun, Deno, Hono or a Next.js
 * route handler call), served here by node:http.
 *
 *   make example-fetch            # http://127.0.0.1:8080 (PORT, HOST)
 */
import { storeFromEnv } from 'better-auth-protocol'
import { betterAuth } from 'better-auth-protocol/fetch'

interface Attributes {
  permissionsByRole: Record<string, string[]>
}
interface FooBar {
  foo: string
  bar: string
}

export const auth = betterAuth<Attributes>(
  {
    // State in SQLite (./better-auth.db), or BETTER_AUTH_DATABASE / BETTER_AUTH_REDIS.
    store: storeFromEnv(process.env, { database: 'sqlite:./better-auth.db' }),
    // The attributes every new session's token carries.
    attributes: () => ({ permissionsByRole: { admin: ['read', 'write'] } }),
  },
  { openapi: true }
)

type Route = (request: Request, context: { ip?: string }) => Promise<Response>

const notFound: Route = async () =>
  Response.json({ error: { code: 'BA604', message: 'not found' } }, { status: 404 })

// Browsers preflight header-form requests: answer for the allowed origins only, expose the
// signature. Other origins get the route's own answer, with no CORS headers.
const origins = new Set((process.env.ALLOWED_ORIGINS ?? 'http://localhost:5173').split(','))
const cors =
  (route: Route): Route =>
  async (request, context) => {
    const origin = request.headers.get('origin') ?? ''
    if (!origins.has(origin)) return route(request, context)
    const preflight = request.method === 'OPTIONS'
    const reply = preflight ? new Response(null, { status: 204 }) : await route(request, context)
    const headers = new Headers(reply.headers)
    headers.append('vary', 'Origin')
    headers.set('access-control-allow-origin', origin)
    headers.set('access-control-expose-headers', 'Signature, Signature-Input, Content-Digest')
    if (preflight) {
      headers.set('access-control-allow-methods', 'GET, DELETE')
      headers.set(
        'access-control-allow-headers',
        'authorization, content-digest, signature, signature-input'
      )
      headers.set('access-control-max-age', '600')
    }
    return new Response(reply.body, { status: reply.status, statusText: reply.statusText, headers })
  }

/** The `:id` of `/notes/:id`, percent-decoded as the frameworks give route parameters. */
function noteId(request: Request): string {
  const id = new URL(request.url).pathname.slice('/notes/'.length)
  try {
    return decodeURIComponent(id)
  } catch {
    return id // not valid percent-encoding: as it was sent
  }
}

const routes: Record<string, Route> = {
  // A protected route: the handler gets the verified data; what it returns is sent as a signed
  // response envelope echoing the request nonce.
  'POST /foo/bar': auth.requireAccess<FooBar>(({ data }) => ({
    wasFoo: data.foo,
    wasBar: data.bar,
  })),

  // Authorization from the token's attributes: 403 (BA306) for anyone who may not write.
  // A note is created: its replies are 201s (`status`).
  'POST /notes': auth.requireAccess<{ text: string }>(
    ({ data, principal }) => ({ saved: data.text, by: principal.identity }),
    {
      authorize: ({ attributes }) => attributes.permissionsByRole.admin?.includes('write') === true,
      status: 201,
    }
  ),

  // Any method, any body: the access request in headers (HTTP Message Signatures), which
  // `client.fetch` sends. What the handler returns is sent as JSON, with its signature in headers.
  'GET /me': cors(
    auth.requireAccess(({ principal: { identity, device } }) => ({ identity, device }), {
      binding: 'headers',
    })
  ),
  'DELETE /notes/:id': cors(
    auth.requireAccess(({ request }) => ({ deleted: noteId(request) }), { binding: 'headers' })
  ),
  'OPTIONS /me': cors(notFound),
  'OPTIONS /notes/:id': cors(notFound),

  'GET /health': async () => Response.json({ ok: true }),

  // Conformance (PROTOCOL.md §4): a reply echoing a wrong nonce, which clients must refuse.
  'POST /bad/nonce': auth.requireAccess<FooBar>(async ({ data }) => {
    const nonce = auth.core.noncer.generate128()
    const reply = await auth.core.respond(nonce, { wasFoo: data.foo, wasBar: data.bar })
    return new Response(reply, { headers: { 'content-type': 'application/json' } })
  }),
}

/**
 * The whole app: the protocol endpoints (`auth.fetch`), then the app's own routes. `context.ip`
 * is the client address, where the runtime knows it (rate limits count per client).
 */
export async function handle(request: Request, context: { ip?: string } = {}): Promise<Response> {
  if (auth.matches(request)) return auth.fetch(request, context)
  const path = new URL(request.url).pathname.replace(/^\/notes\/[^/]+$/, '/notes/:id')
  const route = routes[`${request.method} ${path}`]
  return (route ?? notFound)(request, context)
}

/**
 * node:http ⇄ Request/Response (Bun and Deno take `handle` as it is): the body read up to the
 * core's limit (413 BA603 beyond), TRACE/CONNECT answered 405 BA605, absolute-form targets
 * handled, a request that cannot become a `Request` answered 400 BA101, the client IP passed on.
 */
export const listener = auth.nodeListener(handle)
