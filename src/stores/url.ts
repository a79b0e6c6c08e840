/**
 * Stores by URL, for configuration from the environment:
 *
 *   BETTER_AUTH_DATABASE  memory:  |  sqlite:PATH (sqlite::memory:)  |  postgres://…  (?schema=NAME,
 *                         ?timeout=MS, or ?connectTimeout=MS and ?queryTimeout=MS: default 3000)
 *   BETTER_AUTH_REDIS     redis://… | rediss://…  (optional; ?prefix=PREFIX)
 *                         redis+cluster://host:port,host:port | rediss+cluster://…  (a Redis Cluster)
 *
 * With a Redis URL, challenges and time-locks live in Redis and accounts and keys in the
 * database. Drivers load only when their URL is used (pg, ioredis, better-sqlite3 are optional;
 * SQLite uses Node's built-in node:sqlite where Node.js has it).
 */
import { combineStores } from './combine'
import { MemoryStore } from './memory'
import type { ServerStore } from './types'

/*
 * Each store module (and so its driver) loads only when its URL is used, synchronously, with a
 * literal `require('./sqlite')` (and so on) inside the function that needs it: bundlers (esbuild,
 * webpack) see every store and include it, and an app that never names a database kind never
 * loads its module. In the ES module build, `scripts/build.mjs` gives this file a `require`
 * (scripts/shims/esm-require.js) that loads the package's own ES modules, so a store made here is
 * the same class that `import` gives.
 */
type SqliteModule = typeof import('./sqlite')
type PostgresModule = typeof import('./postgres')
type RedisModule = typeof import('./redis')

function loadSqlite(): SqliteModule {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('./sqlite') as SqliteModule
}

function loadPostgres(): PostgresModule {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('./postgres') as PostgresModule
}

function loadRedis(): RedisModule {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('./redis') as RedisModule
}

export interface StoreUrls {
  /** `memory:`, `sqlite:PATH` or `postgres://…`. @default 'memory:' */
  database?: string
  /**
   * `redis://…` or `rediss://…`: challenges and time-locks in Redis; `redis+cluster://host:port,…`
   * (`rediss+cluster://` with TLS) in a Redis Cluster given by seed nodes.
   */
  redis?: string
  /** Run the PostgreSQL migration before resolving (SQLite migrates on open). @default true */
  migrate?: boolean
  /**
   * Open an existing database only: a SQLite file that does not exist is an error (nothing is
   * created) and no tables are created or upgraded, in SQLite or PostgreSQL. @default false
   */
  existing?: boolean
}

export type DatabaseUrl =
  | { kind: 'memory' }
  | { kind: 'sqlite'; path: string }
  | {
      kind: 'postgres'
      connectionString: string
      schema?: string
      /** Longest wait for a connection, ms (`?connectTimeout=` or `?timeout=`). */
      connectTimeoutMs?: number
      /** Longest run of a statement, ms (`?queryTimeout=` or `?timeout=`). */
      queryTimeoutMs?: number
    }

/** Reads a timeout parameter (ms, a positive integer) of a PostgreSQL URL. */
function timeoutParam(name: string, value: string | null): number | undefined {
  if (value === null) return undefined
  const ms = Number(value)
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(ms) || ms <= 0) {
    throw new TypeError(`postgres URL: ${name} must be a positive number of milliseconds`)
  }
  return ms
}

