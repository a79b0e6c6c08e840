/**
 * Better Auth on Express: the protocol endpoints, and routes protected with one middleware.
 *
 *   make example-express          # http://127.0.0.1:8080 (PORT, HOST)
 */
import express from 'express'
import { storeFromEnv } from 'better-auth-protocol'
import { betterAuth } from 'better-auth-protocol/express'

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

export const app = express()
// The protocol endpoints (/account/create, /session/create, …, /key/response) and their OpenAPI
// document, before any body parser; the app's own parser keeps the raw bytes (`auth.verify`), so
// signatures are checked over exactly what the client sent.
app.use(auth.express({ openapi: true }))
app.use(express.json({ verify: auth.verify }))

// An existing route, now protected: `req.body` is the verified request data and `res.json()`
// sends a signed response envelope echoing the request nonce.
app.post('/foo/bar', auth.requireAccess<FooBar>(), (req, res) => {
  res.json({ wasFoo: req.body.foo, wasBar: req.body.bar })
})

// Authorization from the token's attributes: 403 (BA306) for anyone who may not write.
const writers = auth.requireAccess<{ text: string }>({
  authorize: ({ attributes }) => attributes.permissionsByRole.admin?.includes('write') === true,
})
app.post('/notes', writers, (req, res) => {
  res.status(201).json({ saved: req.body.text, by: auth.principal(req).identity })
})

// Any method, any body: the access request in headers (HTTP Message Signatures), which
// `client.fetch` sends. The reply goes out as written, with its signature in headers.
// Browsers preflight these requests: answer for the allowed origins only, expose the signature.
const origins = new Set((process.env.ALLOWED_ORIGINS ?? 'http://localhost:5173').split(','))
app.use(['/me', '/notes/:id'], (req, res, next) => {
  const origin = req.headers.origin
  if (origin === undefined || !origins.has(origin)) return next()
  res.vary('Origin').set({
    'access-control-allow-origin': origin,
    'access-control-expose-headers': 'Signature, Signature-Input, Content-Digest',
  })
  if (req.method !== 'OPTIONS') return next()
  res.set({
    'access-control-allow-methods': 'GET, DELETE',
    'access-control-allow-headers': 'authorization, content-digest, signature, signature-input',
    'access-control-max-age': '600',
  })
  res.sendStatus(204)
})
const headerForm = auth.requireAccess({ binding: 'headers' })
app.get('/me', headerForm, (req, res) => {
  const { identity, device } = auth.principal(req)
  res.json({ identity, device })
})
app.delete('/notes/:id', headerForm, (req, res) => {
  res.json({ deleted: req.params.id })
})

// Routes without requireAccess stay as they were.
app.get('/health', (_req, res) => {
  res.json({ ok: true })
})

// Conformance (PROTOCOL.md §4): a reply echoing a wrong nonce, which clients must refuse.
app.post('/bad/nonce', auth.requireAccess<FooBar>(), async (req, res) => {
  const nonce = auth.core.noncer.generate128()
  const reply = await auth.core.respond(nonce, { wasFoo: req.body.foo, wasBar: req.body.bar })
  res.type('application/json').send(reply)
})

// What no route took gets 404 BA604; body-parser failures (malformed JSON, an unsupported
// charset, a body over the limit) and the protocol's errors get the protocol's JSON error body,
// never Express's HTML page and its stack.
app.use(auth.notFound())
app.use(auth.errorHandler())
