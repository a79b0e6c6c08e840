/**
 * Better Auth on Koa: the protocol endpoints, and routes protected with one middleware.
 *
 *   make example-koa              # http://127.0.0.1:8080 (PORT, HOST)
 */
import Koa from 'koa'
import Router from '@koa/router'
import { storeFromEnv } from 'better-auth-protocol'
import { betterAuth } from 'better-auth-protocol/koa'

interface Attributes {
  permissionsByRole: Record<string, string[]>
}
interface FooBar {
  foo: string
  bar: string
}

export const auth = betterAuth<Attributes>({
  // State in SQLite (./better-auth.db), or BETTER_AUTH_DATABASE / BETTER_AUTH_REDIS.
  store: storeFromEnv(process.env, { database: 'sqlite:./better-auth.db' }),
  // The attributes every new session's token carries.
  attributes: () => ({ permissionsByRole: { admin: ['read', 'write'] } }),
})

const router = new Router()

// A protected route: the principal is on `ctx.state.betterAuth`, and a JSON `ctx.body` is sent
// as a signed response envelope echoing the request nonce.
router.post('/foo/bar', auth.requireAccess<FooBar>(), ctx => {
  const { request } = ctx.state.betterAuth
  ctx.body = { wasFoo: request.foo, wasBar: request.bar }
})

// Authorization from the token's attributes: 403 (BA306) for anyone who may not write.
const writers = auth.requireAccess<{ text: string }>({
  authorize: ({ attributes }) => attributes.permissionsByRole.admin?.includes('write') === true,
})
router.post('/notes', writers, ctx => {
  const { request, identity } = ctx.state.betterAuth
  ctx.status = 201
  ctx.body = { saved: request.text, by: identity }
})

// Any method, any body: the access request in headers (HTTP Message Signatures), which
// `client.fetch` sends. The reply goes out as written, with its signature in headers.
// Browsers preflight these requests: answer for the allowed origins only, expose the signature.
const origins = new Set((process.env.ALLOWED_ORIGINS ?? 'http://localhost:5173').split(','))
const cors: Koa.Middleware = async (ctx, next) => {
  const origin = ctx.get('Origin')
  if (!origins.has(origin)) return next()
  ctx.vary('Origin')
  ctx.set('Access-Control-Allow-Origin', origin)
  ctx.set('Access-Control-Expose-Headers', 'Signature, Signature-Input, Content-Digest')
  if (ctx.method !== 'OPTIONS') return next()
  ctx.set('Access-Control-Allow-Methods', 'GET, DELETE')
  ctx.set(
    'Access-Control-Allow-Headers',
    'authorization, content-digest, signature, signature-input'
  )
  ctx.set('Access-Control-Max-Age', '600')
  ctx.status = 204
}
const headerForm = auth.requireAccess({ binding: 'headers' })
router.options(['/me', '/notes/:id'], cors)
router.get('/me', cors, headerForm, ctx => {
  const { identity, device } = ctx.state.betterAuth
  ctx.body = { identity, device }
})
router.delete('/notes/:id', cors, headerForm, ctx => {
  ctx.body = { deleted: ctx.params.id }
})

// Routes without requireAccess stay as they were.
router.get('/health', ctx => {
  ctx.body = { ok: true }
})

// Conformance (PROTOCOL.md §4): a reply echoing a wrong nonce, which clients must refuse.
router.post('/bad/nonce', auth.requireAccess<FooBar>(), async ctx => {
  const { request } = ctx.state.betterAuth
  const nonce = auth.core.noncer.generate128()
  ctx.type = 'application/json'
  ctx.body = await auth.core.respond(nonce, { wasFoo: request.foo, wasBar: request.bar })
})

export const app = new Koa()
// First: every failure (a wrong method, an unknown path, a thrown error) gets the protocol's JSON
// error body with its status and code, never Koa's plain-text pages.
app.use(auth.errorHandler())
// The protocol endpoints (/account/create, /session/create, …, /key/response) and their OpenAPI
// document, before any body parser.
app.use(auth.koa({ openapi: true }))
app.use(router.routes()).use(router.allowedMethods({ throw: true }))