/** Reads a database URL; throws a TypeError naming the accepted forms. */
export function parseDatabaseUrl(url: string): DatabaseUrl {
  const text = url.trim()
  if (text === 'memory:' || text === 'memory') return { kind: 'memory' }
  if (text.startsWith('sqlite:')) {
    let path = text.slice('sqlite:'.length)
    if (path.startsWith('//')) path = path.slice(2)
    if (path === '') throw new TypeError('sqlite: URL names no file (e.g. sqlite:./better-auth.db)')
    return { kind: 'sqlite', path }
  }
  if (text.startsWith('postgres://') || text.startsWith('postgresql://')) {
    // Only the query is read here; the rest goes to pg as given (its socket form `user@/db?host=`,
    // passwords with characters a URL parser refuses), so no error here can carry the password.
    const { rest: withoutSchema, value: schema } = takeParam(text, 'schema')
    const { rest: withoutTimeout, value: timeout } = takeParam(withoutSchema, 'timeout')
    const { rest: withoutConnect, value: connect } = takeParam(withoutTimeout, 'connectTimeout')
    const { rest: connectionString, value: query } = takeParam(withoutConnect, 'queryTimeout')
    const both = timeoutParam('timeout', timeout)
    const connectTimeoutMs = timeoutParam('connectTimeout', connect) ?? both
    const queryTimeoutMs = timeoutParam('queryTimeout', query) ?? both
    return {
      kind: 'postgres',
      connectionString,
      ...(schema === null ? {} : { schema }),
      ...(connectTimeoutMs === undefined ? {} : { connectTimeoutMs }),
      ...(queryTimeoutMs === undefined ? {} : { queryTimeoutMs }),
    }
  }
  throw new TypeError(
    `unsupported database URL ${JSON.stringify(redact(text))}: use memory:, sqlite:PATH or postgres://…`
  )
}

/**
 * A store configured from URLs. With a Redis URL, `redis` is its client: pass it to the rate
 * limiter (`rateLimit: { redis }`) so limits hold across instances too.
 */
export type ConfiguredStore = ServerStore & { redis?: unknown }

/** The store, and its durable part (to migrate) and Redis store (to check). */
function open(urls: StoreUrls): {
  store: ConfiguredStore
  durable: ServerStore
  ephemeral?: import('./redis').RedisEphemeralStore
} {
  const durable = openDatabase(parseDatabaseUrl(urls.database ?? 'memory:'), urls)
  if (urls.redis === undefined || urls.redis.trim() === '') return { store: durable, durable }
  try {
    const { RedisEphemeralStore } = loadRedis()
    const { url, prefix } = redisUrl(urls.redis.trim())
    const ephemeral = new RedisEphemeralStore(prefix === undefined ? { url } : { url, prefix })
    return {
      store: { ...combineStores(durable, ephemeral), redis: ephemeral.client },
      durable,
      ephemeral,
    }
  } catch (error) {
    void durable.close?.()
    throw error
  }
}

/**
 * A store from URLs, at once: SQLite opens (and migrates) now, PostgreSQL migrates on first use,
 * Redis connects in the background. For module-level setup; `createStore` checks the services
 * before it resolves.
 */
export function openStore(urls: StoreUrls = {}): ConfiguredStore {
  return open(urls).store
}

/** A store from URLs; PostgreSQL is migrated and Redis checked before this resolves. */
export async function createStore(urls: StoreUrls = {}): Promise<ConfiguredStore> {
  const { store, durable, ephemeral } = open(urls)
  try {
    const postgres = parseDatabaseUrl(urls.database ?? 'memory:').kind === 'postgres'
    if (postgres && (urls.migrate ?? true) && urls.existing !== true) {
      await (durable as unknown as { migrate(): Promise<number> })
        .migrate()
        .catch((error: unknown) => {
          throw new Error(`cannot migrate PostgreSQL at ${redact(urls.database ?? '')}`, {
            cause: error,
          })
        })
    }
    if (ephemeral !== undefined) {
      await ephemeral.ping().catch((error: unknown) => {
        throw new Error(`cannot reach Redis at ${redact(redisUrl(urls.redis ?? '').url)}`, {
          cause: error,
        })
      })
    }
    return store
  } catch (error) {
    await store.close?.()
    throw error
  }
}

/** The database and Redis URLs of the environment, with a default database. */
function urlsFromEnv(
  env: Record<string, string | undefined>,
  defaults: { database?: string }
): StoreUrls {
  const urls: StoreUrls = {}
  const database = env.BETTER_AUTH_DATABASE?.trim() || defaults.database
  if (database !== undefined) urls.database = database
  if (env.BETTER_AUTH_REDIS?.trim()) urls.redis = env.BETTER_AUTH_REDIS
  return urls
}

/**
 * A store from `BETTER_AUTH_DATABASE` and `BETTER_AUTH_REDIS`; `defaults.database` applies when
 * the first is unset (the examples default to `sqlite:./better-auth.db`).
 */
