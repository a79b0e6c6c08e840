/**
 * The admin HTTP endpoints: off by default, never open (an authorization hook is required),
 * refusals that change nothing, every action through real flows with the hook's actor in its
 * audit event, malformed bodies, and the standalone server, Express and fetch mounts.
 */
import type { IncomingMessage } from 'node:http'
import express from 'express'
import request from 'supertest'
import {
  CredentialsRequiredError,
  adminHttp,
  bearerAuthorize,
  type AdminAuthorize,
  type AuditEvent,
  type HandlerResult,
} from '../src'
import { createServer, type StandaloneServer } from '../adapters/node'
import { betterAuth as expressAuth } from '../adapters/express'
import { betterAuth as fetchAuth } from '../adapters/fetch'
import {
  createdAccount,
  hash,
  makeServer,
  openSession,
  sessionRequest,
  type Attributes,
  type Session,
  type TestServer,
  outcomeOf,
} from './helpers'
import { refreshBody, twoDevicesWithSessions } from './scenario'

/** Refreshes `session` through the core; the status and code. */
async function refresh(server: TestServer, session: Session) {
  return outcomeOf(await server.call('refreshSession', refreshBody(session)))
}

/** A standalone server of `server`'s core with the admin endpoints, listening. */
async function standalone(
  server: TestServer,
  authorize: AdminAuthorize<IncomingMessage>,
  options: { prefix?: string; openapi?: boolean } = {}
) {
  const http: StandaloneServer<Attributes> = createServer(server.auth, {
    admin: { authorize, ...(options.prefix === undefined ? {} : { prefix: options.prefix }) },
    ...(options.openapi === true ? { openapi: true } : {}),
  })
  const address = await http.listen(0)
  const base = `http://127.0.0.1:${address.port}`
  const call = async (method: string, path: string, body?: string, headers = {}) => {
    const reply = await fetch(`${base}${path}`, {
      method,
      headers,
      ...(body === undefined ? {} : { body }),
    })
    const text = await reply.text()
    return {
      status: reply.status,
      headers: reply.headers,
      json: (text === '' || text.startsWith('1AAI') ? undefined : JSON.parse(text)) as Record<
        string,
        unknown
      > & {
        error?: { code: string; message: string }
      },
    }
  }
  return { http, base, call, close: () => http.close() }
}

/** Everything stored, to compare before and after a refused call. */
async function everything(server: TestServer, identities: string[]): Promise<string> {
  const records = await Promise.all(identities.map(i => server.store.accounts.getIdentityRecord(i)))
  return JSON.stringify({ dump: server.store.dump(), records })
}

describe('admin endpoints are off unless mounted, and never open', () => {
  it('the standalone server answers 404 under /admin by default', async () => {
    const server = makeServer()
    const account = await createdAccount(server)
    const http = createServer(server.auth)
    const { port } = await http.listen(0)
    try {
      for (const [method, path] of [
        ['GET', `/admin/identities/${account.identity}`],
        ['POST', `/admin/identities/${account.identity}/suspend`],
        ['DELETE', `/admin/identities/${account.identity}`],
      ] as const) {
        const reply = await fetch(`http://127.0.0.1:${port}${path}`, { method })
        expect(reply.status).toBe(404)
        expect(((await reply.json()) as { error: { code: string } }).error.code).toBe('BA604')
      }
    } finally {
      await http.close()
    }
  })

  it('enabling them without an authorize hook is a TypeError naming the option', () => {
    const server = makeServer()
    const cases: unknown[] = [true, {}, { authorize: 'yes' }, { prefix: '/admin' }, null]
    for (const admin of cases) {
      expect(() => createServer(server.auth, { admin: admin as never })).toThrow(TypeError)
      expect(() => adminHttp(server.auth, admin as never)).toThrow(/admin/)
      expect(() => expressAuth(server.auth).adminRouter(admin as never)).toThrow(TypeError)
      expect(() => fetchAuth(server.auth).adminHandler(admin as never)).toThrow(TypeError)
    }
    expect(() => createServer(server.auth, { admin: {} as never })).toThrow(/admin\.authorize/)
    const authorize = () => 'ops'
    for (const prefix of ['/', '', 'admin', '/a b']) {
      expect(() => adminHttp(server.auth, { authorize, prefix })).toThrow(/admin\.prefix/)
    }
    // `false` is off, as is leaving it out.
    expect(() => createServer(server.auth, { admin: false })).not.toThrow()
  })
})

