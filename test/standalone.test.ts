/** The standalone node:http server: endpoints, protected routes, HTTP-level errors, keep-alive. */
import {
  headerFormContract,
  listenerTarget,
  listening,
  rawRequest,
} from '../testing/adapter-contract'
import {
  Agent,
  createServer as createHttpServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type ServerResponse,
} from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import {
  createServer,
  gracefulShutdown,
  healthHandler,
  lineLogger,
  readiness,
  type StandaloneServer,
} from '../adapters/node'
import {
  BetterAuthClient,
  FetchNetwork,
  ForbiddenError,
  NodeSigningKey,
  formatTimestamp,
  type RequestContext,
} from '../src'
import {
  ATTRIBUTES,
  accessBody,
  errorOf,
  hash,
  makeServer,
  nonce,
  until,
  type Attributes,
  type TestServer,
} from './helpers'

interface Reply {
  status: number
  headers: IncomingHttpHeaders
  body: string
  reused: boolean
}

const agent = new Agent({ keepAlive: true, maxSockets: 1 })

let base: TestServer
let standalone: StandaloneServer<Attributes>
let url: string
let port: number
const contexts: RequestContext[] = []
const seen: { identity: string; device: string; attributes: Attributes; request: unknown }[] = []

/** A request; a body given as a list is written chunk by chunk (chunked transfer encoding). */
function send(
  method: string,
  path: string,
  body?: string | Buffer | string[],
  headers: Record<string, string> = {},
  target = port
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port: target, method, path, headers, agent },
      res => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
            reused: req.reusedSocket,
          })
        )
      }
    )
    req.on('error', reject)
    for (const chunk of Array.isArray(body) ? body : body === undefined ? [] : [body]) {
      req.write(chunk)
    }
    req.end()
  })
}

const post = (path: string, body: string, headers?: Record<string, string>) =>
  send('POST', path, body, { 'content-type': 'application/json', ...headers })

function codeOf(reply: Reply): string {
  return errorOf({ status: reply.status, headers: {}, body: reply.body }).code
}

/** A session on the server under test: an access key and a token issued for it. */
async function session(): Promise<{ key: NodeSigningKey; token: string }> {
  const key = NodeSigningKey.generate()
  const now = base.clock.now()
  const token = await base.auth.issueToken({
    device: hash('device'),
    identity: hash('identity'),
    publicKey: key.publicKeyText,
    rotationHash: hash(NodeSigningKey.generate().publicKeyText),
    issuedAt: formatTimestamp(now),
    expiry: formatTimestamp(now + 15 * 60_000),
    refreshExpiry: formatTimestamp(now + 12 * 3_600_000),
    attributes: ATTRIBUTES,
  })
  return { key, token }
}

beforeAll(async () => {
  base = makeServer()
  standalone = createServer(base.auth, {
    routes: {
      '/echo': principal => ({ echoed: principal.request }),
    },
  })
  standalone.protect<{ foo?: unknown; bar?: unknown }>('/foo/bar', principal => {
    seen.push({
      identity: principal.identity,
      device: principal.device,
      attributes: principal.attributes,
      request: principal.request,
    })
    return { wasFoo: principal.request.foo, wasBar: principal.request.bar }
  })
  standalone.protect('/admin', principal => {
    if (!principal.attributes.permissionsByRole.root) throw new ForbiddenError('root only')
    return {}
  })
  standalone.protect('/broken', () => {
    throw new Error('secret internals')
  })
  standalone.route(
    '/whoami',
    (_body, _req, context) => {
      contexts.push(context)
      return { status: 200, headers: { 'content-type': 'text/plain' }, body: context.ip ?? '' }
    },
    ['GET']
  )
  const address: AddressInfo = await standalone.listen(0)
  port = address.port
  url = `http://127.0.0.1:${port}`
})

afterAll(async () => {
  agent.destroy()
  await standalone.close()
  await base.auth.close()
})

