/**
 * Regression tests of the security review's findings that live in the core (each failed on the
 * code before its fix): a forged access-key list, per-identity limits spent by strangers, inline
 * route limits, a replayable recovery, unknown client IPs, a refresh lock one identity could fill,
 * malleable token text, and one log line per failure during an outage.
 */
import { gunzipSync, gzipSync } from 'node:zlib'
import {
  MemoryStore,
  NodeP256Verifier,
  NodeSigningKey,
  RemoteAccessKeys,
  decodeBase64Url,
  encodeBase64Url,
  type Logger,
} from '../src'
import {
  Clock,
  TestDevice,
  accessBody,
  errorOf,
  hash,
  makeServer,
  nonce,
  payloadOf,
  sessionRequest,
  signed,
  type TestServer,
} from './helpers'
import {
  created,
  createSessionBody,
  expectOk,
  expectRejected,
  openSession,
  recoverPayload,
  twin,
  type Session,
} from './scenario'

const silent: Logger = {
  error: () => undefined,
  warn: () => undefined,
  info: () => undefined,
  debug: () => undefined,
}

describe('finding 1: a forged access-key list', () => {
  it('an application reply that echoes caller data as {"accessKeys":[…]} is not a key list', async () => {
    const auth = makeServer()
    const attacker = NodeSigningKey.generate()
    // A man in the middle of the key fetch answers with an application reply of the real auth
    // server (signed by its response key, echoing the fetch's nonce) whose data the caller chose.
    const mitm = (async (_url: string, init?: { body?: string }) => {
      const sent = JSON.parse(String(init?.body)) as { payload: { access: { nonce: string } } }
      const reply = await auth.auth.respond(sent.payload.access.nonce, {
        accessKeys: [{ publicKey: attacker.publicKeyText }],
      })
      return new Response(reply, { status: 200 })
    }) as unknown as typeof fetch
    const source = new RemoteAccessKeys({
      url: 'http://auth.test/key/access',
      responseKey: await auth.auth.responsePublicKey(),
      fetch: mitm,
    })
    await expect(source.ready()).rejects.toMatchObject({ code: 'BA201' })
    expect(source.isTrusted(attacker.publicKeyText)).toBe(false)
    expect(source.known().size).toBe(0)
  })

  it('the genuine key list still verifies, and is not a valid application reply', async () => {
    const auth = makeServer()
    const fetcher = (async (_url: string, init?: { body?: string }) => {
      const result = await auth.auth.handle('accessKeys', String(init?.body ?? ''))
      return new Response(result.body, { status: result.status })
    }) as unknown as typeof fetch
    const source = new RemoteAccessKeys({
      url: 'http://auth.test/key/access',
      responseKey: await auth.auth.responsePublicKey(),
      fetch: fetcher,
    })
    await source.ready()
    const keys = await auth.auth.keys()
    expect(source.isTrusted(keys.accessIdentity)).toBe(true)
    // A client checking the key list as an ordinary signed reply refuses it.
    const list = JSON.parse((await auth.auth.handle('accessKeys', '')).body) as {
      payload: unknown
      signature: string
    }
    const verifier = new NodeP256Verifier()
    const plain = Buffer.from(JSON.stringify(list.payload))
    expect(await verifier.verify(plain, list.signature, keys.responseIdentity)).toBe(false)
  })
})

describe("finding 3: strangers cannot block an identity's recovery or login", () => {
  const attackerIp = '203.0.113.66'
  const ownerIp = '198.51.100.7'

  it('recoveries signed by random keys from another IP leave the genuine recovery working', async () => {
    const server = makeServer({ rateLimit: {} })
    const a = await created(server)
    for (let i = 0; i < 12; i++) {
      const forged = recoverPayload(a, new TestDevice())
      const result = await server.auth.handle(
        'recoverAccount',
        signed(forged, NodeSigningKey.generate()),
        { ip: attackerIp }
      )
      // Refused for the bad signature, then for the attacker's own per-IP budget.
      expect(['BA201', 'BA601']).toContain(errorOf(result).code)
    }
    const genuine = signed(recoverPayload(a, new TestDevice()), a.recovery)
    const result = await server.auth.handle('recoverAccount', genuine, { ip: ownerIp })
    expect(result.status).toBe(200)
  })

  it('failed session attempts and challenge floods from another IP leave the login working', async () => {
    const server = makeServer({ rateLimit: {} })
    const a = await created(server)
    const key = NodeSigningKey.generate()
    const failures: string[] = []
    for (let i = 0; i < 8; i++) {
      const asked = await server.auth.handle('requestSession', sessionRequest(a.identity), {
        ip: attackerIp,
      })
      if (asked.status !== 200) {
        failures.push(errorOf(asked).code)
        continue
      }
      const c = payloadOf<{ response: { authentication: { nonce: string } } }>(asked).response
        .authentication.nonce
      const forged = createSessionBody(a.first, c, key, key, NodeSigningKey.generate())
      failures.push(
        errorOf(await server.auth.handle('createSession', forged, { ip: attackerIp })).code
      )
    }
    // Five bad signatures, then the attacker's own backoff.
    expect(failures).toEqual([
      'BA201',
      'BA201',
      'BA201',
      'BA201',
      'BA201',
      'BA201',
      'BA601',
      'BA601',
    ])
    // The attacker is now backing off and out of its challenge budget …
    const more = await Promise.all(
      Array.from({ length: 40 }, () =>
        server.auth.handle('requestSession', sessionRequest(a.identity), { ip: attackerIp })
      )
    )
    expect(more.every(r => r.status === 429)).toBe(true)
    // … while the owner logs in from elsewhere.
    const c = payloadOf<{ response: { authentication: { nonce: string } } }>(
      await server.auth.handle('requestSession', sessionRequest(a.identity), { ip: ownerIp })
    ).response.authentication.nonce
    const login = await server.auth.handle(
      'createSession',
      createSessionBody(a.first, c, key, key),
      { ip: ownerIp }
    )
    expect(login.status).toBe(200)
  })
})

