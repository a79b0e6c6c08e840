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
 * Replay state and wipes. A Redis without persistence that restarts comes back empty, forgetting
 * which nonces and refresh keys were used. So the keys are split into `SHARDS` shards, and each
 * shard has an epoch marker, a key without lifetime holding the time (ms) at which the store found
 * the shard empty. A reservation runs as one script: if the shard's marker is missing it is set to
 * the current time (the shard was wiped, or is new); a reservation whose `acceptableFrom` is before
 * the marker throws `ReplayStateResetError` (BA607), since its value may have been reserved before
 * the wipe; otherwise it is `SET NX` as above. A Redis that was never used cannot be told from a
 * wiped one: on a new Redis, messages signed before the first reservation are refused too, once.
 * `clear()` deletes everything and sets every marker to 0 (nothing to refuse).
 *
 * Key layout (`P` is the prefix, `N` the shard, 0–15, a hash of the value):
 *
 *   P{sN}:challenge:NONCE   P{sN}:nonce:NONCE   P{sN}:refresh:HASH   P{sN}:epoch
 *
 * The `{sN}` hash tag keeps a value's key and its shard's marker in one Redis Cluster slot, so the
 * store also works on a cluster (`redis+cluster://` URLs, or a `Cluster` client).
 *
 * Redis 6.2 or later (GETDEL). A Redis that cannot be reached makes calls reject (the server
 * answers 503 BA602); ioredis reconnects by itself. Run Redis with `maxmemory-policy noeviction`:
 * an evicted nonce could be replayed (the store warns at connect otherwise).
 *
 *   import { RedisEphemeralStore } from 'better-auth-protocol/stores/redis'
 *   const ephemeral = new RedisEphemeralStore({ url: 'redis://127.0.0.1:6379' })
 */
import { createHash } from 'node:crypto'
import type { Cluster, ClusterNode, ClusterOptions, Redis, RedisOptions } from 'ioredis'
import { ReplayStateResetError } from '../errors'
import type { ChallengeStore, EphemeralStore, TimeLockStore } from './types'

export type RedisClient = Redis | Cluster

/** Where the store reports that Redis may evict keys (pino-compatible). */
export interface RedisStoreLogger {
  warn(object: object, message?: string): void
}

export interface RedisEphemeralStoreOptions {
  /** An existing client (the store does not close it). Its own retry settings apply. */
  client?: RedisClient
  /**
   * URL of a Redis the store connects to (and disconnects on `close()`): `redis://…`,
   * `rediss://…`, or `redis+cluster://host:port,host:port` (`rediss+cluster://` with TLS) for a
   * Redis Cluster given by seed nodes.
   */
  url?: string
  /** Seed nodes of a Redis Cluster the store connects to (instead of `url`). */
  clusterNodes?: ClusterNode[]
  /** Further options of the client the store creates (of each node's client, on a cluster). */
  redisOptions?: RedisOptions
  /** Further options of a cluster client the store creates. */
  clusterOptions?: ClusterOptions
  /** Prefix of every key. @default 'better-auth:' */
  prefix?: string
  /** Receives connection errors of a client the store created. @default ignore */
  onError?: (error: unknown) => void
  /**
   * Receives the warning that a Redis the store connected to may evict keys (its
   * `maxmemory-policy` is not `noeviction`). @default `onError` if given, else a process warning
   */
  logger?: RedisStoreLogger
  /** The current time in ms, for epoch markers. @default Date.now */
  now?: () => number
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

/**
 * Settings of a cluster client the store creates: bounded waits for slot maps and redirections,
 * reconnection in the background. (Commands issued while the cluster is not ready wait in its
 * queue; the store bounds that wait by the nodes' `commandTimeout`.)
 */
export const FAIL_FAST_CLUSTER_OPTIONS: ClusterOptions = {
  clusterRetryStrategy: (times: number) => Math.min(100 * times, 1000),
  slotsRefreshTimeout: 2000,
  retryDelayOnClusterDown: 100,
  retryDelayOnFailover: 100,
  retryDelayOnTryAgain: 100,
  maxRedirections: 8,
}

/** How many shards (hash tags, and so epoch markers) the keys are spread over. */
export const SHARDS = 16

/**
 * One reservation, atomically with its shard's epoch marker.
 * KEYS: the value's key, the marker. ARGV: ttl ms, now ms, acceptableFrom ms or ''.
 * Returns {result, epoch, markerWasMissing}: result 1 reserved, 0 already reserved, -1 refused.
 */
const RESERVE_SCRIPT = `
local epoch = redis.call('GET', KEYS[2])
local missing = 0
if not epoch then
  epoch = ARGV[2]
  missing = 1
  redis.call('SET', KEYS[2], epoch)
end
if ARGV[3] ~= '' and tonumber(ARGV[3]) < tonumber(epoch) then
  return {-1, epoch, missing}
end
if redis.call('SET', KEYS[1], '1', 'PX', ARGV[1], 'NX') then
  return {1, epoch, missing}
end
return {0, epoch, missing}
`
const RESERVE_SHA = createHash('sha1').update(RESERVE_SCRIPT).digest('hex')

/** Challenges and time-locks in Redis (or a Redis Cluster). */
export class RedisEphemeralStore implements EphemeralStore {
  readonly client: RedisClient
  readonly prefix: string
  readonly challenges: ChallengeStore
  readonly refreshKeys: TimeLockStore
  readonly accessNonces: TimeLockStore
  private readonly owned: boolean
  private readonly now: () => number
  /** On a cluster the store created: how long a command may wait for the cluster. */
  private readonly waitMs: number | undefined

