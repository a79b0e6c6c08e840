/**
 * Per-route options of the core reach it through the adapters: the revocation check, per-route
 * rate limits, and the client IP behind a trusted proxy (Express `trust proxy`, Koa `app.proxy`).
 */
import express from 'express'
import Koa from 'koa'
import request from 'supertest'
import { betterAuth } from '../../adapters/express'
import { betterAuth as koaAuth } from '../../adapters/koa'
import { BetterAuthClient, NodeSigningKey, type Network } from '../../src'
import { accessBody, hash, makeServer } from '../helpers'
import { session } from './contract'

function expressApp(trustProxy: boolean) {
  const server = makeServer({ rateLimit: {} })
  const auth = betterAuth(server.auth)
  const app = express()
  if (trustProxy) app.set('trust proxy', 1)
  app.use(auth.express())
  app.post('/revocable', auth.requireAccess({ checkRevocation: { cacheMs: 0 } }), (_req, res) => {
    res.json({ ok: true })
  })
  app.post(
    '/limited',
    auth.requireAccess({ rateLimit: { ip: { points: 2, duration: 60 } } }),
    (_req, res) => {
      res.json({ ok: true })
    }
  )
  return { server, app }
}

class AppNetwork implements Network {
  constructor(private readonly app: express.Express) {}
  async send(path: string, body: string) {
    const r = await request(this.app).post(path).set('content-type', 'application/json').send(body)
    return { status: r.status, body: r.text }
  }
}

describe('route options through the Express adapter', () => {
  it('checkRevocation refuses the unexpired token of a deleted account (401 BA301)', async () => {
    const { server, app } = expressApp(false)
    const client = new BetterAuthClient({ network: new AppNetwork(app), now: server.clock.now })
    await client.createAccount(hash(NodeSigningKey.generate().publicKeyText))
    await client.createSession()
    await expect(client.accessRequest('/revocable', {})).resolves.toEqual({ ok: true })
    await client.deleteAccount()
    await expect(client.accessRequest('/revocable', {})).rejects.toMatchObject({
      code: 'BA301',
      status: 401,
    })
  })

  it('a route rate limit answers 429 with Retry-After, per client IP', async () => {
    const { server, app } = expressApp(false)
    const { key, token } = await session(server)
    const statuses: number[] = []
    for (let i = 0; i < 3; i++) {
      const r = await request(app)
        .post('/limited')
        .set('content-type', 'application/json')
        .send(accessBody(token, key, { at: server.clock.ms }))
      statuses.push(r.status)
      if (r.status === 429) {
        expect(JSON.parse(r.text).error.code).toBe('BA601')
        expect(Number(r.headers['retry-after'])).toBeGreaterThan(0)
      }
    }
    expect(statuses).toEqual([200, 200, 429])
  })

  it.each([
    [false, [200, 200, 429]],
    [true, [200, 200, 200]],
  ])(
    'X-Forwarded-For counts only behind a trusted proxy (trust proxy: %s)',
    async (trust, expected) => {
      const { server, app } = expressApp(trust)
      const { key, token } = await session(server)
      const statuses: number[] = []
      for (let i = 0; i < 3; i++) {
        const r = await request(app)
          .post('/limited')
          .set('content-type', 'application/json')
          .set('x-forwarded-for', `203.0.113.${i}`)
          .send(accessBody(token, key, { at: server.clock.ms }))
        statuses.push(r.status)
      }
      expect(statuses).toEqual(expected)
    }
  )
})

describe('route options through the Koa adapter', () => {
  it('honours X-Forwarded-For only with app.proxy', async () => {
    for (const [proxy, expected] of [
      [false, [200, 200, 429]],
      [true, [200, 200, 200]],
    ] as const) {
      const server = makeServer({ rateLimit: {} })
      const auth = koaAuth(server.auth)
      const app = new Koa()
      app.proxy = proxy
      app.use(auth.koa())
      const limited = auth.requireAccess({ rateLimit: { ip: { points: 2, duration: 60 } } })
      app.use(async (ctx, next) => {
        if (ctx.path !== '/limited') return next()
        await limited(ctx, async () => {
          ctx.body = { ok: true }
        })
      })
      const { key, token } = await session(server)
      const statuses: number[] = []
      for (let i = 0; i < 3; i++) {
        const r = await request(app.callback())
          .post('/limited')
          .set('content-type', 'application/json')
          .set('x-forwarded-for', `198.51.100.${i}`)
          .send(accessBody(token, key, { at: server.clock.ms }))
        statuses.push(r.status)
      }
      expect(statuses).toEqual(expected)
    }
  })
})
