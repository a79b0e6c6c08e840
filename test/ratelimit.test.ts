/** Rate limiting: per IP and identity, backoff, per-route limits, memory and Redis backends. */
import Redis from 'ioredis'
import { NodeSigningKey, rateLimitFromEnv, type RateLimitOptions } from '../src'
import { clientIp } from '../adapters/shared/ip'
import {
  TestAccount,
  accessBody,
  challenge,
  createSessionBody,
  errorOf,
  hash,
  makeServer,
  openSession,
  payloadOf,
  sessionRequest,
} from './helpers'

let redis: Redis
beforeAll(async () => {
  redis = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true, maxRetriesPerRequest: 1 })
  await redis.connect()
})
afterAll(async () => {
  await redis.quit()
})

const backends: [string, () => Partial<RateLimitOptions>][] = [
  ['memory', () => ({})],
  ['redis', () => ({ redis, keyPrefix: `test-rl-${process.pid}-${Date.now()}-${Math.random()}` })],
]

describe.each(backends)('with the %s backend', (_name, backend) => {
  it('holds a per-IP limit under concurrent requests, with a correct Retry-After', async () => {
    const server = makeServer({
      rateLimit: { ...backend(), ip: { requestSession: { points: 5, duration: 60 } } },
    })
    const a = new TestAccount()
    expect((await server.call('createAccount', a.createAccountBody())).status).toBe(200)
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        server.auth.handle('requestSession', sessionRequest(a.identity), { ip: '203.0.113.7' })
      )
    )
    expect(results.filter(r => r.status === 200)).toHaveLength(5)
    const limited = results.filter(r => r.status === 429)
    expect(limited).toHaveLength(15)
    for (const r of limited) {
      expect(errorOf(r).code).toBe('BA601')
      const retry = Number(r.headers['retry-after'])
      expect(retry).toBeGreaterThanOrEqual(59)
      expect(retry).toBeLessThanOrEqual(60)
    }
    // Another client is unaffected.
    const other = await server.auth.handle('requestSession', sessionRequest(a.identity), {
      ip: '198.51.100.1',
    })
    expect(other.status).toBe(200)
  })

  it('holds a per-identity limit across IPs, once the identity has signed', async () => {
    const server = makeServer({
      rateLimit: { ...backend(), identity: { createSession: { points: 3, duration: 60 } } },
    })
    const a = new TestAccount()
    expect((await server.call('createAccount', a.createAccountBody())).status).toBe(200)
    const key = NodeSigningKey.generate()
    const results = await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        const ip = `10.0.0.${i}`
        const c = payloadOf<{ response: { authentication: { nonce: string } } }>(
          await server.auth.handle('requestSession', sessionRequest(a.identity), { ip })
        ).response.authentication.nonce
        const body = createSessionBody(a.first, c, key, key)
        return server.auth.handle('createSession', body, { ip })
      })
    )
    expect(results.filter(r => r.status === 200)).toHaveLength(3)
    expect(results.filter(r => r.status === 429)).toHaveLength(3)
  })

  it('counts an unsigned requestSession per identity and IP: others cannot use up its budget', async () => {
    const server = makeServer({
      rateLimit: { ...backend(), identity: { requestSession: { points: 3, duration: 60 } } },
    })
    const a = new TestAccount()
    expect((await server.call('createAccount', a.createAccountBody())).status).toBe(200)
    const attacker = await Promise.all(
      Array.from({ length: 6 }, () =>
        server.auth.handle('requestSession', sessionRequest(a.identity), { ip: '203.0.113.66' })
      )
    )
    expect(attacker.map(r => r.status).sort()).toEqual([200, 200, 200, 429, 429, 429])
    const owner = await server.auth.handle('requestSession', sessionRequest(a.identity), {
      ip: '198.51.100.20',
    })
    expect(owner.status).toBe(200)
  })

  it('backs off exponentially after failed session attempts for an identity', async () => {
    const server = makeServer({
      rateLimit: { ...backend(), backoff: { threshold: 2, baseSeconds: 1, maxSeconds: 60 } },
    })
    const a = new TestAccount()
    expect((await server.call('createAccount', a.createAccountBody())).status).toBe(200)
    const key = NodeSigningKey.generate()
    const answer = async (signer: NodeSigningKey) =>
      server.call(
        'createSession',
        createSessionBody(a.first, await challenge(server, a.identity), key, key, signer)
      )
    const impostor = NodeSigningKey.generate()
    expect(errorOf(await answer(impostor)).code).toBe('BA201')
    expect(errorOf(await answer(impostor)).code).toBe('BA201')
    expect(errorOf(await answer(impostor)).code).toBe('BA201') // third failure: blocked 1 s
    const blocked = await server.call('requestSession', sessionRequest(a.identity))
    expect([blocked.status, errorOf(blocked).code]).toEqual([429, 'BA601'])
    expect(Number(blocked.headers['retry-after'])).toBe(1)
    // The block is real time (rate-limiter-flexible's clock, Redis TTLs): let its second pass.
    await new Promise(resolve => setTimeout(resolve, 1100))
    expect((await answer(a.first.current)).status).toBe(200)
  })

  it("applies a protected route's own limits", async () => {
    const server = makeServer({ rateLimit: backend() })
    const a = new TestAccount()
    expect((await server.call('createAccount', a.createAccountBody())).status).toBe(200)
    const { token, key } = await openSession(server, a.first)
    const route = {
      rateLimit: { identity: { points: 2, duration: 60 }, name: `r${Math.random()}` },
    }
    const outcomes: string[] = []
    for (let i = 0; i < 4; i++) {
      try {
        await server.auth.verifyAccess(accessBody(token, key, { at: server.clock.ms }), {}, route)
        outcomes.push('ok')
      } catch (error) {
        outcomes.push((error as { code: string }).code)
      }
    }
    expect(outcomes).toEqual(['ok', 'ok', 'BA601', 'BA601'])
  })
})