describe('protocol endpoints', () => {
  test('the response key answers GET and POST as text', async () => {
    const key = await base.auth.responsePublicKey()
    for (const method of ['GET', 'POST']) {
      const reply = await send(method, '/key/response', method === 'POST' ? '' : undefined)
      expect(reply.status).toBe(200)
      expect(reply.headers['content-type']).toMatch(/^text\/plain/)
      expect(reply.body).toBe(key)
    }
  })

  test('a client runs every session operation over HTTP and calls a protected route', async () => {
    const client = new BetterAuthClient({ network: new FetchNetwork(url), now: base.clock.now })
    const recovery = NodeSigningKey.generate()
    await client.createAccount(hash(recovery.publicKeyText))
    await client.rotateDevice()
    await client.createSession()
    await client.refreshSession()
    const reply = await client.accessRequest<{ wasFoo: string; wasBar: string }>('/foo/bar', {
      foo: 1,
      bar: 'two',
    })
    expect(reply).toEqual({ wasFoo: 1, wasBar: 'two' })
    const last = seen[seen.length - 1]
    expect(last?.identity).toBe(await client.identity())
    expect(last?.device).toBe(await client.device())
    expect(last?.attributes).toEqual(ATTRIBUTES)
    expect(base.store.dump().accounts[await client.identity()]).toBeDefined()
  })

  test('a protocol error keeps its code and status, and 401s carry WWW-Authenticate', async () => {
    const reply = await post('/session/request', '{"payload":{"access":{}}}')
    expect(reply.status).toBe(400)
    expect(codeOf(reply)).toBe('BA101')

    const key = NodeSigningKey.generate()
    const body = accessBody('0I' + 'A'.repeat(200), key)
    const denied = await post('/foo/bar', body)
    expect(denied.status).toBe(401)
    expect(codeOf(denied)).toBe('BA402')
    expect(denied.headers['www-authenticate']).toBe('BetterAuth error="BA402"')
  })

  test('a prefix moves the protocol endpoints', async () => {
    const prefixed = createServer(base.auth, { prefix: '/auth/' })
    const { port: other } = await prefixed.listen(0)
    try {
      const key = await send('GET', '/auth/key/response', undefined, {}, other)
      expect(key.status).toBe(200)
      const bare = await send('GET', '/key/response', undefined, {}, other)
      expect(bare.status).toBe(404)
      expect(codeOf(bare)).toBe('BA604')
    } finally {
      await prefixed.close()
    }
  })
})

