/** The Passport strategy, over real HTTP. */
import express, { type Express } from 'express'
import passport from 'passport'
import { BetterAuthStrategy, type BetterAuthUser } from '../../adapters/passport'
import { betterAuth } from '../../adapters/express'
import { NodeSigningKey } from '../../src'
import { accessBody, hash, nonce as newNonce, type Attributes, type TestServer } from '../helpers'
import { errorCode, makeServer, session, supertestTarget, verifiedReply } from './contract'

function buildApp(server: TestServer): Express {
  const authenticator = new passport.Passport()
  authenticator.use(
    new BetterAuthStrategy<Attributes>(server.auth, {
      authorize: principal => principal.attributes !== undefined,
    })
  )
  authenticator.use(
    'better-auth-optional',
    new BetterAuthStrategy(betterAuth(server.auth), { credentialsRequired: false })
  )
  const app = express()
  app.use(authenticator.initialize())
  app.post(
    '/foo/bar',
    authenticator.authenticate('better-auth', { session: false }),
    (req, res) => {
      const user = req.user as BetterAuthUser<Attributes, { foo: string; bar: string }>
      const body = req.body as { foo: string; bar: string }
      res.json({ identity: user.identity, wasFoo: body.foo, same: user.request.bar === body.bar })
    }
  )
  app.post(
    '/optional',
    authenticator.authenticate('better-auth-optional', { session: false }),
    (req, res) => {
      res.json({ user: req.user === undefined ? null : 'present' })
    }
  )
  return app
}

describe('Passport: BetterAuthStrategy', () => {
  let server: TestServer
  beforeEach(() => {
    server = makeServer()
  })
  const now = () => server.clock.ms

  it('authenticates a valid access request: req.user is the principal, the reply is signed', async () => {
    const target = supertestTarget(buildApp(server))
    try {
      const { key, token } = await session(server)
      const nonce = newNonce()
      const reply = await target.post('/foo/bar', accessBody(token, key, { at: now(), nonce }))
      expect(reply.status).toBe(200)
      expect(await verifiedReply(server.auth, reply, nonce)).toEqual({
        identity: hash('identity'),
        wasFoo: 'bar',
        same: true,
      })
    } finally {
      await target.close?.()
    }
  })

  it('answers an invalid request 401 with the protocol body and challenge', async () => {
    const target = supertestTarget(buildApp(server))
    try {
      const missing = await target.post('/foo/bar', '{}')
      expect([missing.status, errorCode(missing)]).toEqual([401, 'BA404'])
      expect(missing.headers['content-type']).toMatch(/^application\/json/)
      expect(missing.headers['www-authenticate']).toBe('BetterAuth error="BA404"')

      // Signed by another key than the token's.
      const { token } = await session(server)
      const forged = await target.post(
        '/foo/bar',
        accessBody(token, NodeSigningKey.generate(), { at: now() })
      )
      expect([forged.status, errorCode(forged)]).toEqual([401, 'BA201'])
    } finally {
      await target.close?.()
    }
  })

  it('refuses a replayed request 401 BA304', async () => {
    const target = supertestTarget(buildApp(server))
    try {
      const { key, token } = await session(server)
      const body = accessBody(token, key, { at: now() })
      expect((await target.post('/foo/bar', body)).status).toBe(200)
      const replay = await target.post('/foo/bar', body)
      expect([replay.status, errorCode(replay)]).toEqual([401, 'BA304'])
    } finally {
      await target.close?.()
    }
  })

  it('passes an anonymous caller with credentialsRequired: false', async () => {
    const target = supertestTarget(buildApp(server))
    try {
      const anonymous = await target.post('/optional', '{}')
      expect([anonymous.status, JSON.parse(anonymous.text)]).toEqual([200, { user: null }])
      const { key, token } = await session(server)
      const nonce = newNonce()
      const signed = await target.post('/optional', accessBody(token, key, { at: now(), nonce }))
      expect(await verifiedReply(server.auth, signed, nonce)).toEqual({ user: 'present' })
    } finally {
      await target.close?.()
    }
  })

  it('hands errors that are not the protocol’s to Passport as errors', async () => {
    const authenticator = new passport.Passport()
    authenticator.use(
      new BetterAuthStrategy(server.auth, {
        authorize: () => {
          throw new TypeError('policy store down')
        },
      })
    )
    const app = express()
    app.post('/x', authenticator.authenticate('better-auth', { session: false }), (_req, res) => {
      res.json({})
    })
    app.use(((error, _req, res, _next) => {
      res.status(500).json({ handled: (error as Error).message })
    }) as express.ErrorRequestHandler)
    const target = supertestTarget(app)
    try {
      const { key, token } = await session(server)
      const reply = await target.post('/x', accessBody(token, key, { at: now() }))
      expect([reply.status, JSON.parse(reply.text)]).toEqual([
        500,
        { handled: 'policy store down' },
      ])
    } finally {
      await target.close?.()
    }
  })
})
