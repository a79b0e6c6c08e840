/** Stores by URL (BETTER_AUTH_DATABASE, BETTER_AUTH_REDIS). */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { inspect } from 'node:util'
import {
  MemoryStore,
  createBetterAuth,
  createStore,
  createStoreFromEnv,
  openStore,
  storeFromEnv,
} from '../../src'
import { PostgresStore } from '../../src/stores/postgres'
import { RedisEphemeralStore } from '../../src/stores/redis'
import { SqliteStore } from '../../src/stores/sqlite'
import { parseDatabaseUrl } from '../../src/stores/url'
import { hash } from '../helpers'
import { randomHash } from './conformance'
import { POSTGRES_URL, REDIS_URL, dropSchema, uniqueName } from './services'

const dir = mkdtempSync(join(tmpdir(), 'better-auth-url-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('parseDatabaseUrl', () => {
  it('reads memory, sqlite and postgres URLs', () => {
    expect(parseDatabaseUrl('memory:')).toEqual({ kind: 'memory' })
    expect(parseDatabaseUrl('sqlite:./better-auth.db')).toEqual({
      kind: 'sqlite',
      path: './better-auth.db',
    })
    expect(parseDatabaseUrl('sqlite:///var/lib/auth.db')).toEqual({
      kind: 'sqlite',
      path: '/var/lib/auth.db',
    })
    expect(parseDatabaseUrl('sqlite::memory:')).toEqual({ kind: 'sqlite', path: ':memory:' })
    expect(parseDatabaseUrl('postgres://u:p@db:5432/app?schema=auth&sslmode=require')).toEqual({
      kind: 'postgres',
      connectionString: 'postgres://u:p@db:5432/app?sslmode=require',
      schema: 'auth',
    })
  })

  it('refuses other URLs without echoing a password', () => {
    expect(() => parseDatabaseUrl('sqlite:')).toThrow(/names no file/)
    expect(() => parseDatabaseUrl('mysql://root:hunter2@db/app')).toThrow(TypeError)
    try {
      parseDatabaseUrl('mysql://root:hunter2@db/app')
    } catch (error) {
      expect((error as Error).message).not.toContain('hunter2')
    }
  })
})

describe('URLs with passwords a URL parser refuses', () => {
  const SECRET = 'S3cr3tPw'
  const leaks = (error: unknown): boolean =>
    inspect(error, { depth: 5 }).includes(SECRET) ||
    String((error as Error | undefined)?.message).includes(SECRET)

  it.each([
    ['an unsupported scheme, / in the password', { database: `mysql://u:${SECRET}/x@h/db` }],
    ['PostgreSQL, / in the password', { database: `postgres://u:${SECRET}/x@127.0.0.1:1/db` }],
    ['PostgreSQL, # in the password', { database: `postgres://u:${SECRET}#x@127.0.0.1:1/db` }],
    ['Redis, / in the password', { database: 'memory:', redis: `redis://:${SECRET}/x@h:6379/2` }],
    [
      'Redis Cluster, / in the password',
      { database: 'memory:', redis: `redis+cluster://:${SECRET}/x@127.0.0.1:1,127.0.0.1:2` },
    ],
    [
      'Redis Cluster, a bad node',
      { database: 'memory:', redis: `rediss+cluster://:${SECRET}@127.0.0.1:x` },
    ],
  ])('errors never carry the password: %s', async (_label, urls) => {
    let error: unknown
    try {
      await createStore(urls)
    } catch (caught) {
      error = caught
    }
    expect(error).toBeInstanceOf(Error)
    expect(leaks(error)).toBe(false)
  })

  it('keeps the rest of a PostgreSQL URL as pg reads it (its socket form too)', () => {
    expect(parseDatabaseUrl('postgres://u:pw@/db?host=/var/run/postgresql&schema=auth')).toEqual({
      kind: 'postgres',
      connectionString: 'postgres://u:pw@/db?host=%2Fvar%2Frun%2Fpostgresql',
      schema: 'auth',
    })
    expect(parseDatabaseUrl('postgres://u:p%2Fw@db/app')).toEqual({
      kind: 'postgres',
      connectionString: 'postgres://u:p%2Fw@db/app',
    })
  })
})