describe('protected routes', () => {
  test('a valid access request gets a signed reply echoing its nonce', async () => {
    const { key, token } = await session()
    const n = nonce()
    const reply = await post(
      '/foo/bar',
      accessBody(token, key, { at: base.clock.now(), nonce: n, request: { foo: 'a', bar: 'b' } })
    )
    expect(reply.status).toBe(200)
    expect(reply.headers['content-type']).toBe('application/json; charset=utf-8')
    expect(Number(reply.headers['content-length'])).toBe(Buffer.byteLength(reply.body))
    const envelope = JSON.parse(reply.body) as {
      payload: { access: { nonce: string; serverIdentity: string }; response: unknown }
      signature: string
    }
    expect(envelope.payload.access).toEqual({
      nonce: n,
      serverIdentity: await base.auth.responsePublicKey(),
    })
    expect(envelope.payload.response).toEqual({ wasFoo: 'a', wasBar: 'b' })
    const payloadText = reply.body.slice(
      '{"payload":'.length,
      reply.body.lastIndexOf(',"signature"')
    )
    expect(
      await base.auth.verifier.verify(
        Buffer.from(payloadText),
        envelope.signature,
        envelope.payload.access.serverIdentity
      )
    ).toBe(true)
  })

  test('routes given as an option are protected too', async () => {
    const { key, token } = await session()
    const body = accessBody(token, key, { at: base.clock.now(), request: [1, 2] })
    const reply = await post('/echo', body)
    expect(reply.status).toBe(200)
    expect((JSON.parse(reply.body) as { payload: { response: unknown } }).payload.response).toEqual(
      { echoed: [1, 2] }
    )
    const unsigned = await post('/echo', '{"payload":{"access":{},"request":{}}}')
    expect(unsigned.status).toBe(401)
    expect(codeOf(unsigned)).toBe('BA404')
  })

  test('a replayed request is refused (BA304, 401) and changes nothing', async () => {
    const { key, token } = await session()
    const body = accessBody(token, key, { at: base.clock.now() })
    expect((await post('/foo/bar', body)).status).toBe(200)
    const before = base.snapshot()
    const calls = seen.length
    const replay = await post('/foo/bar', body)
    expect(replay.status).toBe(401)
    expect(codeOf(replay)).toBe('BA304')
    expect(base.snapshot()).toBe(before)
    expect(seen.length).toBe(calls)
  })

  test('a request signed by another key is refused (BA201, 401)', async () => {
    const { token } = await session()
    const before = base.snapshot()
    const reply = await post(
      '/foo/bar',
      accessBody(token, NodeSigningKey.generate(), { at: base.clock.now() })
    )
    expect(reply.status).toBe(401)
    expect(codeOf(reply)).toBe('BA201')
    expect(base.snapshot()).toBe(before)
  })

  test('stale and future timestamps are refused (BA501 / BA502, 422)', async () => {
    const { key, token } = await session()
    const stale = await post('/foo/bar', accessBody(token, key, { at: base.clock.now() - 31_000 }))
    expect(stale.status).toBe(422)
    expect(codeOf(stale)).toBe('BA501')
    const future = await post('/foo/bar', accessBody(token, key, { at: base.clock.now() + 6_000 }))
    expect(future.status).toBe(422)
    expect(codeOf(future)).toBe('BA502')
  })

  test('an expired token is refused (BA401, 401)', async () => {
    const { key, token } = await session()
    base.clock.advance(16 * 60)
    try {
      const reply = await post('/foo/bar', accessBody(token, key, { at: base.clock.now() }))
      expect(reply.status).toBe(401)
      expect(codeOf(reply)).toBe('BA401')
    } finally {
      base.clock.advance(-16 * 60)
    }
  })

  test('a token from an unknown access key is refused (BA202, 401)', async () => {
    const other = makeServer()
    const key = NodeSigningKey.generate()
    const now = base.clock.now()
    const token = await other.auth.issueToken({
      device: hash('d'),
      identity: hash('i'),
      publicKey: key.publicKeyText,
      rotationHash: hash('r'),
      issuedAt: formatTimestamp(now),
      expiry: formatTimestamp(now + 60_000),
      refreshExpiry: formatTimestamp(now + 120_000),
      attributes: ATTRIBUTES,
    })
    const reply = await post('/foo/bar', accessBody(token, key, { at: now }))
    expect(reply.status).toBe(401)
    expect(codeOf(reply)).toBe('BA202')
  })

  test('a body without an access request is BA404 (401); a malformed one BA101 (400)', async () => {
    for (const body of ['', '{}', '{"payload":{"request":{}}}']) {
      const reply = await post('/foo/bar', body)
      expect(reply.status).toBe(401)
      expect(codeOf(reply)).toBe('BA404')
      expect(reply.headers['www-authenticate']).toBe('BetterAuth error="BA404"')
    }
    const malformed = [
      'not json',
      '[]',
      '{"payload":{},"payload":{"access":{"token":"x"}}}',
      '{"payload":{"access":{"token":"x","nonce":"0A","timestamp":"now"},"request":{}}}',
    ]
    for (const body of malformed) {
      const reply = await post('/foo/bar', body)
      expect(reply.status).toBe(400)
      expect(codeOf(reply)).toBe('BA101')
    }
  })

  test('authorize, checkRevocation and rateLimit options reach the check', async () => {
    const { key, token } = await session()
    const local = createServer(base.auth)
    local.protect('/mine', () => ({ ok: true }), {
      authorize: principal => principal.attributes.permissionsByRole.admin !== undefined,
    })
    local.protect('/theirs', () => ({ ok: true }), { authorize: () => false })
    // The session's device does not exist in the store: a revocation check refuses it.
    local.protect('/revocable', () => ({ ok: true }), { checkRevocation: true })
    local.protect('/get', () => ({ ok: true }), { methods: ['GET', 'POST'] })
    local.protect('/limited', () => ({ ok: true }), {
      rateLimit: { ip: { points: 1, duration: 60 } },
    })
    const { port: other } = await local.listen(0)
    const at = base.clock.now()
    try {
      const mine = await send('POST', '/mine', accessBody(token, key, { at }), {}, other)
      expect(mine.status).toBe(200)
      const theirs = await send('POST', '/theirs', accessBody(token, key, { at }), {}, other)
      expect(theirs.status).toBe(403)
      expect(codeOf(theirs)).toBe('BA306')
      const revoked = await send('POST', '/revocable', accessBody(token, key, { at }), {}, other)
      expect(revoked.status).toBe(401)
      expect(codeOf(revoked)).toBe('BA301')
      const first = await send('POST', '/limited', accessBody(token, key, { at }), {}, other)
      expect(first.status).toBe(200)
      const second = await send('POST', '/limited', accessBody(token, key, { at }), {}, other)
      expect(second.status).toBe(429)
      expect(codeOf(second)).toBe('BA601')
      expect(Number(second.headers['retry-after'])).toBeGreaterThan(0)
      const get = await send('PUT', '/get', '{}', {}, other)
      expect(get.headers.allow).toBe('GET, POST')
    } finally {
      await local.close()
    }
  })

  test("a handler's BetterAuthError keeps its status; other errors are a bare 500", async () => {
    const { key, token } = await session()
    const forbidden = await post('/admin', accessBody(token, key, { at: base.clock.now() }))
    expect(forbidden.status).toBe(403)
    expect(errorOf({ status: 403, headers: {}, body: forbidden.body })).toEqual({
      code: 'BA306',
      message: 'root only',
    })
    const broken = await post('/broken', accessBody(token, key, { at: base.clock.now() }))
    expect(broken.status).toBe(500)
    expect(codeOf(broken)).toBe('BA600')
    expect(broken.body).not.toContain('secret')
  })
})

