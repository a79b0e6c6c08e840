/**
 * PostgreSQL that is reachable but does not answer (frozen, partitioned) or is slow behind a lock:
 * every store call ends within its timeouts, and a transaction that timed out wrote nothing.
 */
import { createServer, connect, type Server, type Socket } from 'node:net'
import { Pool } from 'pg'
import { PostgresStore } from '../../src/stores/postgres'
import { parseDatabaseUrl } from '../../src/stores/url'
import { randomAccount, randomHash, randomKey } from './conformance'
import { POSTGRES_URL, dropSchema, uniqueName } from './services'

const TIMEOUT_MS = 500
/** Generous: the calls must end within their timeouts, not at this exact bound. */
const BOUND_MS = 3 * TIMEOUT_MS + 500

const account = randomAccount

/** Resolves to [elapsed ms, the rejection]; fails the test if `work` resolves. */
async function rejection(work: () => Promise<unknown>): Promise<[number, unknown]> {
  const started = Date.now()
  try {
    await work()
  } catch (error) {
    return [Date.now() - started, error]
  }
  throw new Error('the call resolved')
}

/** A TCP server whose sockets are kept, so the test can cut them. */
async function listen(onSocket: (socket: Socket) => void): Promise<{
  server: Server
  port: number
  sockets: Set<Socket>
  close(): Promise<void>
}> {
  const sockets = new Set<Socket>()
  const server = createServer(socket => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => undefined)
    onSocket(socket)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  return {
    server,
    port,
    sockets,
    close: async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>(resolve => server.close(() => resolve()))
    },
  }
}

describe('PostgreSQL that accepts connections and never answers', () => {
  let frozen: Awaited<ReturnType<typeof listen>>
  beforeAll(async () => {
    frozen = await listen(() => undefined) // accepts, reads nothing, answers nothing
  })
  afterAll(async () => frozen.close())

  it('a store call rejects within the connect timeout', async () => {
    const store = new PostgresStore({
      connectionString: `postgres://postgres@127.0.0.1:${frozen.port}/test`,
      connectTimeoutMs: TIMEOUT_MS,
      queryTimeoutMs: TIMEOUT_MS,
      sweepIntervalMs: 0,
    })
    try {
      for (const call of [
        () => store.accounts.hasIdentity(randomHash()),
        () => store.accounts.createAccount(account()),
        () => store.challenges.peek('0A'),
        () => store.keys.listKeys('access', Date.now()),
      ]) {
        const [elapsed, error] = await rejection(call)
        expect(error).toBeInstanceOf(Error)
        expect(elapsed).toBeLessThan(BOUND_MS)
      }
    } finally {
      await store.close()
    }
  })

  it('also with a pool the application gave, whose own settings do not bound the wait', async () => {
    // No connectionTimeoutMillis: pg would wait for ever.
    const pool = new Pool({
      connectionString: `postgres://postgres@127.0.0.1:${frozen.port}/test`,
      max: 2,
    })
    pool.on('error', () => undefined)
    const store = new PostgresStore({ pool, connectTimeoutMs: TIMEOUT_MS, sweepIntervalMs: 0 })
    try {
      const [elapsed, error] = await rejection(() => store.accounts.hasIdentity(randomHash()))
      expect(String(error)).toMatch(/timeout/)
      expect(elapsed).toBeLessThan(BOUND_MS)
    } finally {
      await store.close()
      // Cut the connections pg still waits on, so its pool can end.
      for (const socket of frozen.sockets) socket.destroy()
      await pool.end()
    }
  })

  it('takes its timeouts from the URL (?timeout=, ?connectTimeout=, ?queryTimeout=)', () => {
    expect(parseDatabaseUrl('postgres://u@db/app?timeout=1500&sslmode=require')).toEqual({
      kind: 'postgres',
      connectionString: 'postgres://u@db/app?sslmode=require',
      connectTimeoutMs: 1500,
      queryTimeoutMs: 1500,
    })
    expect(
      parseDatabaseUrl('postgres://u@db/app?timeout=1500&queryTimeout=9000&schema=auth')
    ).toEqual({
      kind: 'postgres',
      connectionString: 'postgres://u@db/app',
      schema: 'auth',
      connectTimeoutMs: 1500,
      queryTimeoutMs: 9000,
    })
    expect(parseDatabaseUrl('postgres://u@db/app?connectTimeout=200')).toEqual({
      kind: 'postgres',
      connectionString: 'postgres://u@db/app',
      connectTimeoutMs: 200,
    })
    expect(() => parseDatabaseUrl('postgres://u@db/app?timeout=soon')).toThrow(TypeError)
    expect(() => parseDatabaseUrl('postgres://u@db/app?queryTimeout=0')).toThrow(TypeError)
  })
})