export function createStoreFromEnv(
  env: Record<string, string | undefined> = process.env,
  defaults: { database?: string } = {}
): Promise<ConfiguredStore> {
  return createStore(urlsFromEnv(env, defaults))
}

/** The same, at once (see `openStore`), for module-level setup. */
export function storeFromEnv(
  env: Record<string, string | undefined> = process.env,
  defaults: { database?: string } = {}
): ConfiguredStore {
  return openStore(urlsFromEnv(env, defaults))
}

/** The store options a PostgreSQL URL gives besides its connection string. */
function postgresOptions(db: Extract<DatabaseUrl, { kind: 'postgres' }>): {
  schema?: string
  connectTimeoutMs?: number
  queryTimeoutMs?: number
} {
  return {
    ...(db.schema === undefined ? {} : { schema: db.schema }),
    ...(db.connectTimeoutMs === undefined ? {} : { connectTimeoutMs: db.connectTimeoutMs }),
    ...(db.queryTimeoutMs === undefined ? {} : { queryTimeoutMs: db.queryTimeoutMs }),
  }
}

function openDatabase(db: DatabaseUrl, urls: StoreUrls): ServerStore {
  switch (db.kind) {
    case 'memory':
      return new MemoryStore()
    case 'sqlite': {
      const { SqliteStore } = loadSqlite()
      return new SqliteStore(
        urls.existing === true
          ? { path: db.path, create: false, migrate: false }
          : { path: db.path }
      )
    }
    case 'postgres': {
      const { PostgresStore } = loadPostgres()
      return new PostgresStore({
        connectionString: db.connectionString,
        ...postgresOptions(db),
        ...(urls.migrate === false || urls.existing === true ? { migrate: false } : {}),
      })
    }
  }
}

/**
 * Creates or upgrades the tables of a SQLite or PostgreSQL database (idempotent). Returns how
 * many migration steps ran.
 */
export async function migrateDatabase(url: string): Promise<number> {
  const db = parseDatabaseUrl(url)
  if (db.kind === 'sqlite') {
    const { SqliteStore } = loadSqlite()
    const store = new SqliteStore({ path: db.path, migrate: false, sweepIntervalMs: 0 })
    try {
      return store.migrate()
    } finally {
      await store.close()
    }
  }
  if (db.kind === 'postgres') {
    const { PostgresStore } = loadPostgres()
    const store = new PostgresStore({
      connectionString: db.connectionString,
      sweepIntervalMs: 0,
      ...postgresOptions(db),
    })
    try {
      return await store.migrate()
    } finally {
      await store.close()
    }
  }
  throw new TypeError('only sqlite: and postgres:// databases have tables to migrate')
}

function redisUrl(url: string): { url: string; prefix?: string } {
  const cluster = url.startsWith('redis+cluster://') || url.startsWith('rediss+cluster://')
  if (!url.startsWith('redis://') && !url.startsWith('rediss://') && !cluster) {
    throw new TypeError(
      `unsupported Redis URL ${JSON.stringify(redact(url))}: use redis://… or redis+cluster://…`
    )
  }
  const { rest, value: prefix } = takeParam(url, 'prefix')
  // A cluster URL lists several hosts, which a URL parser refuses; the store reads it.
  if (!cluster && !URL.canParse(rest)) {
    throw new TypeError(
      `invalid Redis URL ${JSON.stringify(redact(rest))}: percent-encode special characters of the password`
    )
  }
  return prefix === null ? { url: rest } : { url: rest, prefix }
}

/** Takes one parameter off a URL's query, leaving the rest of the text as it was. */
function takeParam(text: string, name: string): { rest: string; value: string | null } {
  const at = text.indexOf('?')
  if (at < 0) return { rest: text, value: null }
  const params = new URLSearchParams(text.slice(at + 1))
  const value = params.get(name)
  params.delete(name)
  const query = params.toString()
  return { rest: text.slice(0, at) + (query === '' ? '' : `?${query}`), value }
}

/** A URL without its password, for messages. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password !== '') parsed.password = '***'
    return parsed.toString()
  } catch {
    // Up to the last '@': a password may hold '/', '#' or '?' that a URL parser stops at.
    return url.replace(/^([a-z][a-z0-9+.-]*:\/\/).*@/i, '$1***@')
  }
}