describe('HTTP errors', () => {
  test('an unknown path is BA604 (404)', async () => {
    const reply = await post('/no/such/route', '{}')
    expect(reply.status).toBe(404)
    expect(codeOf(reply)).toBe('BA604')
  })

  test('a known path with another method is BA605 (405) with Allow', async () => {
    const put = await send('PUT', '/foo/bar', '{}')
    expect(put.status).toBe(405)
    expect(codeOf(put)).toBe('BA605')
    expect(put.headers.allow).toBe('POST')
    const get = await send('GET', '/session/create')
    expect(get.status).toBe(405)
    expect(codeOf(get)).toBe('BA605')
    const del = await send('DELETE', '/key/response')
    expect(del.status).toBe(405)
    expect(del.headers.allow).toBe('GET, POST')
  })

  test('a declared body over the limit is BA603 (413) and closes the connection', async () => {
    const reply = await post('/session/request', 'x'.repeat(65537))
    expect(reply.status).toBe(413)
    expect(codeOf(reply)).toBe('BA603')
    expect(reply.headers.connection).toBe('close')
  })

  test('a streamed (chunked) body over the limit is BA603 (413)', async () => {
    const chunks = Array.from({ length: 20 }, () => 'y'.repeat(4096))
    const reply = await send('POST', '/foo/bar', chunks)
    expect(reply.status).toBe(413)
    expect(codeOf(reply)).toBe('BA603')
  })

  test('a smaller limit can be set', async () => {
    const small = createServer(base.auth, { maxBodyBytes: 100 })
    const { port: other } = await small.listen(0)
    try {
      const reply = await send('POST', '/session/request', 'z'.repeat(101), {}, other)
      expect(reply.status).toBe(413)
      expect(codeOf(reply)).toBe('BA603')
    } finally {
      await small.close()
    }
  })

  test('the query string and a trailing slash do not change the route', async () => {
    expect((await send('GET', '/key/response?x=1')).status).toBe(200)
    expect((await send('GET', '/key/response/')).status).toBe(200)
  })

  test('the OpenAPI document is served when asked for, under the prefix', async () => {
    const documented = createServer(base.auth, { prefix: '/auth', openapi: true })
    const { port: other } = await documented.listen(0)
    try {
      const reply = await send('GET', '/auth/openapi.json', undefined, {}, other)
      expect(reply.status).toBe(200)
      const document = JSON.parse(reply.body) as { openapi: string; paths: Record<string, unknown> }
      expect(document.openapi).toMatch(/^3\.1/)
      expect(Object.keys(document.paths)).toContain('/auth/session/create')
      expect((await send('GET', '/openapi.json', undefined, {}, other)).status).toBe(404)
    } finally {
      await documented.close()
    }
    expect((await send('GET', '/openapi.json')).status).toBe(404)
  })
})

