/**
 * Replay safety across a Redis wipe: the epoch markers of RedisEphemeralStore, against Redis
 * servers of this test's own (restarted empty, flushed), and through the server core.
 */
import { Redis } from 'ioredis'
import { MemoryStore } from '../../src'
import { ReplayStateResetError } from '../../src/errors'
import { combineStores } from '../../src/stores/combine'
import { RedisEphemeralStore, SHARDS } from '../../src/stores/redis'
import {
  Clock,
  accessBody,
  createdAccount,
  errorOf,
  makeServer,
  openSession,
  until,
  type TestServer,
} from '../helpers'
import { refreshBody } from '../scenario'
import { randomHash, randomNonce } from './conformance'
import { freePort, startRedis, type RedisProcess } from './redis-processes'
import { uniqueName } from './services'

const MINUTE = 60_000

let redis: RedisProcess
let admin: Redis

beforeAll(async () => {
  redis = await startRedis(await freePort())
  admin = new Redis(redis.url, { maxRetriesPerRequest: 1, retryStrategy: () => 50 })
  admin.on('error', () => undefined)
})

afterAll(async () => {
  admin.disconnect()
  await redis.stop()
})

/** Waits until a store's client answers again (after a restart of its Redis). */
async function reachable(store: RedisEphemeralStore): Promise<void> {
  const answers = async (): Promise<boolean> => {
    await store.ping() // throws while it cannot reach Redis
    return true
  }
  await until(answers, {
    timeoutMs: 10_000,
    intervalMs: 50,
    what: 'the store answers again after its Redis restarted',
  })
}

/** A value of the given shard different from `other`'s. */
function valueInOtherShard(other: string): string {
  for (;;) {
    const value = randomNonce()
    if (RedisEphemeralStore.shardOf(value) !== RedisEphemeralStore.shardOf(other)) return value
  }
}

describe('RedisEphemeralStore epoch markers', () => {
  let clock: Clock
  let store: RedisEphemeralStore

  beforeEach(() => {
    clock = new Clock()
    store = new RedisEphemeralStore({
      url: redis.url,
      prefix: `${uniqueName('wipe')}:`,
      now: clock.now,
    })
  })

  afterEach(async () => {
    await store.close()
  })

  it('refuses a value from before a restart that came back empty, and reserves later ones', async () => {
    const t0 = clock.ms
    const value = randomNonce()
    expect(await store.accessNonces.reserve(value, 10 * MINUTE, t0)).toBe(true)
    expect(await store.accessNonces.reserve(value, 10 * MINUTE, t0)).toBe(false)

    // Redis without persistence restarts empty on the same port.
    clock.advance(1)
    const epoch = clock.ms
    await redis.stop()
    redis = await startRedis(redis.port)
    await reachable(store)

    const replay = store.accessNonces.reserve(value, 10 * MINUTE, t0)
    await expect(replay).rejects.toBeInstanceOf(ReplayStateResetError)
    await expect(store.accessNonces.reserve(value, 10 * MINUTE, t0)).rejects.toMatchObject({
      code: 'BA607',
      status: 401,
    })
    // Refused without reserving anything; the marker holds the epoch.
    expect(await store.client.exists(store.keyOf('nonce', value))).toBe(0)
    const shard = RedisEphemeralStore.shardOf(value)
    expect(await store.client.get(store.epochKey(shard))).toBe(String(epoch))
    expect(await store.client.pttl(store.epochKey(shard))).toBe(-1)
    // Every shard is marked (at reconnection, or on finding one marker gone).
    for (let s = 0; s < SHARDS; s++) {
      expect(await store.client.get(store.epochKey(s))).toBe(String(epoch))
    }

    // Every shard was wiped: a value of another shard from before is refused too.
    const other = valueInOtherShard(value)
    await expect(store.refreshKeys.reserve(other, 10 * MINUTE, t0)).rejects.toMatchObject({
      code: 'BA607',
    })

    // A message that could only have been accepted after the epoch is reserved, once.
    const fresh = randomNonce()
    expect(await store.accessNonces.reserve(fresh, 10 * MINUTE, epoch)).toBe(true)
    expect(await store.accessNonces.reserve(fresh, 10 * MINUTE, epoch)).toBe(false)
    expect(await store.accessNonces.reserve(value, 10 * MINUTE, epoch + 1)).toBe(true)
    expect(await store.accessNonces.reserve(value, 10 * MINUTE, epoch + 1)).toBe(false)
  })

  it('refuses values from before a FLUSHALL, for the refresh keys too', async () => {
    const t0 = clock.ms
    const keyHash = randomHash()
    expect(await store.refreshKeys.reserve(keyHash, 10 * MINUTE, t0)).toBe(true)
    await admin.flushall()
    clock.advance(1)
    await expect(store.refreshKeys.reserve(keyHash, 10 * MINUTE, t0)).rejects.toMatchObject({
      code: 'BA607',
    })
    // No reconnection here: finding one marker gone marked every shard.
    for (let s = 0; s < SHARDS; s++) {
      expect(await store.client.get(store.epochKey(s))).toBe(String(clock.ms))
    }
    expect(await store.refreshKeys.reserve(keyHash, 10 * MINUTE, clock.ms)).toBe(true)
    expect(await store.refreshKeys.reserve(keyHash, 10 * MINUTE, clock.ms)).toBe(false)
  })

  it('cannot tell a new Redis from a wiped one: values from before the first use are refused', async () => {
    // No marker under this prefix yet: connecting (or else the first reservation) sets the epoch
    // to now.
    const value = randomNonce()
    await expect(
      store.accessNonces.reserve(value, 10 * MINUTE, clock.ms - 1)
    ).rejects.toMatchObject({ code: 'BA607' })
    expect(await store.accessNonces.reserve(value, 10 * MINUTE, clock.ms)).toBe(true)
  })

  it('after clear() nothing is refused (every marker is 0)', async () => {
    expect(await store.accessNonces.reserve(randomNonce(), 10 * MINUTE, clock.ms)).toBe(true)
    await store.challenges.create(randomNonce(), randomHash(), 10 * MINUTE)
    // The challenge and the nonce; the markers do not count.
    expect(await store.clear()).toBe(2)
    for (let shard = 0; shard < SHARDS; shard++) {
      expect(await store.client.get(store.epochKey(shard))).toBe('0')
    }
    const value = randomNonce()
    expect(await store.accessNonces.reserve(value, 10 * MINUTE, 1)).toBe(true)
    expect(await store.accessNonces.reserve(value, 10 * MINUTE, 1)).toBe(false)
    expect(await store.refreshKeys.reserve(randomHash(), 10 * MINUTE, 0)).toBe(true)
    expect(await store.clear()).toBe(2)
  })

  it('without acceptableFrom reserves as before, even after a wipe', async () => {
    const value = randomNonce()
    expect(await store.accessNonces.reserve(value, 10 * MINUTE)).toBe(true)
    expect(await store.accessNonces.reserve(value, 10 * MINUTE)).toBe(false)
    await admin.flushall()
    expect(await store.accessNonces.reserve(value, 10 * MINUTE)).toBe(true)
    expect(await store.accessNonces.reserve(value, 10 * MINUTE)).toBe(false)
    await expect(store.accessNonces.reserve(value, 10 * MINUTE, Number.NaN)).rejects.toThrow(
      TypeError
    )
  })

  it('challenges from before a wipe are simply gone', async () => {
    const nonce = randomNonce()
    const identity = randomHash()
    await store.challenges.create(nonce, identity, 10 * MINUTE)
    expect(await store.challenges.peek(nonce)).toBe(identity)
    await admin.flushall()
    expect(await store.challenges.peek(nonce)).toBeUndefined()
    expect(await store.challenges.consume(nonce)).toBeUndefined()
  })
})

