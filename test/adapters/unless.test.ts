/** `requireAccess().unless(…)`: global protection with public routes, on Express and Koa. */
import express from 'express'
import Koa from 'koa'
import { betterAuth as expressAuth } from '../../adapters/express'
import { betterAuth as koaAuth } from '../../adapters/koa'
import { skips, type UnlessOptions } from '../../adapters/shared/unless'
import { accessBody, nonce as newNonce, type TestServer } from '../helpers'
import {
  errorCode,
  makeServer,
  session,
  supertestTarget,
  verifiedReply,
  type Target,
} from './contract'

const PUBLIC: UnlessOptions = {
  path: ['/health', /^\/public\//, { url: '/feed', methods: ['GET'] }],
  method: ['OPTIONS'],
}

function expressApp(server: TestServer) {
  const auth = expressAuth(server.auth)
  const app = express()
  app.use(auth.requireAccess().unless(PUBLIC))
  app.all(/.*/, (req, res) => {
    const principal = (req as { betterAuth?: unknown }).betterAuth
    res.json({ path: req.path, method: req.method, authed: principal !== undefined })
  })
  return app
}

function koaApp(server: TestServer) {
  const auth = koaAuth(server.auth)
  const app = new Koa()
  app.silent = true
  app.use(auth.requireAccess().unless(PUBLIC))
  app.use(ctx => {
    ctx.body = {
      path: ctx.path,
      method: ctx.method,
      authed: (ctx.state as { betterAuth?: unknown }).betterAuth !== undefined,
    }
  })
  return app.callback()
}

async function request(target: Target, method: string, path: string): Promise<number> {
  const port = await target.listen?.()
  const reply = await fetch(`http://127.0.0.1:${port}${path}`, { method })
  await reply.arrayBuffer()
  return reply.status
}

for (const [name, build] of [
  ['Express', expressApp],
  ['Koa', koaApp],
] as const) {
  describe(`${name}: requireAccess().unless()`, () => {
    let server: TestServer
    let target: Target
    beforeEach(() => {
      server = makeServer()
      target = supertestTarget(build(server))
    })
    afterEach(async () => {
      await target.close?.()
    })
    const now = () => server.clock.ms

    it('lets the public paths and methods through without an access request', async () => {
      expect(JSON.parse((await target.get('/health')).text)).toEqual({
        path: '/health',
        method: 'GET',
        authed: false,
      })
      expect((await target.get('/health?verbose=1')).status).toBe(200)
      expect((await target.get('/public/logo.svg')).status).toBe(200)
      expect((await target.get('/feed')).status).toBe(200)
      expect(await request(target, 'OPTIONS', '/anything')).toBe(200)
    })

    it('protects everything else: 401 without an access request, signed with one', async () => {
      const missing = await target.post('/foo/bar', '{}')
      expect([missing.status, errorCode(missing)]).toEqual([401, 'BA404'])
      // Not an exact match, and a method the rule does not list.
      expect((await target.get('/health/deep')).status).toBe(401)
      expect((await target.get('/publicity')).status).toBe(401)
      expect((await target.post('/feed', '{}')).status).toBe(401)

      const { key, token } = await session(server)
      const nonce = newNonce()
      const reply = await target.post('/foo/bar', accessBody(token, key, { at: now(), nonce }))
      expect(await verifiedReply(server.auth, reply, nonce)).toEqual({
        path: '/foo/bar',
        method: 'POST',
        authed: true,
      })
    })
  })
}

describe('unless rules', () => {
  const view = (method: string, path: string) => ({ method, path })
  it('matches exact paths, patterns, methods, extensions and a custom test', () => {
    expect(skips({ path: '/a' }, view('GET', '/a'), {})).toBe(true)
    expect(skips({ path: '/a' }, view('GET', '/a/b'), {})).toBe(false)
    const global = /^\/p\//g
    expect(skips({ path: global }, view('GET', '/p/1'), {})).toBe(true)
    expect(skips({ path: global }, view('GET', '/p/2'), {})).toBe(true) // lastIndex reset
    expect(skips({ method: 'options' }, view('OPTIONS', '/x'), {})).toBe(true)
    expect(skips({ path: { url: '/f', method: 'get' } }, view('POST', '/f'), {})).toBe(false)
    expect(skips({ ext: ['css', '.png'] }, view('GET', '/a/b.png'), {})).toBe(true)
    expect(skips({ ext: 'css' }, view('GET', '/a/b.js'), {})).toBe(false)
    expect(skips({ custom: (r: { ok: boolean }) => r.ok }, view('GET', '/'), { ok: true })).toBe(
      true
    )
    expect(skips({}, view('GET', '/'), {})).toBe(false)
  })
})