describe('connections and context', () => {
  test('keep-alive: consecutive requests share one socket', async () => {
    const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 })
    const get = () =>
      new Promise<boolean>((resolve, reject) => {
        const req = httpRequest(
          { host: '127.0.0.1', port, path: '/key/response', agent: keepAlive },
          res => {
            res.resume()
            res.on('end', () => resolve(req.reusedSocket))
          }
        )
        req.on('error', reject)
        req.end()
      })
    try {
      expect(await get()).toBe(false)
      expect(await get()).toBe(true)
      expect(await get()).toBe(true)
    } finally {
      keepAlive.destroy()
    }
  })

  test('the client IP is the socket address unless proxies are trusted', async () => {
    const untrusted = await send('GET', '/whoami', undefined, { 'x-forwarded-for': '203.0.113.9' })
    expect(untrusted.body).toBe('127.0.0.1')
    expect(contexts[contexts.length - 1]).toEqual({ ip: '127.0.0.1', path: '/whoami' })

    // The address a server with `trustProxy` sees for a request that came through proxies.
    const seenBehind = async (
      trustProxy: boolean | number,
      forwardedFor: string
    ): Promise<string> => {
      const proxied = createServer(base.auth, { trustProxy })
      proxied.route('/whoami', (_b, _r, context) => ({
        status: 200,
        headers: {},
        body: context.ip ?? '',
      }))
      const { port: other } = await proxied.listen(0)
      try {
        return (await send('POST', '/whoami', '', { 'x-forwarded-for': forwardedFor }, other)).body
      } finally {
        await proxied.close()
      }
    }
    expect(await seenBehind(true, '203.0.113.9, 10.0.0.1')).toBe('203.0.113.9')
    // One trusted proxy: the address it saw (the last entry), not what the client claimed.
    expect(await seenBehind(1, '198.51.100.1, 203.0.113.9')).toBe('203.0.113.9')
  })

  test('CORS: preflights of known paths get 204, replies carry the allowed origin', async () => {
    const cors = createServer(base.auth, { cors: 'https://app.example' })
    const { port: other } = await cors.listen(0)
    try {
      const preflight = await send('OPTIONS', '/session/request', undefined, {}, other)
      expect(preflight.status).toBe(204)
      expect(preflight.headers['access-control-allow-origin']).toBe('https://app.example')
      expect(preflight.headers['access-control-allow-methods']).toBe('POST')
      const key = await send('GET', '/key/response', undefined, {}, other)
      expect(key.headers['access-control-allow-origin']).toBe('https://app.example')
      const unknown = await send('OPTIONS', '/nowhere', undefined, {}, other)
      expect(unknown.status).toBe(404)
    } finally {
      await cors.close()
    }
    // Without the option there is no CORS answer.
    const plain = await send('OPTIONS', '/session/request')
    expect(plain.status).toBe(405)
    expect(plain.headers['access-control-allow-origin']).toBeUndefined()
  })

  test('CORS for a list of origins: only those get the origin back and their preflights', async () => {
    const app = 'https://app.example'
    const cors = createServer(base.auth, { cors: [app, 'http://localhost:5173'] })
    cors.protect('/me', ({ identity }) => ({ identity }), { methods: ['GET'], binding: 'headers' })
    const { port: other } = await cors.listen(0)
    const preflight = (origin: string) =>
      send('OPTIONS', '/me', undefined, { origin, 'access-control-request-method': 'GET' }, other)
    try {
      const allowed = await preflight(app)
      expect(allowed.status).toBe(204)
      expect(allowed.headers['access-control-allow-origin']).toBe(app)
      expect(allowed.headers.vary).toMatch(/origin/i)
      expect(allowed.headers['access-control-allow-methods']).toBe('GET')
      expect(allowed.headers['access-control-allow-headers']).toMatch(/signature-input/)
      const stranger = await preflight('https://evil.example')
      expect(stranger.status).toBe(403)
      expect(stranger.headers['access-control-allow-origin']).toBeUndefined()
      // A plain OPTIONS (no preflight) from nowhere is the usual 405.
      expect((await send('OPTIONS', '/me', undefined, {}, other)).status).toBe(405)
      // Replies: the allowed origin back, with the signature headers exposed; nothing for others.
      const reply = await send('GET', '/key/response', undefined, { origin: app }, other)
      expect(reply.headers['access-control-allow-origin']).toBe(app)
      expect(reply.headers['access-control-expose-headers']).toMatch(/Signature-Input/)
      const refused = await send('GET', '/me', undefined, { origin: 'https://evil.example' }, other)
      expect(refused.status).toBe(401)
      expect(refused.headers['access-control-allow-origin']).toBeUndefined()
      expect(refused.headers['access-control-expose-headers']).toBeUndefined()
    } finally {
      await cors.close()
    }
    expect(() => createServer(base.auth, { cors: ['*'] })).toThrow(TypeError)
    expect(() => createServer(base.auth, { cors: '' })).toThrow(TypeError)
  })

  test('paths must start with a slash', () => {
    expect(() => standalone.protect('foo', () => ({}))).toThrow(TypeError)
  })

  test('createServer builds its core from options when given no core', async () => {
    const built = createServer<Attributes>({
      keys: { env: false },
      attributes: () => ATTRIBUTES,
      rateLimit: false,
    })
    const { port: other } = await built.listen(0)
    try {
      const key = await send('GET', '/key/response', undefined, {}, other)
      expect(key.body).toBe(await built.auth.responsePublicKey())
      expect(key.body).not.toBe(await base.auth.responsePublicKey())
    } finally {
      await built.close()
      await built.auth.close()
    }
  })

  test('close() stops listening and is idempotent', async () => {
    const other = createServer(base.auth)
    await other.listen(0)
    await other.close()
    expect(other.server.listening).toBe(false)
    await other.close()
  })
})

