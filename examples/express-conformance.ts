/**
 * The conformance server (PROTOCOL.md §4) as an Express app: the protocol endpoints at their
 * default paths, `/key/response`, two access-protected routes, `/foo/bar` and `/bad/nonce`, and,
 * in the header form, `GET /me` and `DELETE /notes/:id`.
 * `make server` runs the same server on the standalone node:http server (examples/server.ts).
 *
 *   PORT=8080 npx tsx examples/express-conformance-listen.ts   # HOST overrides 127.0.0.1
 *
 * State and keys live in `./better-auth.db` (SQLite) unless `BETTER_AUTH_DATABASE` says
 * otherwise (`memory:`, `sqlite:PATH`, `postgres://…`); `BETTER_AUTH_REDIS` (`redis://…`) puts
 * challenges and nonces in Redis.
 */
import express from 'express'
import { createBetterAuth, type AccessPrincipal, type ServerStore } from '../src'
import { protocolRouter, requireAccess } from '../adapters/express'

export interface Attributes {
  permissionsByRole: Record<string, string[]>
}

interface FooBar {
  foo: unknown
  bar: unknown
}

type Authed = express.Request & { betterAuth: AccessPrincipal<Attributes, FooBar> }

export function createConformanceApp(options: { store?: ServerStore } = {}) {
  const auth = createBetterAuth<Attributes>({
    store: options.store,
    attributes: () => ({ permissionsByRole: { admin: ['read', 'write'] } }),
    // Conformance suites of every client implementation run back to back from one address;
    // a production server keeps the default limits.
    rateLimit: false,
  })
  const app = express()
  app.disable('x-powered-by')
  app.use(protocolRouter(auth))

  app.post('/foo/bar', requireAccess<Attributes, FooBar>(auth), (req, res) => {
    const { request } = (req as Authed).betterAuth
    res.json({ wasFoo: request.foo, wasBar: request.bar })
  })

  // The header form (docs/http-binding.md), as every example serves it.
  const headerForm = requireAccess<Attributes>(auth, { binding: 'headers' })
  app.get('/me', headerForm, (req, res) => {
    const { identity, device } = (req as Authed).betterAuth
    res.json({ identity, device })
  })
  app.delete('/notes/:id', headerForm, (req, res) => {
    res.json({ deleted: req.params.id })
  })

  // Answers with a nonce other than the request's: clients must reject the reply (BA203).
  app.post('/bad/nonce', express.raw({ type: () => true }), async (req, res) => {
    try {
      const principal = await auth.verifyAccess<FooBar>(req.body as Buffer)
      const reply = await auth.respond(auth.noncer.generate128(), {
        wasFoo: principal.request.foo,
        wasBar: principal.request.bar,
      })
      res.type('application/json').send(reply)
    } catch (error) {
      const result = auth.errorResult(error)
      res.status(result.status).set(result.headers).send(result.body)
    }
  })

  return { app, auth }
}