describe('rate limiting off', () => {
  it('rateLimit: false lets everything through', async () => {
    const server = makeServer({ rateLimit: false })
    const a = new TestAccount()
    expect((await server.call('createAccount', a.createAccountBody())).status).toBe(200)
    const results = await Promise.all(
      Array.from({ length: 100 }, () =>
        server.auth.handle('requestSession', sessionRequest(a.identity), { ip: '203.0.113.9' })
      )
    )
    expect(results.every(r => r.status === 200)).toBe(true)
  })
})

describe('a Redis backend that is down', () => {
  it('fails closed with 503', async () => {
    const dead = new Redis({
      host: '127.0.0.1',
      port: 1,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
    })
    dead.on('error', () => undefined)
    const server = makeServer({ rateLimit: { redis: dead } })
    const result = await server.auth.handle('requestSession', sessionRequest(hash('x')), {
      ip: '1.1.1.1',
    })
    expect([result.status, errorOf(result).code]).toEqual([503, 'BA602'])
    dead.disconnect()
  })
})

describe('clientIp', () => {
  it('ignores X-Forwarded-For unless proxies are trusted', () => {
    expect(clientIp('10.0.0.1', '203.0.113.5')).toBe('10.0.0.1')
    expect(clientIp('10.0.0.1', '203.0.113.5', false)).toBe('10.0.0.1')
  })

  it('walks back one hop per trusted proxy', () => {
    expect(clientIp('10.0.0.1', '203.0.113.5, 10.0.0.2', 1)).toBe('10.0.0.2')
    expect(clientIp('10.0.0.1', '203.0.113.5, 10.0.0.2', 2)).toBe('203.0.113.5')
    expect(clientIp('10.0.0.1', '203.0.113.5, 10.0.0.2', 5)).toBe('203.0.113.5')
    expect(clientIp('10.0.0.1', ['198.51.100.1', '203.0.113.5'], true)).toBe('198.51.100.1')
  })

  it('spoofed entries beyond the trusted hops are not believed', () => {
    // The client forged "1.2.3.4"; one trusted proxy appended the real client address.
    expect(clientIp('10.0.0.1', '1.2.3.4, 203.0.113.5', 1)).toBe('203.0.113.5')
    expect(clientIp('::ffff:10.0.0.1', undefined, 1)).toBe('10.0.0.1')
  })
})

describe('rateLimitFromEnv', () => {
  it('is on unless BETTER_AUTH_RATE_LIMIT says off, and refuses other words', () => {
    expect(rateLimitFromEnv({})).toEqual({})
    expect(rateLimitFromEnv({ BETTER_AUTH_RATE_LIMIT: 'on' })).toEqual({})
    for (const off of ['off', 'OFF', 'false', '0']) {
      expect(rateLimitFromEnv({ BETTER_AUTH_RATE_LIMIT: off })).toBe(false)
    }
    const client = {}
    expect(rateLimitFromEnv({}, client)).toEqual({ redis: client })
    expect(() => rateLimitFromEnv({ BETTER_AUTH_RATE_LIMIT: 'maybe' })).toThrow(
      'BETTER_AUTH_RATE_LIMIT'
    )
  })
})