describe('the authorization hook', () => {
  it('refusing answers 403 BA306 on every endpoint and changes nothing', async () => {
    const events: AuditEvent[] = []
    const server = makeServer({ onEvent: event => events.push(event) })
    const account = await createdAccount(server)
    const session = await openSession(server, account.first)
    const seen: IncomingMessage[] = []
    const admin = await standalone(server, req => {
      seen.push(req)
      return undefined
    })
    try {
      const before = await everything(server, [account.identity])
      events.length = 0
      const id = account.identity
      const calls: [string, string, string?][] = [
        ['GET', `/admin/identities/${id}`],
        ['POST', `/admin/identities/${id}/devices/${account.first.device}/revoke`],
        ['POST', `/admin/identities/${id}/sessions/end`, '{}'],
        ['POST', `/admin/identities/${id}/suspend`, '{"reason":"x"}'],
        ['POST', `/admin/identities/${id}/reinstate`],
        ['DELETE', `/admin/identities/${id}`],
        // Refused before the body or the identity is looked at.
        ['POST', `/admin/identities/${hash('nobody')}/suspend`, '{not json'],
      ]
      for (const [method, path, body] of calls) {
        const reply = await admin.call(method, path, body)
        expect({ method, path, status: reply.status, code: reply.json.error?.code }).toEqual({
          method,
          path,
          status: 403,
          code: 'BA306',
        })
        expect(reply.headers.get('cache-control')).toBe('no-store')
      }
      expect(seen).toHaveLength(calls.length)
      expect(seen[0]?.headers.host).toMatch(/^127\.0\.0\.1:/)
      expect(await everything(server, [account.identity])).toBe(before)
      expect(events).toEqual([])
      expect(await refresh(server, session)).toEqual({ status: 200 })
    } finally {
      await admin.close()
    }
  })

  it('no credentials: 401 BA404 with a challenge; a hook that throws: 500, nothing changed', async () => {
    const server = makeServer()
    const account = await createdAccount(server)
    let mode: 'none' | 'throw' | 'bad' = 'none'
    const admin = await standalone(server, () => {
      if (mode === 'none') throw new CredentialsRequiredError()
      if (mode === 'throw') throw new Error('directory down')
      return 42 as unknown as string
    })
    try {
      const before = await everything(server, [account.identity])
      const path = `/admin/identities/${account.identity}/suspend`
      const none = await admin.call('POST', path)
      expect([none.status, none.json.error?.code]).toEqual([401, 'BA404'])
      expect(none.headers.get('www-authenticate')).toBe('Bearer realm="better-auth admin"')
      mode = 'throw'
      const thrown = await admin.call('POST', path)
      expect([thrown.status, thrown.json.error?.code]).toEqual([500, 'BA600'])
      mode = 'bad' // not an actor
      expect((await admin.call('POST', path)).status).toBe(500)
      expect(await everything(server, [account.identity])).toBe(before)
    } finally {
      await admin.close()
    }
  })
})

