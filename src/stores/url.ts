/**
 * Stores by URL, for configuration from the environment:
 *
 *   BETTER_AUTH_DATABASE  memory:  |  sqlite:PATH (sqlite::memory:)  |  postgres://…  (?schema=NAME)
 *   BETTER_AUTH_REDIS     redis://… | rediss://…  (optional; ?prefix=PREFIX)
 *
 * With a Redis URL, challenges and time-locks live in Redis and accounts and keys in the
 * database. Drivers load only when their URL is used (pg, ioredis, better-sqlite3 are optional).
 */
import { combineStores } from './combine'
import { MemoryStore } from './memory'
import type { ServerStore } from './types'

/**
 * Loads a store module (and so its driver) only when its URL is used. A plain `require` at
 * call time: the package is CommonJS, and ECMAScript `import()` of a relative path would need
 * the built file's extension.
 */
function load<T>(path: string): T {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(path) as T
}

export interface StoreUrls {
  /** `memory:`, `sqlite:PATH` or `postgres://…`. @default 'memory:' */
  database?: string
  /** `redis://…` or `rediss://…`: challenges and time-locks in Redis. */
  redis?: string
  /** Run the SQL migration now (SQLite always migrates on open). @default true */
  migrate?: boolean
}

/** A store from URLs; PostgreSQL is migrated and Redis checked before this resolves. */
export async function createStore(urls: StoreUrls = {}): Promise<ServerStore> {
  const database = (urls.database ?? 'memory:').trim()
  const durable = await openDatabase(database, urls.migrate ?? true)
  if (urls.redis === undefined || urls.redis.trim() === '') return durable
  try {
    const { RedisEphemeralStore } = load<typeof import('./redis')>('./redis')
    const { url, prefix } = redisUrl(urls.redis.trim())
    const ephemeral = new RedisEphemeralStore(prefix === undefined ? { url } : { url, prefix })
    try {
      await ephemeral.client.ping()
    } catch (error) {
      await ephemeral.close()
      throw new Error(`cannot reach Redis at ${redact(url)}`, { cause: error })
    }
    return combineStores(durable, ephemeral)
  } catch (error) {
    await durable.close?.()
    throw error
  }
}

/**
 * A store from `BETTER_AUTH_DATABASE` and `BETTER_AUTH_REDIS`; `defaults.database` applies when
 * the first is unset (the example server defaults to `sqlite:./better-auth.db`).
 */
export function createStoreFromEnv(
  env: Record<string, string | undefined> = process.env,
  defaults: { database?: string } = {}
): Promise<ServerStore> {
  const urls: StoreUrls = {}
  const database = env.BETTER_AUTH_DATABASE?.trim() || defaults.database
  if (database !== undefined) urls.database = database
  if (env.BETTER_AUTH_REDIS?.trim()) urls.redis = env.BETTER_AUTH_REDIS
  return createStore(urls)
}

async function openDatabase(url: string, migrate: boolean): Promise<ServerStore> {
  if (url === 'memory:' || url === 'memory') {
    return new MemoryStore()
  }
  if (url.startsWith('sqlite:')) {
    const { SqliteStore } = load<typeof import('./sqlite')>('./sqlite')
    return new SqliteStore({ path: sqlitePath(url) })
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    const { PostgresStore } = load<typeof import('./postgres')>('./postgres')
    const parsed = new URL(url)
    const schema = parsed.searchParams.get('schema') ?? undefined
    parsed.searchParams.delete('schema')
    const store = new PostgresStore(
      schema === undefined
        ? { connectionString: parsed.toString() }
        : { connectionString: parsed.toString(), schema }
    )
    if (migrate) {
      try {
        await store.migrate()
      } catch (error) {
        await store.close()
        throw new Error(`cannot migrate PostgreSQL at ${redact(url)}`, { cause: error })
      }
    }
    return store
  }
  throw new TypeError(
    `unsupported database URL ${JSON.stringify(redact(url))}: use memory:, sqlite:PATH or postgres://…`
  )
}

/** `sqlite:PATH`, `sqlite://PATH`, `sqlite:///abs/path`, `sqlite::memory:`. */
export function sqlitePath(url: string): string {
  let path = url.slice('sqlite:'.length)
  if (path.startsWith('//')) path = path.slice(2)
  if (path === '') throw new TypeError('sqlite: URL names no file (e.g. sqlite:./better-auth.db)')
  return path
}

function redisUrl(url: string): { url: string; prefix?: string } {
  if (!url.startsWith('redis://') && !url.startsWith('rediss://')) {
    throw new TypeError(`unsupported Redis URL ${JSON.stringify(redact(url))}: use redis://…`)
  }
  const parsed = new URL(url)
  const prefix = parsed.searchParams.get('prefix') ?? undefined
  parsed.searchParams.delete('prefix')
  return prefix === undefined ? { url: parsed.toString() } : { url: parsed.toString(), prefix }
}

/** A URL without its password, for messages. */
function redact(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password !== '') parsed.password = '***'
    return parsed.toString()
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//***@')
  }
}