  constructor(options: RedisEphemeralStoreOptions = {}) {
    this.owned = options.client === undefined
    this.now = options.now ?? Date.now
    this.prefix = options.prefix ?? 'better-auth:'
    checkPrefix(this.prefix)
    if (options.client !== undefined) {
      this.client = options.client
    } else {
      const settings = { ...FAIL_FAST_REDIS_OPTIONS, ...options.redisOptions }
      const parsed =
        options.url !== undefined && isClusterUrl(options.url)
          ? parseClusterUrl(options.url)
          : undefined
      const seeds = options.clusterNodes ?? parsed?.nodes
      // ioredis loads here, when a store creates its client: never for an app that uses no Redis,
      // even in an ES module bundle (a literal require, which bundlers see; see stores/url.ts).
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const driver = require('ioredis') as typeof import('ioredis')
      let client: RedisClient
      if (seeds !== undefined) {
        // The cluster reconnects its nodes itself; a node's retryStrategy is not an option there.
        const { retryStrategy: _retry, ...nodeSettings } = settings
        void _retry
        client = new driver.Cluster(seeds, {
          ...FAIL_FAST_CLUSTER_OPTIONS,
          ...options.clusterOptions,
          redisOptions: {
            ...nodeSettings,
            ...parsed?.redisOptions,
            ...options.clusterOptions?.redisOptions,
          },
        })
        this.waitMs = settings.commandTimeout ?? undefined
      } else {
        client =
          options.url === undefined
            ? new driver.Redis(settings)
            : new driver.Redis(options.url, settings)
      }
      // Without a listener ioredis logs every failed reconnection; the caller decides.
      client.on('error', options.onError ?? (() => undefined))
      client.once('ready', () => void this.warnIfEvicting(options))
      // Connected (again): a Redis that restarted empty is detected now, not at the next
      // reservation of each shard (the marker of a shard that kept its state is left alone).
      client.on('ready', () => void this.markShards())
      this.client = client
    }
    this.challenges = this.challengeStore('challenge')
    this.refreshKeys = this.timeLockStore('refresh')
    this.accessNonces = this.timeLockStore('nonce')
  }

  /** The shard of a value: FNV-1a over every character (the first ones are a constant type code). */
  static shardOf(value: string): number {
    let h = 0x811c9dc5
    for (let i = 0; i < value.length; i++) {
      h ^= value.charCodeAt(i)
      h = Math.imul(h, 0x01000193)
    }
    return (h >>> 0) % SHARDS
  }

  /** The key of a challenge (`challenge`), access nonce (`nonce`) or refresh-key hash (`refresh`). */
  keyOf(kind: 'challenge' | 'nonce' | 'refresh', value: string): string {
    return `${this.prefix}{s${RedisEphemeralStore.shardOf(value)}}:${kind}:${value}`
  }

  /** The epoch marker of a shard. */
  epochKey(shard: number): string {
    return `${this.prefix}{s${shard}}:epoch`
  }

  /**
   * Deletes every key under the prefix, on every master of a cluster (tests, deliberate resets),
   * then sets every shard's epoch marker to 0: after a deliberate reset nothing is refused.
   * Returns how many challenges and reservations were deleted.
   */
  async clear(): Promise<number> {
    let nodes: Redis[]
    if (isCluster(this.client)) {
      // Connects (and so learns the masters) first.
      await this.bounded(this.client.ping())
      nodes = this.client.nodes('master')
    } else {
      nodes = [this.client]
    }
    let deleted = 0
    for (const node of nodes) deleted += await this.clearNode(node)
    await this.bounded(
      Promise.all(
        Array.from({ length: SHARDS }, (_, shard) => this.client.set(this.epochKey(shard), '0'))
      )
    )
    return deleted
  }