describe('with the hook accepting', () => {
  it('every action works, and its audit event carries the actor the hook returned', async () => {
    const events: AuditEvent[] = []
    const server = makeServer({ onEvent: event => events.push(event) })
    const { account, second, first, other } = await twoDevicesWithSessions(server)
    // The actor from the request, as an operator's hook would find it (a session, a header).
    const admin = await standalone(server, req =>
      req.headers['x-operator'] === undefined
        ? undefined
        : `ops:${String(req.headers['x-operator'])}`
    )
    const as = (name: string) => ({ 'x-operator': name, 'content-type': 'application/json' })
    const id = account.identity
    try {
      events.length = 0
      server.clock.advance(1)
      const shown = await admin.call('GET', `/admin/identities/${id}`, undefined, as('alice'))
      expect(shown.status).toBe(200)
      expect(shown.json).toMatchObject({ identity: id, suspendedAt: null })
      expect((shown.json.devices as { device: string }[]).map(d => d.device).sort()).toEqual(
        [account.first.device, second.device].sort()
      )

      // End one device's sessions: its refresh is refused, the other's is not.
      const ended = await admin.call(
        'POST',
        `/admin/identities/${id}/sessions/end`,
        JSON.stringify({ device: second.device }),
        as('bob')
      )
      expect(ended.json).toEqual({
        action: 'admin.sessions.ended',
        identity: id,
        device: second.device,
        at: server.clock.ms,
        changed: true,
        actor: 'ops:bob',
      })
      expect(await refresh(server, other)).toEqual({ status: 401, code: 'BA401' })

      // Suspend: no new sessions, no refresh; then reinstate.
      const suspended = await admin.call(
        'POST',
        `/admin/identities/${id}/suspend`,
        '{"reason":"chargeback"}',
        as('carol')
      )
      expect(suspended.json).toMatchObject({ action: 'admin.identity.suspended', changed: true })
      expect(outcomeOf(await server.call('requestSession', sessionRequest(id)))).toEqual({
        status: 403,
        code: 'BA307',
      })
      expect(await refresh(server, first)).toEqual({ status: 403, code: 'BA307' })
      const again = await admin.call('POST', `/admin/identities/${id}/suspend`, '', as('carol'))
      expect(again.json).toMatchObject({ changed: false })
      const reinstated = await admin.call(
        'POST',
        `/admin/identities/${id}/reinstate`,
        undefined,
        as('carol')
      )
      expect(reinstated.json).toMatchObject({ action: 'admin.identity.reinstated', changed: true })
      server.clock.advance(1)
      await openSession(server, account.first)

      // Revoke the second device; the identity shows one device.
      const revoked = await admin.call(
        'POST',
        `/admin/identities/${id}/devices/${second.device}/revoke`,
        undefined,
        as('dan')
      )
      expect(revoked.json).toMatchObject({ action: 'admin.device.revoked', device: second.device })
      const after = await admin.call('GET', `/admin/identities/${id}`, undefined, as('dan'))
      expect((after.json.devices as { device: string }[]).map(d => d.device)).toEqual([
        account.first.device,
      ])

      // Delete: gone for good.
      const deleted = await admin.call('DELETE', `/admin/identities/${id}`, undefined, as('erin'))
      expect(deleted.json).toMatchObject({ action: 'admin.identity.deleted', actor: 'ops:erin' })
      const gone = await admin.call('GET', `/admin/identities/${id}`, undefined, as('erin'))
      expect([gone.status, gone.json.error?.code]).toEqual([404, 'BA608'])

      const route = (tail: string) => `/admin/identities/:identity${tail}`
      const admins = events.filter(e => e.type.startsWith('admin.'))
      expect(admins.map(({ time: _time, ...event }) => event)).toEqual([
        {
          type: 'admin.sessions.ended',
          route: route('/sessions/end'),
          ip: '127.0.0.1',
          identity: id,
          device: second.device,
          actor: 'ops:bob',
        },
        {
          type: 'admin.identity.suspended',
          route: route('/suspend'),
          ip: '127.0.0.1',
          identity: id,
          actor: 'ops:carol',
          reason: 'chargeback',
        },
        {
          type: 'admin.identity.reinstated',
          route: route('/reinstate'),
          ip: '127.0.0.1',
          identity: id,
          actor: 'ops:carol',
        },
        {
          type: 'admin.device.revoked',
          route: route('/devices/:device/revoke'),
          ip: '127.0.0.1',
          identity: id,
          device: second.device,
          actor: 'ops:dan',
        },
        {
          type: 'admin.identity.deleted',
          route: route(''),
          ip: '127.0.0.1',
          identity: id,
          actor: 'ops:erin',
        },
      ])
    } finally {
      await admin.close()
    }
  })

  it('unknown identities or devices: 404 BA608, nothing changed', async () => {
    const server = makeServer()
    const account = await createdAccount(server)
    const admin = await standalone(server, () => 'ops:alice')
    try {
      const before = await everything(server, [account.identity])
      const unknown = hash('nobody')
      const id = account.identity
      for (const [method, path, body] of [
        ['GET', `/admin/identities/${unknown}`],
        ['DELETE', `/admin/identities/${unknown}`],
        ['POST', `/admin/identities/${unknown}/suspend`],
        ['POST', `/admin/identities/${unknown}/reinstate`],
        ['POST', `/admin/identities/${unknown}/sessions/end`],
        ['POST', `/admin/identities/${id}/sessions/end`, JSON.stringify({ device: unknown })],
        ['POST', `/admin/identities/${id}/devices/${unknown}/revoke`],
        ['POST', `/admin/identities/${unknown}/devices/${account.first.device}/revoke`],
      ] as [string, string, string?][]) {
        const reply = await admin.call(method, path, body)
        expect({ path, status: reply.status, code: reply.json.error?.code }).toEqual({
          path,
          status: 404,
          code: 'BA608',
        })
      }
      expect(await everything(server, [account.identity])).toBe(before)
    } finally {
      await admin.close()
    }
  })

  it('malformed bodies: 400 BA101 naming the field, nothing changed; 404 and 405 for other paths', async () => {
    const server = makeServer()
    const account = await createdAccount(server)
    const admin = await standalone(server, () => 'ops:alice')
    try {
      const before = await everything(server, [account.identity])
      const id = account.identity
      const end = `/admin/identities/${id}/sessions/end`
      const suspend = `/admin/identities/${id}/suspend`
      const cases: [string, string, RegExp][] = [
        [end, '{', /body/],
        [end, '[]', /body: must be a JSON object/],
        [end, '"x"', /body: must be a JSON object/],
        [end, '{"device":42}', /device/],
        [end, '{"device":null}', /device/],
        [end, '{"device":""}', /device/],
        [end, '{"device":"a","device":"b"}', /duplicate|device/],
        [end, '{"reason":"x"}', /body\.reason: unknown field/],
        [suspend, '{"reason":""}', /reason/],
        [suspend, `{"reason":"${'x'.repeat(1001)}"}`, /reason/],
        [suspend, '{"reason":"a\\nb"}', /reason/],
        [suspend, '{"device":"x"}', /body\.device: unknown field/],
        [`/admin/identities/${id}/reinstate`, '{"x":1}', /body\.x: unknown field/],
        [`/admin/identities/${id}/devices/${account.first.device}/revoke`, '{"a":1}', /body\.a/],
        [end, '\xff', /body/],
      ]
      for (const [path, body, message] of cases) {
        const reply = await admin.call('POST', path, body)
        expect({ body, status: reply.status, code: reply.json.error?.code }).toEqual({
          body,
          status: 400,
          code: 'BA101',
        })
        expect(reply.json.error?.message).toMatch(message)
      }
      const deleted = await admin.call('DELETE', `/admin/identities/${id}`, '{"yes":true}')
      expect(deleted.status).toBe(400)
      expect(await everything(server, [account.identity])).toBe(before)

      const wrong = await admin.call('PUT', `/admin/identities/${id}`)
      expect([wrong.status, wrong.json.error?.code]).toEqual([405, 'BA605'])
      expect(wrong.headers.get('allow')).toBe('GET, DELETE')
      expect((await admin.call('GET', `/admin/identities/${id}/suspend`)).status).toBe(405)
      for (const path of ['/admin', '/admin/identities', `/admin/identities/${id}/frob`]) {
        const reply = await admin.call('GET', path)
        expect([path, reply.status, reply.json.error?.code]).toEqual([path, 404, 'BA604'])
      }
    } finally {
      await admin.close()
    }
  })

  it('under another prefix, beside the protocol endpoints', async () => {
    const server = makeServer()
    const account = await createdAccount(server)
    const admin = await standalone(server, () => 'ops', { prefix: '/ops/admin/' })
    try {
      expect((await admin.call('GET', `/ops/admin/identities/${account.identity}`)).status).toBe(
        200
      )
      expect((await admin.call('GET', `/admin/identities/${account.identity}`)).status).toBe(404)
      expect((await admin.call('POST', '/key/response')).status).toBe(200)
    } finally {
      await admin.close()
    }
  })
})

