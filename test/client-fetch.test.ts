/** `client.fetch`: the header form from the client, against a real Express app and the standalone server. */
import express from 'express'
import type { AddressInfo } from 'node:net'
import type { Server } from 'node:http'
import { betterAuth, getPrincipal } from '../adapters/express'
import { createServer } from '../adapters/node'
import { BetterAuthClient } from '../src/client/client'
import { NodeSigningKey } from '../src/crypto/node'
import { createBetterAuth, type BetterAuthServer } from '../src'
import { hash } from './helpers'

const silent = {
  error: () => undefined,
  warn: () => undefined,
  info: () => undefined,
  debug: () => undefined,
}

function expressApp(core: BetterAuthServer): express.Express {
  const auth = betterAuth(core)
  const app = express()
  app.use(auth.express({ prefix: '/auth' }))
  app.get('/me', auth.requireAccess({ binding: 'headers' }), (req, res) => {
    const principal = getPrincipal(req)
    res.json({ identity: principal?.identity, device: principal?.device })
  })
  app.delete('/notes/:id', auth.requireAccess({ binding: 'headers' }), (req, res) => {
    res.json({ deleted: req.params.id })
  })
  // A proxy that changes the reply after it was signed.
  const tamper: express.RequestHandler = (_req, res, next) => {
    const end = res.end.bind(res) as (...args: unknown[]) => express.Response
    res.end = ((chunk: unknown, ...rest: unknown[]) =>
      end(
        typeof chunk === 'string' || Buffer.isBuffer(chunk) ? Buffer.from('{"evil":1}') : chunk,
        ...rest
      )) as express.Response['end']
    next()
  }
  app.get('/tampered', tamper, auth.requireAccess({ binding: 'headers' }), (_req, res) => {
    res.json({ good: 1 })
  })
  app.put('/notes/:id', express.json(), auth.requireAccess({ binding: 'headers' }), (req, res) => {
    res
      .status(201)
      .type('text/plain')
      .send(`saved ${JSON.stringify(req.body)}`)
  })
  return app
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

async function signedIn(base: string, options: { responseKey?: string } = {}) {
  const client = new BetterAuthClient({ baseUrl: `${base}/auth`, ...options })
  await client.createAccount(hash(NodeSigningKey.generate().publicKeyText))
  await client.createSession()
  return client
}

describe('client.fetch', () => {
  let core: BetterAuthServer
  let server: Server
  let base: string

  beforeAll(async () => {
    core = createBetterAuth({ keys: { env: false }, logger: silent })
    server = expressApp(core).listen(0, '127.0.0.1')
    await new Promise(resolve => server.once('listening', resolve))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  afterAll(async () => {
    server.closeAllConnections()
    await new Promise(resolve => server.close(resolve))
    await core.close()
  })

  it('signs GET, DELETE and PUT requests and verifies the replies (Express)', async () => {
    const client = await signedIn(base)
    const me = await client.fetch(`${base}/me`)
    expect(me.status).toBe(200)
    const body = (await me.json()) as { identity: string; device: string }
    expect(body.identity).toBe(await client.identity())
    expect(typeof body.device).toBe('string')
    const deleted = await client.fetch(`${base}/notes/7`, { method: 'DELETE' })
    expect(await deleted.json()).toEqual({ deleted: '7' })
    const put = await client.fetch(`${base}/notes/7`, {
      method: 'put',
      headers: { 'content-type': 'application/json' },
      body: '{"text":"hi"}',
    })
    expect([put.status, await put.text()]).toEqual([201, 'saved {"text":"hi"}'])
  })

  it('refuses a reply not signed by the pinned response key, or changed after signing', async () => {
    const client = await signedIn(base)
    await expect(client.fetch(`${base}/tampered`)).rejects.toMatchObject({ code: 'BA201' })
    const stranger = createBetterAuth({ keys: { env: false }, logger: silent })
    const other = createServer(stranger, { prefix: '/auth' })
    other.protect('/me', p => ({ identity: p.identity }), { methods: ['GET'] })
    const url = await listen(other.server)
    // A client of this server whose token the stranger trusts: the stranger signs its replies.
    const pinned = new BetterAuthClient({
      baseUrl: `${base}/auth`,
      responseKey: await core.responsePublicKey(),
    })
    await pinned.createAccount(hash(NodeSigningKey.generate().publicKeyText))
    await pinned.createSession()
    const reply = await pinned.fetch(`${url}/me`)
    expect(reply.status).toBe(401) // the stranger does not trust our tokens: unsigned error
    expect((await client.fetch(`${base}/me`)).status).toBe(200)
    await other.close({ deadlineMs: 0 })
    await stranger.close()
  })

  it('sends past the HTTP cache whatever the caller asks: a signed reply answers one request', async () => {
    const client = await signedIn(base)
    const sent: (RequestCache | undefined)[] = []
    const original = globalThis.fetch
    const spy = jest
      .spyOn(globalThis, 'fetch')
      .mockImplementation((input: RequestInfo | URL, init?: RequestInit) => {
        sent.push(init?.cache)
        return original(input, init)
      })
    try {
      for (const cache of [undefined, 'default', 'force-cache', 'no-cache'] as const) {
        const reply = await client.fetch(`${base}/me`, cache === undefined ? {} : { cache })
        expect(reply.status).toBe(200)
      }
    } finally {
      spy.mockRestore()
    }
    expect(sent).toEqual(['no-store', 'no-store', 'no-store', 'no-store'])
  })

  it('returns unsigned error replies as they are', async () => {
    const client = await signedIn(base)
    const reply = await client.fetch(`${base}/nowhere`)
    expect(reply.status).toBe(404)
  })

  it('works against the standalone server', async () => {
    const local = createServer(core, { prefix: '/auth' })
    local.protect('/me', p => ({ identity: p.identity, device: p.device }), {
      methods: ['GET'],
      binding: 'headers',
    })
    const url = await listen(local.server)
    const client = await signedIn(url)
    const me = await client.fetch(`${url}/me`)
    expect(((await me.json()) as { identity: string }).identity).toBe(await client.identity())
    await local.close({ deadlineMs: 0 })
  })
})