describe('maxmemory-policy check at connect', () => {
  const warned = (store: (logger: { warn(o: object, m?: string): void }) => RedisEphemeralStore) =>
    new Promise<{ object: object; message?: string; store: RedisEphemeralStore }>(resolve => {
      const created: RedisEphemeralStore = store({
        warn: (object, message) => resolve({ object, message, store: created }),
      })
    })

  it('warns through the logger when Redis may evict keys', async () => {
    const evicting = await startRedis(await freePort(), ['--maxmemory-policy', 'allkeys-lru'])
    try {
      const { object, message, store } = await warned(
        logger => new RedisEphemeralStore({ url: evicting.url, logger })
      )
      expect(object).toEqual({ maxmemoryPolicy: 'allkeys-lru' })
      expect(message).toMatch(/noeviction/)
      await store.close()
    } finally {
      await evicting.stop()
    }
  })

  it('reads noeviction, and nothing when CONFIG is disabled', async () => {
    const store = new RedisEphemeralStore({ url: redis.url })
    expect(await store.maxmemoryPolicy()).toBe('noeviction')
    await store.close()
    const locked = await startRedis(await freePort(), ['--rename-command', 'CONFIG', '""'])
    try {
      const quiet = new RedisEphemeralStore({ url: locked.url })
      expect(await quiet.maxmemoryPolicy()).toBeUndefined()
      await quiet.close()
    } finally {
      await locked.stop()
    }
  })
})

describe('through the server: a replay after a Redis wipe', () => {
  // One clock for the server and the store's epoch markers.
  const clock = new Clock()
  let ephemeral: RedisEphemeralStore
  let server: TestServer

  beforeAll(() => {
    ephemeral = new RedisEphemeralStore({
      url: redis.url,
      prefix: `${uniqueName('wipecore')}:`,
      now: clock.now,
    })
    server = makeServer({ store: combineStores(new MemoryStore(), ephemeral), now: clock.now })
  })

  afterAll(async () => {
    await ephemeral.close()
  })

  it('refuses the identical access request 401 BA607, then accepts new ones after the skew', async () => {
    await ephemeral.clear()
    const account = await createdAccount(server)
    const session = await openSession(server, account.first)
    const body = accessBody(session.token, session.key, { at: clock.ms })
    expect((await server.access(body)).status).toBe(200)
    const again = await server.access(body)
    expect({ status: again.status, code: errorOf(again).code }).toEqual({
      status: 401,
      code: 'BA304',
    })

    await admin.flushall()
    const replay = await server.access(body)
    expect({ status: replay.status, code: errorOf(replay).code }).toEqual({
      status: 401,
      code: 'BA607',
    })
    expect(replay.headers['www-authenticate']).toContain('BA607')

    // Signed after the epoch plus the clock skew (5 s): accepted, once.
    clock.advance(6)
    const later = accessBody(session.token, session.key, { at: clock.ms })
    expect((await server.access(later)).status).toBe(200)
    expect(errorOf(await server.access(later)).code).toBe('BA304')
  })

  it('refuses to refresh a token issued before the wipe (BA607)', async () => {
    await ephemeral.clear()
    const account = await createdAccount(server)
    const session = await openSession(server, account.first)
    await admin.flushall()
    const refreshed = await server.call('refreshSession', refreshBody(session))
    expect({ status: refreshed.status, code: errorOf(refreshed).code }).toEqual({
      status: 401,
      code: 'BA607',
    })
  })
})