describe('createStore', () => {
  it('opens memory and SQLite stores', async () => {
    const memory = await createStore({ database: 'memory:' })
    expect(memory).toBeInstanceOf(MemoryStore)
    await memory.close?.()
    const sqlite = await createStoreFromEnv({}, { database: `sqlite:${join(dir, 'a.db')}` })
    expect(sqlite).toBeInstanceOf(SqliteStore)
    expect(sqlite.keys).toBeDefined()
    await sqlite.close?.()
    // The environment wins over the default.
    const fromEnv = await createStoreFromEnv(
      { BETTER_AUTH_DATABASE: 'memory:' },
      { database: `sqlite:${join(dir, 'b.db')}` }
    )
    expect(fromEnv).toBeInstanceOf(MemoryStore)
    await fromEnv.close?.()
  })

  it('opens PostgreSQL (migrated, in the schema of the URL) with Redis beside it', async () => {
    const schema = uniqueName('url')
    const prefix = `${uniqueName('url')}:`
    const store = await createStoreFromEnv({
      BETTER_AUTH_DATABASE: `${POSTGRES_URL}?schema=${schema}`,
      BETTER_AUTH_REDIS: `${REDIS_URL}?prefix=${encodeURIComponent(prefix)}`,
    })
    try {
      expect(store.accounts).toBeDefined()
      expect(store.keys).toBeDefined()
      const nonce = randomHash()
      expect(await store.accessNonces.reserve(nonce, 10_000)).toBe(true)
      const redis = new RedisEphemeralStore({ url: REDIS_URL, prefix })
      expect(await redis.client.exists(redis.keyOf('nonce', nonce))).toBe(1)
      await redis.clear()
      await redis.close()
      const pg = new PostgresStore({ connectionString: POSTGRES_URL, schema, migrate: false })
      expect(await pg.migrate()).toBe(0)
      await pg.close()
    } finally {
      await store.close?.()
      await dropSchema(schema)
    }
  })

  it('hands out its Redis client, so rate limits are shared by instances', async () => {
    const schema = uniqueName('url')
    const store = await createStore({
      database: `${POSTGRES_URL}?schema=${schema}`,
      redis: `${REDIS_URL}?prefix=${encodeURIComponent(`${uniqueName('url')}:`)}`,
    })
    try {
      expect(store.redis).toBeDefined()
      const rateLimit = {
        redis: store.redis,
        keyPrefix: uniqueName('rl'),
        ip: { requestSession: { points: 2, duration: 60 } },
      }
      const one = createBetterAuth({ store, rateLimit, keys: { env: false } })
      const two = createBetterAuth({ store, rateLimit, keys: { env: false } })
      const body = JSON.stringify({
        payload: {
          access: { nonce: `0A${'A'.repeat(22)}` },
          request: { authentication: { identity: hash('nobody') } },
        },
      })
      const ip = { ip: '203.0.113.99' }
      const codes = [
        (await one.handle('requestSession', body, ip)).status,
        (await two.handle('requestSession', body, ip)).status,
        (await two.handle('requestSession', body, ip)).status,
      ]
      // Two unknown-identity refusals (401), then the shared limit (429).
      expect(codes).toEqual([401, 401, 429])
    } finally {
      await store.close?.()
      await dropSchema(schema)
    }
  })

  it('fails at once, naming the service, when PostgreSQL or Redis cannot be reached', async () => {
    await expect(
      createStore({ database: 'postgres://postgres@127.0.0.1:18297/test' })
    ).rejects.toThrow(/cannot migrate PostgreSQL/)
    await expect(
      createStore({ database: 'memory:', redis: 'redis://127.0.0.1:18296' })
    ).rejects.toThrow(/cannot reach Redis/)
    await expect(createStore({ database: 'memory:', redis: 'http://x' })).rejects.toThrow(TypeError)
  })
})