describe('bearerAuthorize (serve --admin-token)', () => {
  const token = 'an-admin-token-of-some-length'

  it('accepts the token (constant-time compare), refuses others, names the actor', async () => {
    const authorize = bearerAuthorize(token)
    const node = (headers: Record<string, string>) => ({ headers })
    const web = (headers: Record<string, string>) => new Request('http://x/', { headers })
    for (const make of [node, web]) {
      expect(authorize(make({ authorization: `Bearer ${token}` }))).toBe('admin-token')
      expect(authorize(make({ authorization: `bearer  ${token}` }))).toBe('admin-token')
      expect(
        authorize(make({ authorization: `Bearer ${token}`, 'x-better-auth-actor': 'alice' }))
      ).toBe('admin-token:alice')
      expect(authorize(make({ authorization: `Bearer ${token}x` }))).toBeUndefined()
      expect(authorize(make({ authorization: 'Bearer short' }))).toBeUndefined()
      for (const headers of [
        {} as Record<string, string>,
        { authorization: `Basic ${token}` },
        { authorization: 'Bearer' },
      ]) {
        expect(() => authorize(make(headers))).toThrow(
          expect.objectContaining({ code: 'BA404', status: 401 })
        )
      }
      expect(() =>
        authorize(
          make({ authorization: `Bearer ${token}`, 'x-better-auth-actor': 'x'.repeat(129) })
        )
      ).toThrow(expect.objectContaining({ code: 'BA101' }))
    }
    expect(
      bearerAuthorize(token, { actor: 'dashboard' })(node({ authorization: `Bearer ${token}` }))
    ).toBe('dashboard')
    for (const bad of ['', 'short', 'has a space in it somewhere']) {
      expect(() => bearerAuthorize(bad)).toThrow(TypeError)
    }
  })

  it('behind the standalone server: 401 without it, 403 with another, 200 with it', async () => {
    const server = makeServer()
    const account = await createdAccount(server)
    const admin = await standalone(server, bearerAuthorize(token))
    try {
      const path = `/admin/identities/${account.identity}`
      expect((await admin.call('GET', path)).status).toBe(401)
      expect(
        (await admin.call('GET', path, undefined, { authorization: 'Bearer nope' })).status
      ).toBe(403)
      const ok = await admin.call('GET', path, undefined, { authorization: `Bearer ${token}` })
      expect([ok.status, ok.json.identity]).toEqual([200, account.identity])
    } finally {
      await admin.close()
    }
  })
})