  /**
   * The `maxmemory-policy` of the Redis (of each master of a cluster, the first one not
   * `noeviction`), or undefined when it cannot be read (e.g. CONFIG is disabled).
   */
  async maxmemoryPolicy(): Promise<string | undefined> {
    const nodes = isCluster(this.client) ? this.client.nodes('master') : [this.client]
    let policy: string | undefined
    for (const node of nodes) {
      try {
        const reply = (await node.config('GET', 'maxmemory-policy')) as unknown
        const value = Array.isArray(reply) ? (reply[1] as unknown) : undefined
        if (typeof value !== 'string') continue
        if (value !== 'noeviction') return value
        policy = value
      } catch {
        // CONFIG may be renamed or disabled: nothing to check.
      }
    }
    return policy
  }

  /** Checks that Redis answers (rejects within the command timeout on a client it created). */
  async ping(): Promise<void> {
    await this.bounded(this.client.ping())
  }

  async close(): Promise<void> {
    if (!this.owned) return
    // QUIT lets pending replies arrive; a client that is not connected is just stopped (also
    // ending its reconnection attempts).
    if (this.client.status === 'ready') await this.client.quit().catch(() => undefined)
    this.client.disconnect()
  }

  private async warnIfEvicting(options: RedisEphemeralStoreOptions): Promise<void> {
    const policy = await this.maxmemoryPolicy().catch(() => undefined)
    if (policy === undefined || policy === 'noeviction') return
    const message =
      `Redis maxmemory-policy is ${policy}, not noeviction: an evicted nonce or refresh-key ` +
      'reservation would let a message be replayed'
    if (options.logger !== undefined) options.logger.warn({ maxmemoryPolicy: policy }, message)
    else if (options.onError !== undefined) options.onError(new Error(message))
    else process.emitWarning(message)
  }

  /** Deletes this store's keys on one node, one key per command (no cross-slot commands). */
  private async clearNode(node: Redis): Promise<number> {
    let deleted = 0
    let cursor = '0'
    const marker = /^\{s\d+\}:epoch$/
    do {
      const [next, keys] = await node.scan(
        cursor,
        'MATCH',
        `${escapeGlob(this.prefix)}*`,
        'COUNT',
        500
      )
      cursor = next
      if (keys.length > 0) {
        const pipeline = node.pipeline()
        for (const key of keys) pipeline.unlink(key)
        const results = (await pipeline.exec()) ?? []
        results.forEach(([error, count], i) => {
          if (error !== null) throw error
          if (count === 1 && !marker.test((keys[i] ?? '').slice(this.prefix.length))) deleted++
        })
      }
    } while (cursor !== '0')
    return deleted
  }

  /** A cluster the store created queues commands while it is not ready: bound that wait. */
  private bounded<T>(command: Promise<T>): Promise<T> {
    const ms = this.waitMs
    if (ms === undefined) return command
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`Redis Cluster did not answer within ${ms} ms`)),
        ms
      )
    })
    return Promise.race([command, timeout]).finally(() => clearTimeout(timer))
  }

  private challengeStore(kind: 'challenge'): ChallengeStore {
    return {
      create: async (nonce, identity, ttlMs) => {
        await this.bounded(this.client.set(this.keyOf(kind, nonce), identity, 'PX', ttl(ttlMs)))
      },
      peek: async nonce =>
        (await this.bounded(this.client.get(this.keyOf(kind, nonce)))) ?? undefined,
      consume: async nonce =>
        (await this.bounded(this.client.getdel(this.keyOf(kind, nonce)))) ?? undefined,
    }
  }

  private timeLockStore(kind: 'nonce' | 'refresh'): TimeLockStore {
    return {
      reserve: async (value, ttlMs, acceptableFrom) => {
        if (acceptableFrom !== undefined && !Number.isFinite(acceptableFrom)) {
          throw new TypeError('acceptableFrom must be a finite time in ms')
        }
        const shard = RedisEphemeralStore.shardOf(value)
        const keys = [this.keyOf(kind, value), this.epochKey(shard)]
        const args = [
          String(ttl(ttlMs)),
          String(Math.floor(this.now())),
          acceptableFrom === undefined ? '' : String(Math.floor(acceptableFrom)),
        ]
        const [result, epoch, missing] = (await this.bounded(this.script(keys, args))) as [
          number,
          string,
          number,
        ]
        // A restart empties every shard of a Redis: mark the others now, so that their refusals
        // start now too rather than at their own first reservation, maybe much later.
        if (missing === 1) await this.markShards(shard)
        if (result === -1) {
          throw new ReplayStateResetError({
            context: { acceptableFrom, epoch: Number(epoch), shard },
          })
        }
        return result === 1
      },
    }
  }

  /**
   * Sets the markers of the shards (other than `found`) that have none to the current time (best
   * effort: a shard left without marker gets one at its next reservation).
   */
  private async markShards(found = -1): Promise<void> {
    const now = String(Math.floor(this.now()))
    await Promise.all(
      Array.from({ length: SHARDS }, (_, shard) =>
        shard === found
          ? Promise.resolve()
          : this.bounded(this.client.set(this.epochKey(shard), now, 'NX')).catch(() => undefined)
      )
    )
  }

  /** EVALSHA, or EVAL when the server does not know the script (new, or restarted). */
  private async script(keys: string[], args: string[]): Promise<unknown> {
    try {
      return await this.client.evalsha(RESERVE_SHA, keys.length, ...keys, ...args)
    } catch (error) {
      if (!String((error as Error | undefined)?.message).startsWith('NOSCRIPT')) throw error
      return this.client.eval(RESERVE_SCRIPT, keys.length, ...keys, ...args)
    }
  }
}