/** A TCP proxy to the real PostgreSQL that can stop forwarding (a partition) and resume. */
async function partitionableProxy() {
  const upstream = new URL(POSTGRES_URL)
  let partitioned = false
  const proxy = await listen(client => {
    const server = connect(Number(upstream.port || 5432), upstream.hostname)
    server.on('error', () => client.destroy())
    client.on('close', () => server.destroy())
    server.on('close', () => client.destroy())
    // While partitioned, bytes are lost: the connections used meanwhile are never answered.
    client.on('data', data => {
      if (!partitioned) server.write(data)
    })
    server.on('data', data => {
      if (!partitioned) client.write(data)
    })
  })
  const url = new URL(POSTGRES_URL)
  url.hostname = '127.0.0.1'
  url.port = String(proxy.port)
  return {
    url: url.toString(),
    partition: (on: boolean) => (partitioned = on),
    close: () => proxy.close(),
  }
}

describe('PostgreSQL partitioned away after the connection was made', () => {
  const schema = uniqueName('pgfrozen')
  afterAll(async () => dropSchema(schema))

  it('a query and a transaction reject within the query timeout; nothing is half-written', async () => {
    const proxy = await partitionableProxy()
    const errors: unknown[] = []
    const store = new PostgresStore({
      connectionString: proxy.url,
      schema,
      connectTimeoutMs: TIMEOUT_MS,
      queryTimeoutMs: TIMEOUT_MS,
      sweepIntervalMs: 0,
      onError: error => errors.push(error),
    })
    try {
      const a = account()
      expect(await store.accounts.createAccount(a)).toBe(true)
      proxy.partition(true)
      const [queryElapsed] = await rejection(() => store.accounts.hasIdentity(a.identity))
      expect(queryElapsed).toBeLessThan(BOUND_MS)
      const next = { publicKey: randomKey(), rotationHash: randomHash() }
      const [txElapsed] = await rejection(() =>
        store.accounts.rotate(a.identity, a.device, a.rotationHash, next, {
          kind: 'changeRecoveryHash',
          recoveryHash: randomHash(),
        })
      )
      expect(txElapsed).toBeLessThan(BOUND_MS)
      // Back: the pool connects anew (the connections that hung were discarded), and the
      // rotation that timed out left nothing behind.
      proxy.partition(false)
      expect(await store.accounts.getDeviceKey(a.identity, a.device)).toEqual({
        publicKey: a.publicKey,
        rotationHash: a.rotationHash,
      })
      expect(await store.accounts.getRecoveryHash(a.identity)).toBe(a.recoveryHash)
    } finally {
      proxy.partition(false)
      await store.close()
      await proxy.close()
    }
  })
})

describe('a statement blocked by a lock another connection holds', () => {
  const schema = uniqueName('pglock')
  const pool = new Pool({ connectionString: POSTGRES_URL, max: 2 })
  let store: PostgresStore
  beforeAll(async () => {
    store = new PostgresStore({
      connectionString: POSTGRES_URL,
      schema,
      queryTimeoutMs: TIMEOUT_MS,
      sweepIntervalMs: 0,
    })
    await store.migrate()
  })
  afterAll(async () => {
    await store.close()
    await pool.end()
    await dropSchema(schema)
  })

  /** Runs `work` while another connection holds `table` in ACCESS EXCLUSIVE mode. */
  async function whileLocked<T>(table: string, work: () => Promise<T>): Promise<T> {
    const locker = await pool.connect()
    try {
      await locker.query('BEGIN')
      await locker.query(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`)
      return await work()
    } finally {
      await locker.query('ROLLBACK')
      locker.release()
    }
  }

  it('a deletion whose tombstone write waits on the lock is rolled back as a whole', async () => {
    const a = account()
    expect(await store.accounts.createAccount(a)).toBe(true)
    const next = { publicKey: randomKey(), rotationHash: randomHash() }
    // The device update and the identity's deletion run; the tombstone insert then waits.
    const [elapsed, error] = await whileLocked(store.tables.deletedIdentities, () =>
      rejection(() =>
        store.accounts.rotate(a.identity, a.device, a.rotationHash, next, {
          kind: 'deleteIdentity',
        })
      )
    )
    expect(elapsed).toBeLessThan(BOUND_MS)
    expect((error as { code?: string }).code).toBe('57014') // canceled by statement_timeout
    // Nothing of it happened: the account and its key are as before.
    expect(await store.accounts.hasIdentity(a.identity)).toBe(true)
    expect(await store.accounts.getDeviceKey(a.identity, a.device)).toEqual({
      publicKey: a.publicKey,
      rotationHash: a.rotationHash,
    })
    // And the same deletion goes through once the lock is gone.
    expect(
      await store.accounts.rotate(a.identity, a.device, a.rotationHash, next, {
        kind: 'deleteIdentity',
      })
    ).toBe('ok')
    expect(await store.accounts.createAccount(a)).toBe(false)
  })

  it('an account creation that waits on the lock rejects and creates nothing', async () => {
    const a = account()
    const [elapsed] = await whileLocked(store.tables.devices, () =>
      rejection(() => store.accounts.createAccount(a))
    )
    expect(elapsed).toBeLessThan(BOUND_MS)
    expect(await store.accounts.hasIdentity(a.identity)).toBe(false)
    expect(await store.accounts.createAccount(a)).toBe(true)
  })

  it('a single statement that waits on the lock rejects', async () => {
    const [elapsed] = await whileLocked(store.tables.timeLocks, () =>
      rejection(() => store.accessNonces.reserve(randomHash(), 60_000))
    )
    expect(elapsed).toBeLessThan(BOUND_MS)
  })
})
