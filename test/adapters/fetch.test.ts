/** The Web-standard adapter, driven with Node's own Request and Response. */
import { betterAuth, nodeListener, readRequestBody } from '../../adapters/fetch'
import { streamedChunks } from '../../testing/header-contract'
import { ForbiddenError, type BetterAuthServer } from '../../src'
import { accessBody, nonce as newNonce, type Attributes, type TestServer } from '../helpers'
import {
  adapterContract,
  headerFormContract,
  errorCode,
  listening,
  makeServer,
  numericKeyBody,
  permitsDelete,
  session,
  verifiedReply,
  type Reply,
  type Target,
} from './contract'

interface FooBar {
  foo: string
  bar: string
}

type Handler = (request: Request) => Promise<Response>

/** The contract app as a single `Request → Response` handler. */
function buildHandler(core: BetterAuthServer<Attributes>): Handler {
  const auth = betterAuth(core, { prefix: '/auth', openapi: true })
  const routes: Record<string, Handler> = {
    'POST /foo/bar': auth.requireAccess<FooBar>(({ data }) => ({
      wasFoo: data.foo,
      wasBar: data.bar,
    })),
    'POST /admin/delete': auth.requireAccess(() => ({ deleted: true }), {
      authorize: p => permitsDelete(p.attributes),
    }),
    'POST /optional': auth.requireAccess(
      ({ principal }) => ({ identity: principal?.identity ?? null }),
      { credentialsRequired: false }
    ),
    'GET /items': auth.requireAccess(({ principal, request }) => ({
      identity: principal.identity,
      query: new URL(request.url).search || '?',
    })),
    'DELETE /notes': auth.requireAccess(
      ({ request }) => ({ deleted: new URL(request.url).pathname.split('/')[2] }),
      { binding: 'headers' }
    ),
    'PUT /notes': auth.requireAccess(
      ({ request, data }) => ({ id: new URL(request.url).pathname.split('/')[2], body: data }),
      { binding: 'headers' }
    ),
    'GET /stream': auth.requireAccess(
      () => {
        const chunks = streamedChunks()
        const body = new ReadableStream<Uint8Array>({
          async pull(controller) {
            const { value, done } = await chunks.next()
            if (done === true) controller.close()
            else controller.enqueue(value)
          },
        })
        return new Response(body, { headers: { 'content-type': 'text/plain' } })
      },
      { binding: 'headers' }
    ),
    'GET /public': async () => Response.json({ public: true }),
    'POST /public': async request => Response.json({ echo: await request.json() }),
  }
  return async request => {
    if (auth.matches(request)) return auth.fetch(request)
    const path = new URL(request.url).pathname.replace(/^\/notes\/[^/]+$/, '/notes')
    const route = routes[`${request.method} ${path}`]
    return route === undefined ? new Response('not found', { status: 404 }) : route(request)
  }
}

async function toReply(response: Response): Promise<Reply> {
  const headers: Record<string, string> = {}
  response.headers.forEach((value, name) => (headers[name] = value))
  return { status: response.status, headers, text: await response.text() }
}

function fetchTarget(handler: Handler): Target {
  // The same handler behind the node:http bridge, for the raw-request cases of the contract.
  const server = listening(nodeListener(handler))
  return {
    listen: () => server.port(),
    close: () => server.close(),
    async post(path, body, headers = { 'content-type': 'application/json' }) {
      const init: RequestInit = { method: 'POST', headers }
      if (body !== undefined) init.body = body
      return toReply(await handler(new Request(`http://localhost${path}`, init)))
    },
    async get(path) {
      return toReply(await handler(new Request(`http://localhost${path}`)))
    },
  }
}

adapterContract('fetch handler', core => fetchTarget(buildHandler(core)))
headerFormContract('fetch handler', core => fetchTarget(buildHandler(core)), {
  routesParsedUrl: true,
  dropsGetBody: true,
})