describe('Express: auth.adminRouter', () => {
  it('answers under the prefix with or without express.json() before it; other paths go on', async () => {
    const events: AuditEvent[] = []
    const server = makeServer({ onEvent: event => events.push(event) })
    const account = await createdAccount(server)
    const auth = expressAuth(server.auth)
    const authorize = (req: express.Request) =>
      req.get('x-operator') === 'alice' ? 'ops:alice' : undefined
    const raw = express()
    raw.use(auth.adminRouter({ authorize }))
    raw.get('/other', (_req, res) => void res.json({ other: true }))
    const parsed = express()
    parsed.use(express.json())
    parsed.use(auth.adminRouter({ authorize }))
    parsed.use(auth.errorHandler())
    const id = account.identity
    for (const app of [raw, parsed]) {
      const refused = await request(app).get(`/admin/identities/${id}`)
      expect([refused.status, refused.body.error.code]).toEqual([403, 'BA306'])
      const shown = await request(app).get(`/admin/identities/${id}`).set('x-operator', 'alice')
      expect([shown.status, shown.body.identity]).toEqual([200, id])
      const bad = await request(app)
        .post(`/admin/identities/${id}/suspend`)
        .set('x-operator', 'alice')
        .set('content-type', 'application/json')
        .send('{"reason":42}')
      expect([bad.status, bad.body.error.code]).toEqual([400, 'BA101'])
      const suspended = await request(app)
        .post(`/admin/identities/${id}/suspend`)
        .set('x-operator', 'alice')
        .send({ reason: 'abuse' })
      expect([suspended.status, suspended.body.changed]).toEqual([200, true])
      const reinstated = await request(app)
        .post(`/admin/identities/${id}/reinstate`)
        .set('x-operator', 'alice')
      expect([reinstated.status, reinstated.body.changed]).toEqual([200, true])
    }
    expect((await request(raw).get('/other')).body).toEqual({ other: true })
    expect(events.filter(e => e.type === 'admin.identity.suspended').map(e => e.actor)).toEqual([
      'ops:alice',
      'ops:alice',
    ])
  })
})

