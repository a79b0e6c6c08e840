/**
 * One vocabulary across adapters: `requestProperty`, `clientIp`, optional access and
 * `getPrincipal` everywhere, and `BetterAuthHttpError` named for the status it carries.
 */
import Koa from 'koa'
import express from 'express'
import { BetterAuthHttpError, UnauthorizedError, requireAccess } from '../../adapters/express'
import { betterAuth as koaAuth } from '../../adapters/koa'
import { betterAuth as fetchAuth, getPrincipal as fetchPrincipal } from '../../adapters/fetch'
import { createServer, getPrincipal as nodePrincipal } from '../../adapters/node'
import { accessBody, type TestServer } from '../helpers'
import { listenerTarget, makeServer, session, supertestTarget, verifiedReply } from './contract'

let server: TestServer
beforeEach(() => {
  server = makeServer()
})

it('Koa takes requestProperty (key still works)', async () => {
  const auth = koaAuth(server.auth)
  const app = new Koa()
  app.silent = true
  app.use(auth.requireAccess({ requestProperty: 'caller' }))
  app.use(ctx => {
    ctx.body = { identity: (ctx.state as { caller?: { identity: string } }).caller?.identity }
  })
  const { key, token } = await session(server)
  const reply = await supertestTarget(app.callback()).post(
    '/x',
    accessBody(token, key, { at: server.clock.ms })
  )
  expect(reply.status).toBe(200)
  expect(reply.text).toContain('"identity"')
})

it('BetterAuthHttpError is named for its status; UnauthorizedError is the same class', async () => {
  expect(UnauthorizedError).toBe(BetterAuthHttpError)
  const errors: BetterAuthHttpError[] = []
  const app = express()
  app.post('/x', requireAccess(server.auth, { failWithError: true }), (_req, res) => {
    res.json({})
  })
  app.use((error: BetterAuthHttpError, _req: unknown, res: express.Response, _next: unknown) => {
    errors.push(error)
    res.status(error.status).end()
  })
  const { key, token } = await session(server)
  const target = supertestTarget(app)
  await target.post('/x', accessBody(token, key, { at: server.clock.ms - 60_000 }))
  await target.post('/x', undefined, {})
  expect(errors.map(e => [e.status, e.name])).toEqual([
    [422, 'BetterAuthHttpError'],
    [401, 'UnauthorizedError'],
  ])
  expect(errors[0]).toBeInstanceOf(UnauthorizedError)
})

it('the standalone server has optional access, clientIp and getPrincipal', async () => {
  const ips: (string | undefined)[] = []
  server.auth.onEvent(event => ips.push(event.ip))
  const standalone = createServer(server.auth, { clientIp: () => '203.0.113.9', health: false })
  standalone.protect(
    '/optional',
    (principal, req) => ({
      identity: principal?.identity ?? null,
      same: nodePrincipal(req) === principal,
    }),
    { credentialsRequired: false }
  )
  const target = listenerTarget(standalone.listener)
  try {
    const anonymous = await target.post('/optional', '')
    expect(anonymous.status).toBe(200)
    expect(JSON.parse(anonymous.text)).toEqual({ identity: null, same: true })
    const { key, token } = await session(server)
    const body = accessBody(token, key, { at: server.clock.ms, nonce: undefined })
    const signed = await target.post('/optional', body)
    const nonce = (JSON.parse(body) as { payload: { access: { nonce: string } } }).payload.access
      .nonce
    const reply = await verifiedReply(server.auth, signed, nonce)
    expect(reply).toEqual({ identity: expect.any(String), same: true })
    await target.post('/auth/nowhere', '')
    await target.post('/account/create', '{}')
    expect(ips).toContain('203.0.113.9')
  } finally {
    await target.close?.()
  }
})

it('the fetch adapter has clientIp and getPrincipal', async () => {
  const ips: (string | undefined)[] = []
  server.auth.onEvent(event => ips.push(event.ip))
  const auth = fetchAuth(server.auth, { clientIp: request => request.headers.get('x-ip') ?? '' })
  const handler = auth.requireAccess(({ principal, request }) => ({
    same: fetchPrincipal(request) === principal,
  }))
  const { key, token } = await session(server)
  const request = new Request('http://localhost/x', {
    method: 'POST',
    headers: { 'x-ip': '198.51.100.7' },
    body: accessBody(token, key, { at: server.clock.ms }),
  })
  const response = await handler(request)
  expect(response.status).toBe(200)
  await auth.fetch(
    new Request('http://localhost/account/create', {
      method: 'POST',
      headers: { 'x-ip': '198.51.100.7' },
      body: '{}',
    })
  )
  expect(ips).toContain('198.51.100.7')
})