describe('health and readiness', () => {
  test('GET /healthz is 200 ok; GET /readyz is 200 ready with every check ok; HEAD too', async () => {
    const live = await send('GET', '/healthz')
    expect([live.status, JSON.parse(live.body)]).toEqual([200, { status: 'ok' }])
    expect(live.headers['cache-control']).toBe('no-store')
    const ready = await send('GET', '/readyz')
    expect([ready.status, JSON.parse(ready.body)]).toEqual([
      200,
      { status: 'ready', checks: { accounts: 'ok', challenges: 'ok', keys: 'ok' } },
    ])
    const head = await send('HEAD', '/readyz')
    expect([head.status, head.body]).toEqual([200, ''])
    expect((await send('POST', '/healthz', '{}')).status).toBe(405)
  })

  test('the paths can be renamed or turned off', async () => {
    const renamed = createServer(base.auth, { health: { healthPath: '/live', readyPath: false } })
    const off = createServer(base.auth, { health: false })
    const { port: a } = await renamed.listen(0)
    const { port: b } = await off.listen(0)
    try {
      expect((await send('GET', '/live', undefined, {}, a)).status).toBe(200)
      expect((await send('GET', '/readyz', undefined, {}, a)).status).toBe(404)
      expect((await send('GET', '/healthz', undefined, {}, b)).status).toBe(404)
      expect((await send('GET', '/readyz', undefined, {}, b)).status).toBe(404)
    } finally {
      await renamed.close()
      await off.close()
    }
  })

  test('a store that does not answer is a 503 BA602 naming the check, by the deadline', async () => {
    const frozen = makeServer()
    // Accounts hang (a frozen database); challenges fail at once (a refused connection).
    frozen.store.accounts.hasIdentity = () => new Promise<boolean>(() => undefined)
    frozen.store.challenges.peek = () => Promise.reject(new Error('connect ECONNREFUSED'))
    const warnings: string[] = []
    const logger = { ...lineLogger({ write: line => warnings.push(line) }) }
    const server = createServer(frozen.auth, { health: { timeoutMs: 300, logger } })
    const { port: other } = await server.listen(0)
    try {
      const started = Date.now()
      const [first, second] = await Promise.all([
        send('GET', '/readyz', undefined, {}, other),
        send('GET', '/readyz', undefined, {}, other),
      ])
      expect(Date.now() - started).toBeLessThan(1500)
      for (const reply of [first, second]) {
        expect(reply.status).toBe(503)
        const body = JSON.parse(reply.body) as { error: { code: string }; checks: unknown }
        expect(body.error.code).toBe('BA602')
        expect(body.checks).toEqual({ accounts: 'timeout', challenges: 'unavailable', keys: 'ok' })
      }
      expect(first.body).not.toContain('ECONNREFUSED')
      // Liveness does not touch the stores.
      expect((await send('GET', '/healthz', undefined, {}, other)).status).toBe(200)
      // The outage is logged once, on one line.
      expect((await send('GET', '/readyz', undefined, {}, other)).status).toBe(503)
      expect(warnings).toHaveLength(1)
      expect(warnings[0]).toMatch(/ warn BA602 not ready \(accounts=timeout challenges=unavailable/)
    } finally {
      await server.close()
      await frozen.auth.close()
    }
  })

  test('readiness() on its own: ready, or which check failed', async () => {
    expect(await readiness(base.auth)).toEqual({
      ready: true,
      checks: { accounts: 'ok', challenges: 'ok', keys: 'ok' },
    })
    const keyless = makeServer({ keys: { env: false, store: undefined } })
    const result = await readiness({
      store: keyless.auth.store,
      keys: () => Promise.reject(new Error('key store down')),
    })
    expect(result).toEqual({
      ready: false,
      checks: { accounts: 'ok', challenges: 'ok', keys: 'unavailable' },
    })
    await keyless.auth.close()
  })

  test('healthHandler answers the health paths as node:http middleware and passes the rest on', async () => {
    const handler = healthHandler(base.auth)
    const plain = createHttpServer((req, res) =>
      handler(req, res, () => res.writeHead(418).end('next'))
    )
    await new Promise<void>(resolve => plain.listen(0, '127.0.0.1', resolve))
    const other = (plain.address() as AddressInfo).port
    try {
      expect((await send('GET', '/healthz?x=1', undefined, {}, other)).status).toBe(200)
      expect((await send('GET', '/readyz', undefined, {}, other)).status).toBe(200)
      expect((await send('GET', '/elsewhere', undefined, {}, other)).status).toBe(418)
    } finally {
      plain.closeAllConnections()
      await new Promise(resolve => plain.close(resolve))
    }
  })

  test('lineLogger writes one line per event: level, code, message, the cause', () => {
    const lines: string[] = []
    const logger = lineLogger({ write: line => lines.push(line), level: 'warn' })
    const cause = new Error('connect ECONNREFUSED 127.0.0.1:5432\n    at TCPConnectWrap')
    logger.error(
      { endpoint: '/account/create', code: 'BA602', status: 503, err: cause },
      'storage unavailable'
    )
    logger.info({}, 'not written')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(
      /^\S+Z error BA602 storage unavailable: connect ECONNREFUSED 127\.0\.0\.1:5432 {5}at TCPConnectWrap \(endpoint=\/account\/create\)$/
    )
  })
})

describe('graceful shutdown', () => {
  /** A standalone server of its own whose /slow route answers when `release` is called. */
  async function slowServer(shutdownTimeout = 10_000) {
    let release: () => void = () => undefined
    const started: (() => void)[] = []
    const server = createServer(base.auth, { shutdownTimeout })
    server.route(
      '/slow',
      async () => {
        started.splice(0).forEach(resolve => resolve())
        await new Promise<void>(resolve => (release = resolve))
        return { status: 200, headers: { 'content-type': 'text/plain' }, body: 'done' }
      },
      ['GET', 'POST']
    )
    const { port: slowPort } = await server.listen(0)
    const inHandler = () => new Promise<void>(resolve => started.push(resolve))
    return { server, slowPort, inHandler, release: () => release() }
  }

  test('answers the request in flight with Connection: close, then stops', async () => {
    const { server, slowPort, inHandler, release } = await slowServer()
    const keepAlive = new Agent({ keepAlive: true })
    try {
      const get = (path: string) =>
        new Promise<Reply>((resolve, reject) => {
          const req = httpRequest(
            { host: '127.0.0.1', port: slowPort, path, agent: keepAlive },
            res => {
              let body = ''
              res.on('data', chunk => (body += String(chunk)))
              res.on('end', () =>
                resolve({ status: res.statusCode ?? 0, headers: res.headers, body, reused: false })
              )
            }
          )
          req.on('error', reject)
          req.end()
        })
      // An idle keep-alive connection, and a busy one.
      expect((await get('/healthz')).headers.connection).toBe('keep-alive')
      const entered = inHandler()
      const slow = get('/slow')
      await entered
      const closed = server.close()
      release()
      const reply = await slow
      expect([reply.status, reply.body, reply.headers.connection]).toEqual([200, 'done', 'close'])
      await closed
      expect(server.server.listening).toBe(false)
      await expect(get('/healthz')).rejects.toMatchObject({ code: 'ECONNREFUSED' })
    } finally {
      keepAlive.destroy()
    }
  })

  test('a request still open at the deadline (a slow upload) is cut', async () => {
    const { server, slowPort } = await slowServer(300)
    // The shutdown begins once the server has the request (its headers parsed).
    const received = new Promise(resolve => server.server.once('request', resolve))
    const socket = connect(slowPort, '127.0.0.1')
    await new Promise(resolve => socket.once('connect', resolve))
    socket.write('POST /slow HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n{"partial":')
    const ended = new Promise(resolve => socket.once('close', resolve))
    await received
    const started = Date.now()
    await server.close()
    await ended
    expect(Date.now() - started).toBeLessThan(2000)
  })

  test('gracefulShutdown works on any http.Server and runs onClose after it closed', async () => {
    const order: string[] = []
    // The handler holds its reply; the test sends it once the shutdown has begun.
    const held: ServerResponse[] = []
    const plain = createHttpServer((_req, res) => {
      res.once('finish', () => order.push('sent'))
      held.push(res)
    })
    await new Promise<void>(resolve => plain.listen(0, '127.0.0.1', resolve))
    const other = (plain.address() as AddressInfo).port
    const shutdown = gracefulShutdown(plain, {
      signals: [],
      deadlineMs: 2000,
      onClose: () => void order.push('onClose'),
    })
    const reply = send('GET', '/', undefined, {}, other)
    await until(() => held.length === 1, { what: 'the request reached the handler' })
    const closed = shutdown.close()
    held[0]?.end('late')
    await closed
    expect(shutdown.closing).toBe(true)
    expect(order).toEqual(['sent', 'onClose'])
    expect((await reply).headers.connection).toBe('close')
  })
})

headerFormContract(
  'standalone server',
  core => {
    const standalone = createServer(core)
    standalone.protect<{ foo?: unknown; bar?: unknown }>('/foo/bar', principal => ({
      wasFoo: principal.request.foo,
      wasBar: principal.request.bar,
    }))
    standalone.protect(
      '/items',
      (principal, req) => {
        const url = req.url ?? ''
        return {
          identity: principal.identity,
          query: url.includes('?') ? url.slice(url.indexOf('?')) : '?',
        }
      },
      { methods: ['GET'] }
    )
    standalone.protect(
      '/notes/:id',
      (principal, req, { id }) =>
        req.method === 'DELETE' ? { deleted: id } : { id, body: principal.request },
      { methods: ['DELETE', 'PUT'], binding: 'headers' }
    )
    return listenerTarget(standalone.listener)
  },
  { streamsReplies: false }
)

describe('standalone server: path parameters', () => {
  it('matches :name segments after exact paths, decoded, one segment each', async () => {
    const standalone = createServer(base.auth)
    standalone.route('/notes/:id', () => ({ status: 200, headers: {}, body: 'pattern' }), ['GET'])
    standalone.route('/notes/all', () => ({ status: 200, headers: {}, body: 'exact' }), ['GET'])
    standalone.route('/a/:x/b/:y', () => ({ status: 200, headers: {}, body: 'two' }), ['GET'])
    const target = listenerTarget(standalone.listener)
    try {
      expect((await target.get('/notes/all')).text).toBe('exact')
      expect((await target.get('/notes/7')).text).toBe('pattern')
      expect((await target.get('/notes/7/')).text).toBe('pattern')
      expect((await target.get('/a/1/b/2')).text).toBe('two')
      for (const path of ['/notes', '/notes/7/x', '/notes/%E0%A4%A', '/a/1/c/2']) {
        expect([path, (await target.get(path)).status]).toEqual([path, 404])
      }
    } finally {
      await target.close?.()
    }
  })

  it('gives a protected handler the decoded params', async () => {
    const standalone = createServer(base.auth)
    const seen: unknown[] = []
    standalone.protect('/notes/:id', (_principal, _req, params) => {
      seen.push(params)
      return { ok: true }
    })
    const { key, token } = await session()
    const target = listenerTarget(standalone.listener)
    try {
      const reply = await target.post('/notes/a%20b', accessBody(token, key, { at: base.clock.ms }))
      expect(reply.status).toBe(200)
      expect(seen).toEqual([{ id: 'a b' }])
    } finally {
      await target.close?.()
    }
  })
})

describe('standalone server: which form a request is read in', () => {
  // A body that is no classic access request, so the answer names the form it was read in.
  const head = (path: string, authorization: string[]) =>
    `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
    authorization.map(value => `Authorization: ${value}\r\n`).join('') +
    'Content-Length: 2\r\nConnection: close\r\n\r\n{}'

  it.each([
    [['BetterAuth abc'], 'any', 'headers'],
    [['betterauth abc'], 'any', 'headers'],
    [['BetterAuth'], 'any', 'headers'],
    [['BetterAuth a', 'BetterAuth b'], 'any', 'headers'],
    [['BetterAuthX abc'], 'any', 'classic'],
    [['Bearer abc'], 'any', 'classic'],
    [['BetterAuth abc'], 'body', 'classic'],
  ] as const)('Authorization %j on a route for %s: the %s form', async (lines, binding, form) => {
    const standalone = createServer(base.auth)
    standalone.protect('/choice', () => ({ ok: true }), { binding })
    const server = listening(standalone.listener)
    try {
      const reply = await rawRequest(await server.port(), head('/choice', [...lines]))
      const { error } = JSON.parse(reply.text) as { error: { code: string; message: string } }
      // The header form names the field it missed; the classic form finds no envelope (BA404).
      if (form === 'headers') {
        expect([reply.status, error.code]).toEqual([400, 'BA101'])
        expect(error.message).toMatch(/^invalid message \(headers: (signature-input|authorization)/)
      } else expect([reply.status, error.code]).toEqual([401, 'BA404'])
    } finally {
      await server.close()
    }
  })
})