describe('fetch: auth.adminHandler', () => {
  it('answers Requests under the prefix and resolves undefined for others', async () => {
    const events: AuditEvent[] = []
    const server = makeServer({ onEvent: event => events.push(event) })
    const account = await createdAccount(server)
    const session = await openSession(server, account.first)
    const auth = fetchAuth(server.auth)
    const admin = auth.adminHandler({
      authorize: request =>
        request.headers.get('x-operator') === 'alice' ? 'ops:alice' : undefined,
    })
    const at = (path: string, init: RequestInit = {}) =>
      new Request(`http://auth.example${path}`, init)
    const id = account.identity
    expect(await admin(at('/key/response', { method: 'POST' }))).toBeUndefined()
    const refused = (await admin(at(`/admin/identities/${id}`))) as Response
    expect(refused.status).toBe(403)
    const ended = (await admin(
      at(`/admin/identities/${id}/sessions/end`, {
        method: 'POST',
        headers: { 'x-operator': 'alice' },
        body: JSON.stringify({ device: account.first.device }),
      }),
      { ip: '198.51.100.7' }
    )) as Response
    expect(ended.status).toBe(200)
    expect(await ended.json()).toMatchObject({ actor: 'ops:alice', device: account.first.device })
    expect(await refresh(server, session)).toEqual({ status: 401, code: 'BA401' })
    expect(events.filter(e => e.type.startsWith('admin.'))).toEqual([
      expect.objectContaining({ actor: 'ops:alice', ip: '198.51.100.7' }),
    ])
    const bad = (await admin(
      at(`/admin/identities/${id}/sessions/end`, {
        method: 'POST',
        headers: { 'x-operator': 'alice' },
        body: '{"device":',
      })
    )) as Response
    expect([bad.status, ((await bad.json()) as { error: { code: string } }).error.code]).toEqual([
      400,
      'BA101',
    ])
  })
})

describe('the framework-neutral handler', () => {
  it('takes a parsed body, and answers undefined outside its prefix', async () => {
    const server = makeServer()
    const account = await createdAccount(server)
    const admin = adminHttp<{ user: string }>(server.auth, { authorize: r => r.user })
    const answer = (body: unknown) =>
      admin.handle({
        method: 'POST',
        path: `/admin/identities/${account.identity}/suspend?x=1`,
        body,
        request: { user: 'ops:zoe' },
      })
    expect(await admin.handle({ method: 'GET', path: '/adminx', request: { user: 'x' } })).toBe(
      undefined
    )
    const bad = (await answer({ reason: 7 })) as HandlerResult
    expect([bad.status, JSON.parse(bad.body).error.code]).toEqual([400, 'BA101'])
    const ok = (await answer({ reason: 'spam' })) as HandlerResult
    expect(ok.status).toBe(200)
    expect(ok.headers['content-type']).toMatch(/^application\/json/)
    expect(JSON.parse(ok.body)).toMatchObject({ actor: 'ops:zoe', changed: true })
    const record = await server.auth.admin.getIdentity(account.identity)
    expect(record.suspendedReason).toBe('spam')
  })
})
