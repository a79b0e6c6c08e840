/**
 * RedisEphemeralStore on a real Redis Cluster of three masters started by this test: the
 * conformance suite, clear() on every master, a wipe of one master, and the redis+cluster:// URL.
 */
import { Redis } from 'ioredis'
import { createStore } from '../../src'
import { RedisEphemeralStore, SHARDS, parseClusterUrl } from '../../src/stores/redis'
import { Clock } from '../helpers'
import {
  describeStoreConformance,
  randomNonce,
  redisHarness,
  type StoreHarness,
} from './conformance'
import { startRedisCluster, type RedisClusterProcesses } from './redis-processes'
import { uniqueName } from './services'

const MINUTE = 60_000

let cluster: RedisClusterProcesses | undefined
const started = (async () => {
  cluster = await startRedisCluster(3)
  return cluster
})()

beforeAll(async () => {
  await started
}, 30_000)

afterAll(async () => {
  await started.catch(() => undefined)
  await cluster?.stop()
})

const url = async (query = ''): Promise<string> =>
  `redis+cluster://${(await started).seeds}${query}`

/** The index of the node (of this test's cluster) serving a key. */
async function nodeOf(key: string): Promise<number> {
  const nodes = (await started).nodes
  const client = new Redis(nodes[0]?.port ?? 0, '127.0.0.1')
  try {
    const slot = (await client.call('CLUSTER', 'KEYSLOT', key)) as number
    const ranges = (await client.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][]
    const range = ranges.find(([from, to]) => slot >= from && slot <= to)
    const index = nodes.findIndex(node => node.port === range?.[2][1])
    if (index < 0) throw new Error(`no node serves ${key}`)
    return index
  } finally {
    client.disconnect()
  }
}

type Harness = StoreHarness & { cleanup(): Promise<void> }

describeStoreConformance(
  'redis cluster',
  async (): Promise<Harness> => {
    return redisHarness(
      new RedisEphemeralStore({ url: await url(), prefix: `${uniqueName('cluster')}:` })
    )
  },
  h => (h as Harness).cleanup(),
  { parts: ['ephemeral'] }
)