describe('fetch handler: specifics', () => {
  let server: TestServer
  beforeEach(() => {
    server = makeServer()
  })
  const now = () => server.clock.ms

  it('verifies over the exact bytes it received', async () => {
    const target = fetchTarget(buildHandler(server.auth))
    const { key, token } = await session(server)
    const { body, nonce } = numericKeyBody(token, key, now())
    const reply = await target.post('/foo/bar', body)
    expect(await verifiedReply(server.auth, reply, nonce)).toEqual({ wasFoo: 'bar', wasBar: 'foo' })
  })

  it('answers 404 BA604 for unknown paths and 405 BA605 with Allow for a wrong method', async () => {
    const auth = betterAuth(server.auth)
    const missing = await toReply(
      await auth.fetch(new Request('http://h/nope', { method: 'POST' }))
    )
    expect([missing.status, errorCode(missing)]).toEqual([404, 'BA604'])
    const wrong = await toReply(await auth.fetch(new Request('http://h/account/create')))
    expect([wrong.status, errorCode(wrong)]).toEqual([405, 'BA605'])
    expect(wrong.headers.allow).toBe('POST')
    const key = await auth.fetch(new Request('http://h/key/response'))
    expect(await key.text()).toBe(await server.auth.responsePublicKey())
    expect(auth.matches(new Request('http://h/session/request'))).toBe(true)
    expect(auth.matches(new Request('http://h/session/other'))).toBe(false)
  })

  it('checkAccess gives the principal and builds the signed reply with a custom status', async () => {
    const auth = betterAuth(server.auth)
    const { key, token } = await session(server)
    const nonce = newNonce()
    const request = new Request('http://h/notes', {
      method: 'POST',
      body: accessBody(token, key, { at: now(), nonce }),
    })
    const check = await auth.checkAccess<FooBar>(request, {}, { ip: '192.0.2.1' })
    if (!check.ok) throw new Error(await check.response.text())
    expect(check.principal?.request.foo).toBe('bar')
    const reply = await toReply(
      await check.respond({ saved: true }, { status: 201, headers: { 'x-id': '7' } })
    )
    expect([reply.status, reply.headers['x-id']]).toEqual([201, '7'])
    expect(await verifiedReply(server.auth, reply, nonce)).toEqual({ saved: true })

    const failed = await auth.checkAccess(new Request('http://h/notes', { method: 'POST' }))
    if (failed.ok) throw new Error('expected a failure')
    expect(failed.error.code).toBe('BA404')
    expect(failed.response.status).toBe(401)
    expect(failed.response.headers.get('www-authenticate')).toBe('BetterAuth error="BA404"')
  })

  it('gives an anonymous caller its body under optional access', async () => {
    const auth = betterAuth(server.auth)
    const echo = auth.requireAccess(
      ({ principal, body }) => ({
        anonymous: principal === undefined,
        text: Buffer.from(body).toString('utf8'),
      }),
      { credentialsRequired: false }
    )
    const reply = await echo(new Request('http://h/x', { method: 'POST', body: '{"hi":1}' }))
    expect(await reply.json()).toEqual({ anonymous: true, text: '{"hi":1}' })
  })

  it('passes a Response through, and turns a thrown BetterAuthError into its answer', async () => {
    const auth = betterAuth(server.auth)
    const { key, token } = await session(server)
    const raw = auth.requireAccess(() => new Response('raw', { status: 202 }))
    const reply = await raw(
      new Request('http://h/x', { method: 'POST', body: accessBody(token, key, { at: now() }) })
    )
    expect([reply.status, await reply.text()]).toEqual([202, 'raw'])
    const refusing = auth.requireAccess(() => {
      throw new ForbiddenError('not your note')
    })
    const refused = await toReply(
      await refusing(
        new Request('http://h/x', { method: 'POST', body: accessBody(token, key, { at: now() }) })
      )
    )
    expect([refused.status, errorCode(refused)]).toEqual([403, 'BA306'])
    expect(JSON.parse(refused.text).error.message).toBe('not your note')
    const broken = auth.requireAccess(() => {
      throw new TypeError('bug')
    })
    await expect(
      broken(
        new Request('http://h/x', { method: 'POST', body: accessBody(token, key, { at: now() }) })
      )
    ).rejects.toThrow('bug')
  })

  it('reads bodies with a limit, refusing declared and streamed excess', async () => {
    const small = new Request('http://h/', { method: 'POST', body: 'abc' })
    expect(Buffer.from(await readRequestBody(small, 10)).toString()).toBe('abc')
    const declared = new Request('http://h/', {
      method: 'POST',
      body: 'x'.repeat(20),
      headers: { 'content-length': '20' },
    })
    await expect(readRequestBody(declared, 10)).rejects.toMatchObject({ code: 'BA603' })
    const chunks = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 5; i++) controller.enqueue(new Uint8Array(4))
        controller.close()
      },
    })
    const streamed = new Request('http://h/', {
      method: 'POST',
      body: chunks,
      duplex: 'half',
    } as RequestInit)
    await expect(readRequestBody(streamed, 10)).rejects.toMatchObject({ code: 'BA603' })
    const joined = new Request('http://h/', {
      method: 'POST',
      body: new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new Uint8Array([1, 2]))
          controller.enqueue(new Uint8Array([3]))
          controller.close()
        },
      }),
      duplex: 'half',
    } as RequestInit)
    expect([...(await readRequestBody(joined, 10))]).toEqual([1, 2, 3])
  })
})