/** Whether a URL names a Redis Cluster (`redis+cluster://`, `rediss+cluster://`). */
export function isClusterUrl(url: string): boolean {
  return /^rediss?\+cluster:\/\//i.test(url.trim())
}

/**
 * Reads `redis+cluster://[user:password@]host:port,host:port` (`rediss+cluster://` for TLS):
 * the seed nodes, and the credentials and TLS setting every node's client uses. Percent-encode
 * special characters of the user and password. Throws a TypeError without echoing a password.
 */
export function parseClusterUrl(url: string): {
  nodes: { host: string; port: number }[]
  redisOptions: RedisOptions
} {
  const match = /^(rediss?)\+cluster:\/\/(.*)$/i.exec(url.trim())
  if (match === null) throw new TypeError('not a redis+cluster:// URL')
  const tls = match[1]?.toLowerCase() === 'rediss'
  let rest = match[2] ?? ''
  const query = rest.indexOf('?')
  if (query >= 0) rest = rest.slice(0, query)
  if (rest.endsWith('/')) rest = rest.slice(0, -1)
  const redisOptions: RedisOptions = {}
  const at = rest.lastIndexOf('@')
  if (at >= 0) {
    const userinfo = rest.slice(0, at)
    rest = rest.slice(at + 1)
    const colon = userinfo.indexOf(':')
    try {
      const username = decodeURIComponent(colon < 0 ? userinfo : userinfo.slice(0, colon))
      const password = colon < 0 ? '' : decodeURIComponent(userinfo.slice(colon + 1))
      if (username !== '') redisOptions.username = username
      if (password !== '') redisOptions.password = password
    } catch {
      throw new TypeError(
        'invalid Redis Cluster URL: percent-encode special characters of the user and password'
      )
    }
  }
  if (tls) redisOptions.tls = {}
  if (rest.includes('/')) {
    throw new TypeError('a Redis Cluster URL names no database: redis+cluster://host:port,…')
  }
  const nodes = rest.split(',').map(text => {
    const node = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(text.trim())
    if (node === null) {
      throw new TypeError(
        `invalid Redis Cluster node ${JSON.stringify(text)}: use redis+cluster://host:port,host:port`
      )
    }
    const host = (node[1] ?? '').replace(/^\[(.*)\]$/, '$1')
    const port = node[2] === undefined ? 6379 : Number(node[2])
    if (port < 1 || port > 65535) throw new TypeError(`invalid Redis Cluster port ${port}`)
    return { host, port }
  })
  return { nodes, redisOptions }
}

function isCluster(client: RedisClient): client is Cluster {
  return client.isCluster
}

/**
 * The `{sN}` tags must decide the slot: Redis hashes the whole key when the first `{` is followed
 * at once by `}`, which would part a value's key from its marker on a cluster.
 */
function checkPrefix(prefix: string): void {
  const open = prefix.indexOf('{')
  if (open >= 0 && prefix[open + 1] === '}') {
    throw new TypeError('a Redis key prefix must not contain an empty hash tag "{}"')
  }
}

/** Redis wants a positive whole number of milliseconds. */
const ttl = (ms: number): number => Math.max(1, Math.ceil(ms))

const escapeGlob = (text: string): string => text.replace(/[*?[\]\\]/g, c => `\\${c}`)