describe('RedisEphemeralStore on a Redis Cluster', () => {
  it('reads the cluster URL forms', () => {
    expect(parseClusterUrl('redis+cluster://a:7000,b:7001,[::1]:7002')).toEqual({
      nodes: [
        { host: 'a', port: 7000 },
        { host: 'b', port: 7001 },
        { host: '::1', port: 7002 },
      ],
      redisOptions: {},
    })
    expect(parseClusterUrl('rediss+cluster://u:p%40ss@a,b:7001/?prefix=x')).toEqual({
      nodes: [
        { host: 'a', port: 6379 },
        { host: 'b', port: 7001 },
      ],
      redisOptions: { username: 'u', password: 'p@ss', tls: {} },
    })
    expect(() => parseClusterUrl('redis+cluster://:S3cr3t@a:7000/2')).toThrow(TypeError)
    expect(() => parseClusterUrl('redis+cluster://:S3cr3t@a:x')).toThrow(/node "a:x"/)
    try {
      parseClusterUrl('redis+cluster://:S3cr3t@a:70000')
    } catch (error) {
      expect((error as Error).message).not.toContain('S3cr3t')
    }
  })

  it('spreads its shards over the three masters', async () => {
    const store = new RedisEphemeralStore({ url: await url(), prefix: `${uniqueName('spread')}:` })
    try {
      const owners = new Set<number>()
      for (let shard = 0; shard < SHARDS; shard++) {
        owners.add(await nodeOf(store.epochKey(shard)))
      }
      expect(owners.size).toBe(3)
    } finally {
      await store.close()
    }
  })

  it('clear() deletes the keys on every master and sets every marker to 0', async () => {
    const store = new RedisEphemeralStore({ url: await url(), prefix: `${uniqueName('clear')}:` })
    try {
      const values = Array.from({ length: 60 }, randomNonce)
      for (const value of values) expect(await store.accessNonces.reserve(value, MINUTE)).toBe(true)
      const counts = async (): Promise<number[]> =>
        Promise.all(
          (await started).nodes.map(async node => {
            const client = new Redis(node.port, '127.0.0.1')
            try {
              const keys = await client.keys(`${store.prefix}*`)
              return keys.filter(key => !key.endsWith(':epoch')).length
            } finally {
              client.disconnect()
            }
          })
        )
      const before = await counts()
      expect(before.every(n => n > 0)).toBe(true)
      expect(before.reduce((a, b) => a + b)).toBe(60)
      expect(await store.clear()).toBe(60)
      expect(await counts()).toEqual([0, 0, 0])
      for (let shard = 0; shard < SHARDS; shard++) {
        expect(await store.client.get(store.epochKey(shard))).toBe('0')
      }
      for (const value of values)
        expect(await store.accessNonces.reserve(value, MINUTE, 0)).toBe(true)
      await store.clear()
    } finally {
      await store.close()
    }
  })

  it('a wipe of one master refuses replays on its shards only', async () => {
    const clock = new Clock()
    const store = new RedisEphemeralStore({
      url: await url(),
      prefix: `${uniqueName('wipe')}:`,
      now: clock.now,
    })
    try {
      await store.clear()
      const t0 = clock.ms
      const values = Array.from({ length: 60 }, randomNonce)
      for (const value of values) {
        expect(await store.accessNonces.reserve(value, 10 * MINUTE, t0)).toBe(true)
      }
      const wiped = 1
      const node = (await started).nodes[wiped]
      if (node === undefined) throw new Error('no node')
      const admin = new Redis(node.port, '127.0.0.1')
      await admin.flushall()
      admin.disconnect()
      clock.advance(1)

      let refused = 0
      for (const value of values) {
        const onWiped = (await nodeOf(store.keyOf('nonce', value))) === wiped
        if (onWiped) {
          await expect(store.accessNonces.reserve(value, 10 * MINUTE, t0)).rejects.toMatchObject({
            code: 'BA607',
          })
          refused++
          // Reserved again once signed after the epoch.
          expect(await store.accessNonces.reserve(value, 10 * MINUTE, clock.ms)).toBe(true)
        } else {
          // The other masters kept their reservations (epoch 0): a plain replay.
          expect(await store.accessNonces.reserve(value, 10 * MINUTE, t0)).toBe(false)
        }
      }
      expect(refused).toBeGreaterThan(0)
      expect(refused).toBeLessThan(values.length)
      await store.clear()
    } finally {
      await store.close()
    }
  })

  it('BETTER_AUTH_REDIS=redis+cluster://… builds a working store', async () => {
    const prefix = `${uniqueName('clusterurl')}:`
    const store = await createStore({
      database: 'memory:',
      redis: await url(`?prefix=${encodeURIComponent(prefix)}`),
    })
    const check = new RedisEphemeralStore({ url: await url(), prefix })
    try {
      expect((store.redis as { isCluster?: boolean }).isCluster).toBe(true)
      const nonce = randomNonce()
      expect(await store.accessNonces.reserve(nonce, MINUTE, Date.now())).toBe(true)
      expect(await store.accessNonces.reserve(nonce, MINUTE, Date.now())).toBe(false)
      expect(await check.client.exists(check.keyOf('nonce', nonce))).toBe(1)
      await store.challenges.create(nonce, 'E-identity', MINUTE)
      expect(await store.challenges.consume(nonce)).toBe('E-identity')
    } finally {
      await check.clear()
      await check.close()
      await store.close?.()
    }
  })

  it('fails quickly when no seed node answers', async () => {
    await expect(
      createStore({ database: 'memory:', redis: 'redis+cluster://127.0.0.1:1,127.0.0.1:2' })
    ).rejects.toThrow(/cannot reach Redis/)
  })
})