describe('openStore and storeFromEnv (synchronous, for module-level setup)', () => {
  it('returns the store at once; the environment wins over the default', async () => {
    const sqlite = storeFromEnv({}, { database: `sqlite:${join(dir, 'sync.db')}` })
    expect(sqlite).toBeInstanceOf(SqliteStore)
    await sqlite.close?.()
    const memory = storeFromEnv(
      { BETTER_AUTH_DATABASE: ' memory: ', BETTER_AUTH_REDIS: '  ' },
      { database: `sqlite:${join(dir, 'unused.db')}` }
    )
    expect(memory).toBeInstanceOf(MemoryStore)
    expect(memory.redis).toBeUndefined()
    await memory.close?.()
    expect(() => openStore({ database: 'mysql://db/app' })).toThrow(TypeError)
  })

  it('migrates PostgreSQL on first use and reaches Redis once it is connected', async () => {
    const schema = uniqueName('sync')
    const prefix = `${uniqueName('sync')}:`
    const store = openStore({
      database: `${POSTGRES_URL}?schema=${schema}`,
      redis: `${REDIS_URL}?prefix=${encodeURIComponent(prefix)}`,
    })
    try {
      // Nothing was created yet: the schema appears with the first query.
      const probe = new PostgresStore({ connectionString: POSTGRES_URL, migrate: false })
      const exists = async (): Promise<boolean> =>
        (
          await probe.pool.query(
            'SELECT 1 FROM information_schema.schemata WHERE schema_name = $1',
            [schema]
          )
        ).rowCount === 1
      expect(await exists()).toBe(false)
      expect(await store.accounts.hasIdentity(hash('nobody'))).toBe(false)
      expect(await exists()).toBe(true)
      await probe.close()
      const nonce = randomHash()
      expect(await store.accessNonces.reserve(nonce, 10_000)).toBe(true)
      expect(await store.accessNonces.reserve(nonce, 10_000)).toBe(false)
    } finally {
      await store.close?.()
      await dropSchema(schema)
    }
  })
})

describe('PostgreSQL timeouts from the URL', () => {
  it('?connectTimeout= and ?queryTimeout= (or ?timeout= for both) reach the store', async () => {
    const schema = uniqueName('urltimeout')
    const store = openStore({
      database: `${POSTGRES_URL}?connectTimeout=400&queryTimeout=700&schema=${schema}`,
    }) as unknown as PostgresStore
    try {
      expect(store).toBeInstanceOf(PostgresStore)
      expect(store.pool.options).toMatchObject({
        connectionTimeoutMillis: 400,
        statement_timeout: 700,
      })
      expect(await store.accounts.hasIdentity(randomHash())).toBe(false)
    } finally {
      await store.close()
      await dropSchema(schema)
    }
    const both = openStore({ database: `${POSTGRES_URL}?timeout=1200` }) as unknown as PostgresStore
    expect(both.pool.options).toMatchObject({
      connectionTimeoutMillis: 1200,
      statement_timeout: 1200,
    })
    await both.close()
  })
})

describe('bundled apps', () => {
  it('loads every store with a literal require, lazily (bundlers see them)', () => {
    const source = readFileSync(join(__dirname, '..', '..', 'src', 'stores', 'url.ts'), 'utf8')
    const code = source.replace(/^\s*(\/\/|\/?\*).*$/gm, '')
    const calls = [...code.matchAll(/(?<![\w$.])require\s*\(([^)]*)\)/g)].map(m => m[1])
    expect(calls.sort()).toEqual(["'./postgres'", "'./redis'", "'./sqlite'"])
  })

  it('an app bundled with esbuild from the sources opens SQLite and memory stores', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const esbuild = require('esbuild') as typeof import('esbuild')
    const database = join(dir, 'bundled.db')
    const app = `
      import { createStore } from './src'
      async function main() {
        const sqlite = await createStore({ database: ${JSON.stringify(`sqlite:${database}`)} })
        const memory = await createStore({ database: 'memory:' })
        console.log(JSON.stringify([sqlite.constructor.name, memory.constructor.name]))
        await sqlite.close()
        await memory.close()
      }
      main().catch(error => { console.error(error); process.exit(1) })`
    const outfile = join(dir, 'bundle', 'app.cjs')
    const result = esbuild.buildSync({
      stdin: { contents: app, resolveDir: join(__dirname, '..', '..'), loader: 'ts' },
      bundle: true,
      platform: 'node',
      format: 'cjs',
      outfile,
      external: ['better-sqlite3', 'pg', 'ioredis'],
      logLevel: 'silent',
    })
    expect(result.errors).toEqual([])
    expect(result.warnings.filter(w => /require/i.test(w.text))).toEqual([])
    // The store modules are in the bundle; only the drivers are loaded from node_modules.
    const bundle = readFileSync(outfile, 'utf8')
    expect(bundle).not.toMatch(/require\(["']\.\/(sqlite|postgres|redis)["']\)/)
    // Deployed with its drivers installed beside it (here: the project's).
    const out = execFileSync(process.execPath, [outfile], {
      encoding: 'utf8',
      env: { ...process.env, NODE_PATH: join(__dirname, '..', '..', 'node_modules') },
    })
    expect(out.trim()).toBe('["SqliteStore","MemoryStore"]')
    expect(existsSync(database)).toBe(true)
  })
})
