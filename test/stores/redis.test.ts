import { Redis } from 'ioredis'
import { combineStores } from '../../src/stores/combine'
import { PostgresStore } from '../../src/stores/postgres'
import { RedisEphemeralStore, SHARDS } from '../../src/stores/redis'
import { SqliteStore } from '../../src/stores/sqlite'
import { Clock } from '../helpers'
import {
  describeStoreConformance,
  randomHash,
  randomNonce,
  REAL_TTL_MS,
  redisHarness,
  sleep,
  type StoreHarness,
} from './conformance'
import { POSTGRES_URL, REDIS_URL, dropSchema, uniqueName } from './services'

// Redis TTLs run on the server: expiry tests really wait, with short lifetimes.
const TTL = REAL_TTL_MS

type Harness = StoreHarness & { cleanup(): Promise<void> }

describeStoreConformance(
  'redis',
  async (): Promise<Harness> => {
    return redisHarness(
      new RedisEphemeralStore({ url: REDIS_URL, prefix: `${uniqueName('redis')}:` })
    )
  },
  h => (h as Harness).cleanup(),
  { parts: ['ephemeral'] }
)

describeStoreConformance(
  'postgres + redis',
  async (): Promise<Harness> => {
    const clock = new Clock()
    const schema = uniqueName('pgredis')
    const durable = new PostgresStore({
      connectionString: POSTGRES_URL,
      schema,
      now: clock.now,
      sweepIntervalMs: 0,
    })
    const ephemeral = new RedisEphemeralStore({
      url: REDIS_URL,
      prefix: `${uniqueName('pgredis')}:`,
    })
    const store = combineStores(durable, ephemeral)
    return {
      ...store,
      keys: store.keys,
      ttlMs: TTL,
      now: clock.now,
      // Both clocks move: the store's (PostgreSQL rows) and real time (Redis TTLs).
      advance: async ms => {
        clock.advance(ms / 1000)
        await sleep(ms)
      },
      cleanup: async () => {
        await ephemeral.clear()
        await store.close?.()
        await dropSchema(schema)
      },
    }
  },
  h => (h as Harness).cleanup(),
  { parts: ['accounts', 'admin', 'ephemeral', 'keys'] }
)

describeStoreConformance(
  'sqlite + redis',
  async (): Promise<Harness> => {
    const clock = new Clock()
    const durable = new SqliteStore({ path: ':memory:', now: clock.now, sweepIntervalMs: 0 })
    const ephemeral = new RedisEphemeralStore({
      url: REDIS_URL,
      prefix: `${uniqueName('sqlredis')}:`,
    })
    const store = combineStores(durable, ephemeral)
    return {
      ...store,
      keys: store.keys,
      ttlMs: TTL,
      now: clock.now,
      // Both clocks move: the store's (SQLite rows) and real time (Redis TTLs).
      advance: async ms => {
        clock.advance(ms / 1000)
        await sleep(ms)
      },
      cleanup: async () => {
        await ephemeral.clear()
        await store.close?.()
      },
    }
  },
  h => (h as Harness).cleanup(),
  { parts: ['accounts', 'admin', 'ephemeral', 'keys'] }
)

describe('RedisEphemeralStore', () => {
  const prefix = `${uniqueName('redisx')}:`
  let client: Redis
  beforeAll(() => {
    client = new Redis(REDIS_URL)
  })
  afterAll(async () => {
    const store = new RedisEphemeralStore({ client, prefix })
    await store.clear()
    await client.quit()
  })

  it('keeps every key under its prefix and a shard tag, with a lifetime', async () => {
    const store = new RedisEphemeralStore({ client, prefix })
    const value = randomHash()
    await store.challenges.create('0Achallenge', value, 60_000)
    await store.refreshKeys.reserve(value, 60_000)
    await store.accessNonces.reserve('0Anonce', 60_000)
    const tag = (v: string) => `{s${RedisEphemeralStore.shardOf(v)}}`
    const locks = [
      `${prefix}${tag('0Achallenge')}:challenge:0Achallenge`,
      `${prefix}${tag('0Anonce')}:nonce:0Anonce`,
      `${prefix}${tag(value)}:refresh:${value}`,
    ]
    const keys = await client.keys(`${prefix}*`)
    expect(keys.filter(key => !key.endsWith(':epoch')).sort()).toEqual(locks.sort())
    for (const key of locks) {
      const pttl = await client.pttl(key)
      expect(pttl).toBeGreaterThan(59_000)
      expect(pttl).toBeLessThanOrEqual(60_000)
    }
    // The epoch markers: one per shard, without lifetime.
    const markers = keys.filter(key => key.endsWith(':epoch')).sort()
    expect(markers).toEqual(
      Array.from({ length: SHARDS }, (_, s) => `${prefix}{s${s}}:epoch`).sort()
    )
    for (const key of markers) expect(await client.pttl(key)).toBe(-1)
  })

  it('spreads values over every shard, by more than their first characters', () => {
    const seen = new Set<number>()
    for (let i = 0; i < 400; i++) seen.add(RedisEphemeralStore.shardOf(randomNonce()))
    expect(seen.size).toBe(SHARDS)
    for (const value of ['0A', randomHash(), randomNonce()]) {
      const shard = RedisEphemeralStore.shardOf(value)
      expect(Number.isInteger(shard) && shard >= 0 && shard < SHARDS).toBe(true)
    }
  })

  it('refuses a prefix with an empty hash tag, which would split a shard across slots', () => {
    expect(() => new RedisEphemeralStore({ client, prefix: 'app{}:' })).toThrow(TypeError)
    expect(new RedisEphemeralStore({ client, prefix: '{app}:' }).prefix).toBe('{app}:')
  })

  it('uses a shared client without closing it', async () => {
    const store = new RedisEphemeralStore({ client, prefix })
    await store.close()
    expect(await client.ping()).toBe('PONG')
  })

  it('two stores with different prefixes do not see each other', async () => {
    const other = `${uniqueName('redisy')}:`
    const a = new RedisEphemeralStore({ client, prefix })
    const b = new RedisEphemeralStore({ client, prefix: other })
    const value = randomHash()
    expect(await a.accessNonces.reserve(value, 60_000)).toBe(true)
    expect(await b.accessNonces.reserve(value, 60_000)).toBe(true)
    expect(await b.clear()).toBe(1)
    expect(await a.accessNonces.reserve(value, 60_000)).toBe(false)
  })

  it('rejects quickly when Redis cannot be reached', async () => {
    const store = new RedisEphemeralStore({ url: 'redis://127.0.0.1:18298' })
    const started = Date.now()
    await expect(store.accessNonces.reserve(randomHash(), 1000)).rejects.toThrow()
    expect(Date.now() - started).toBeLessThan(5000)
    await store.close()
  })
})