describe('finding 6: per-route limits written inline', () => {
  it('the same rule gives the same counters however the options object is built', async () => {
    const server = makeServer({ rateLimit: {} })
    const a = await created(server)
    const { token, key } = await openSession(server, a.first)
    const outcomes: string[] = []
    for (let i = 0; i < 4; i++) {
      try {
        // A new options object on every call, as a handler written inline builds it.
        await server.auth.verifyAccess(
          accessBody(token, key, { at: server.clock.ms }),
          { ip: '192.0.2.1' },
          { rateLimit: { identity: { points: 2, duration: 60 } } }
        )
        outcomes.push('ok')
      } catch (error) {
        outcomes.push((error as { code: string }).code)
      }
    }
    expect(outcomes).toEqual(['ok', 'ok', 'BA601', 'BA601'])
  })

  it('different rules, or the same limits under different names, keep their own counters', async () => {
    const server = makeServer({ rateLimit: {} })
    const a = await created(server)
    const { token, key } = await openSession(server, a.first)
    const check = (rateLimit: object) =>
      server.auth
        .verifyAccess(accessBody(token, key, { at: server.clock.ms }), {}, { rateLimit })
        .then(
          () => 'ok',
          (error: { code: string }) => error.code
        )
    expect(await check({ identity: { points: 1, duration: 60 }, name: 'one' })).toBe('ok')
    expect(await check({ identity: { points: 1, duration: 60 }, name: 'one' })).toBe('BA601')
    expect(await check({ identity: { points: 1, duration: 60 }, name: 'two' })).toBe('ok')
    expect(await check({ identity: { points: 2, duration: 60 } })).toBe('ok')
  })
})

describe('finding 7b: a recovery that keeps its recovery hash', () => {
  it('is refused with 400 BA101 and changes nothing, so it cannot be replayed', async () => {
    const server = makeServer()
    const a = await created(server)
    const same = recoverPayload(a, new TestDevice(), a.recoveryHash)
    const error = await expectRejected(
      server,
      'recoverAccount',
      signed(same, a.recovery),
      'BA101',
      400
    )
    expect(error.message).toContain('recoveryHash')
  })

  it('a genuine recovery cannot be replayed: the stored hash has moved on', async () => {
    const server = makeServer()
    const a = await created(server)
    const body = signed(recoverPayload(a, new TestDevice()), a.recovery)
    await expectOk(server, 'recoverAccount', body)
    await expectRejected(server, 'recoverAccount', body, 'BA104', 401)
  })
})

describe('finding 9: an unknown client IP is not a free pass', () => {
  it('requests without an IP share one bucket', async () => {
    const server = makeServer({
      rateLimit: { ip: { requestSession: { points: 10, duration: 60 } } },
    })
    const a = await created(server)
    const results = await Promise.all(
      Array.from({ length: 30 }, () =>
        server.auth.handle('requestSession', sessionRequest(a.identity))
      )
    )
    expect(results.filter(r => r.status === 200)).toHaveLength(10)
    expect(results.filter(r => r.status === 429)).toHaveLength(20)
    // A client whose IP is known has its own bucket.
    const known = await server.auth.handle('requestSession', sessionRequest(a.identity), {
      ip: '192.0.2.44',
    })
    expect(known.status).toBe(200)
  })

  it('a route limit per IP holds for requests without an IP', async () => {
    const server = makeServer({ rateLimit: {} })
    const a = await created(server)
    const { token, key } = await openSession(server, a.first)
    const route = { rateLimit: { ip: { points: 1, duration: 60 }, name: 'ip-route' } }
    await server.auth.verifyAccess(accessBody(token, key, { at: server.clock.ms }), {}, route)
    await expect(
      server.auth.verifyAccess(accessBody(token, key, { at: server.clock.ms }), {}, route)
    ).rejects.toMatchObject({ code: 'BA601' })
  })
})

