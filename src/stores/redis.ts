/**
 * Redis store (ioredis) for the ephemeral state: session challenges and the two time-locks.
 * Pair it with a durable store for accounts and keys (`combineStores`), e.g. PostgreSQL for
 * accounts and Redis for challenges and nonces.
 *
 * - A challenge is `SET key identity PX ttl`; `peek` is `GET`; `consume` is `GETDEL`, so of
 *   several concurrent consumers exactly one gets it.
 * - A reservation is `SET key 1 PX ttl NX`: exactly one caller reserves a value until it expires.
 * - Every key starts with a configurable prefix (`better-auth:` by default).
 *
 * Redis 6.2 or later (GETDEL). A Redis that cannot be reached makes calls reject (the server
 * answers 503 BA602); ioredis reconnects by itself.
 *
 *   import { RedisEphemeralStore } from 'better-auth-protocol/stores/redis'
 *   const ephemeral = new RedisEphemeralStore({ url: 'redis://127.0.0.1:6379' })
 */
import { Redis, type Cluster, type RedisOptions } from 'ioredis'
import type { ChallengeStore, EphemeralStore, TimeLockStore } from './types'

export type RedisClient = Redis | Cluster

export interface RedisEphemeralStoreOptions {
  /** An existing client (the store does not close it). Its own retry settings apply. */
  client?: RedisClient
  /** URL of a Redis the store connects to (and disconnects on `close()`). */
  url?: string
  /** Further options of the client the store creates. */
  redisOptions?: RedisOptions
  /** Prefix of every key. @default 'better-auth:' */
  prefix?: string
  /** Receives connection errors of a client the store created. @default ignore */
  onError?: (error: unknown) => void
}

/**
 * Settings of a client the store creates: fail a command quickly while Redis is unreachable
 * (the request gets 503 instead of hanging), and keep reconnecting in the background.
 */
export const FAIL_FAST_REDIS_OPTIONS: RedisOptions = {
  maxRetriesPerRequest: 1,
  commandTimeout: 2000,
  connectTimeout: 2000,
  retryStrategy: (times: number) => Math.min(50 * times, 1000),
  // How long closing waits for a socket to end; a dead socket never does.
  disconnectTimeout: 500,
}

/** Challenges and time-locks in Redis. */
export class RedisEphemeralStore implements EphemeralStore {
  readonly client: RedisClient
  readonly prefix: string
  readonly challenges: ChallengeStore
  readonly refreshKeys: TimeLockStore
  readonly accessNonces: TimeLockStore
  private readonly owned: boolean

  constructor(options: RedisEphemeralStoreOptions = {}) {
    this.owned = options.client === undefined
    if (options.client !== undefined) {
      this.client = options.client
    } else {
      const settings = { ...FAIL_FAST_REDIS_OPTIONS, ...options.redisOptions }
      const client =
        options.url === undefined ? new Redis(settings) : new Redis(options.url, settings)
      // Without a listener ioredis logs every failed reconnection; the caller decides.
      client.on('error', options.onError ?? (() => undefined))
      this.client = client
    }
    this.prefix = options.prefix ?? 'better-auth:'
    this.challenges = this.challengeStore(`${this.prefix}challenge:`)
    this.refreshKeys = this.timeLockStore(`${this.prefix}refresh:`)
    this.accessNonces = this.timeLockStore(`${this.prefix}nonce:`)
  }

  /** Deletes every key under the prefix (tests, resets). Returns how many were deleted. */
  async clear(): Promise<number> {
    let deleted = 0
    let cursor = '0'
    const client = this.client as Redis
    do {
      const [next, keys] = await client.scan(
        cursor,
        'MATCH',
        `${escapeGlob(this.prefix)}*`,
        'COUNT',
        500
      )
      cursor = next
      if (keys.length > 0) deleted += await client.unlink(...keys)
    } while (cursor !== '0')
    return deleted
  }

  async close(): Promise<void> {
    if (!this.owned) return
    // QUIT lets pending replies arrive; a client that is not connected is just stopped (also
    // ending its reconnection attempts).
    if (this.client.status === 'ready') await this.client.quit().catch(() => undefined)
    this.client.disconnect()
  }

  private challengeStore(prefix: string): ChallengeStore {
    return {
      create: async (nonce, identity, ttlMs) => {
        await this.client.set(prefix + nonce, identity, 'PX', ttl(ttlMs))
      },
      peek: async nonce => (await this.client.get(prefix + nonce)) ?? undefined,
      consume: async nonce => (await this.client.getdel(prefix + nonce)) ?? undefined,
    }
  }

  private timeLockStore(prefix: string): TimeLockStore {
    return {
      reserve: async (value, ttlMs) =>
        (await this.client.set(prefix + value, '1', 'PX', ttl(ttlMs), 'NX')) === 'OK',
    }
  }
}

/** Redis wants a positive whole number of milliseconds. */
const ttl = (ms: number): number => Math.max(1, Math.ceil(ms))

const escapeGlob = (text: string): string => text.replace(/[*?[\]\\]/g, c => `\\${c}`)