describe('finding 11: one identity cannot fill the refresh lock for everyone', () => {
  /** A session whose chain of next keys the test holds, to refresh again and again. */
  async function chain(server: TestServer, device: TestDevice) {
    let current: Session = await openSession(server, device)
    return async (): Promise<number> => {
      const after = NodeSigningKey.generate()
      const body = signed(
        {
          access: { nonce: nonce() },
          request: {
            access: {
              publicKey: current.next.publicKeyText,
              rotationHash: hash(after.publicKeyText),
              token: current.token,
            },
          },
        },
        current.next
      )
      const result = await server.call('refreshSession', body)
      if (result.status === 200) {
        const token = payloadOf<{ response: { access: { token: string } } }>(result).response.access
          .token
        current = { token, key: current.next, next: after }
      }
      return result.status
    }
  }

  it("what fills first is the attacker's own budget (429), not the store (503 for all)", async () => {
    // A small memory store: 30 live entries per map.
    const clock = new Clock()
    const store = new MemoryStore({ now: clock.now, sweepIntervalMs: 0, maxEphemeralEntries: 30 })
    const small = makeServer({ store, rateLimit: {}, now: clock.now })
    const attacker = await created(small)
    const victim = await created(small)
    const victimRefresh = await chain(small, victim.first)
    const attackerRefresh = await chain(small, attacker.first)
    const statuses: number[] = []
    for (let i = 0; i < 40; i++) statuses.push(await attackerRefresh())
    expect(statuses.filter(s => s === 200)).toHaveLength(20)
    expect(statuses.filter(s => s === 429)).toHaveLength(20)
    expect(statuses).not.toContain(503)
    expect(await victimRefresh()).toBe(200)
  })
})

describe('finding 12: token text is malleable', () => {
  /** Another encoding of the same signed token: another gzip level and header mtime. */
  function variant(token: string, mtime: number, level = 9): string {
    const gz = decodeBase64Url(token.slice(88)) as Uint8Array
    const json = gunzipSync(gz)
    const again = gzipSync(json, { level })
    again.writeUInt32LE(mtime, 4)
    return token.slice(0, 88) + encodeBase64Url(again)
  }

  it('variants of a verified token cost no further signature check, and do not flush the cache', async () => {
    const verifier = new NodeP256Verifier()
    const server = makeServer({ tokenCacheSize: 2, crypto: { verifier }, logger: silent })
    const a = await created(server)
    const s = await openSession(server, a.first)
    const verify = jest.spyOn(verifier, 'verify')
    const tokenChecks = (): number =>
      verify.mock.calls.filter(([, , publicKey]) => publicKey !== s.key.publicKeyText).length
    expect((await server.access(accessBody(s.token, s.key, { at: server.clock.ms }))).status).toBe(
      200
    )
    expect(tokenChecks()).toBe(1)
    const twinToken = twin(s.token.slice(0, 88)) + s.token.slice(88)
    const variants = [
      ...Array.from({ length: 20 }, (_, i) => variant(s.token, i + 1, 1 + (i % 9))),
      twinToken,
    ]
    for (const v of variants) {
      expect(v).not.toBe(s.token)
      const result = await server.access(accessBody(v, s.key, { at: server.clock.ms }))
      expect(result.status).toBe(200)
    }
    expect(tokenChecks()).toBe(1)
    // The original is still cached.
    await server.access(accessBody(s.token, s.key, { at: server.clock.ms }))
    expect(tokenChecks()).toBe(1)
    // Every variant has the token's canonical id.
    const id = server.auth.tokenId(s.token)
    expect(variants.map(v => server.auth.tokenId(v))).toEqual(variants.map(() => id))
  })
})

describe('outage logs', () => {
  it('one line per failure with its code and cause; the full error only the first time', async () => {
    const lines: { object: Record<string, unknown>; message?: string }[] = []
    const logger: Logger = {
      ...silent,
      error: (object, message) =>
        lines.push({ object: object as Record<string, unknown>, message }),
    }
    const server = makeServer({ logger })
    const a = await created(server)
    server.store.accounts.hasIdentity = () => Promise.reject(new Error('connect ECONNREFUSED'))
    // requestSession reads the identity's state (existence and suspension) in one call.
    server.store.accounts.getSessionState = () => Promise.reject(new Error('connect ECONNREFUSED'))
    for (let i = 0; i < 5; i++) {
      const result = await server.call('requestSession', sessionRequest(a.identity))
      expect([result.status, errorOf(result).code]).toEqual([503, 'BA602'])
      expect(result.body).not.toContain('ECONNREFUSED')
    }
    expect(lines).toHaveLength(5)
    for (const line of lines) {
      expect(line.object).toMatchObject({ code: 'BA602', status: 503 })
      expect(String(line.object.cause)).toContain('ECONNREFUSED')
    }
    expect(lines.filter(l => l.object.err !== undefined)).toHaveLength(1)
    expect(lines[0]?.object.err).toBeInstanceOf(Error)
  })
})
