/**
 * Readiness under real faults: a Redis of the test's own frozen with SIGSTOP (then resumed with
 * SIGCONT), and a PostgreSQL that accepts connections and never answers. /readyz answers 503
 * BA602 within its deadline (never hangs) and 200 again when the store is back; /healthz stays
 * 200 throughout.
 */
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net'
import { createServer, type StandaloneServer } from '../../adapters/node'
import { createBetterAuth } from '../../src'
import { combineStores } from '../../src/stores/combine'
import { MemoryStore } from '../../src/stores/memory'
import { PostgresStore } from '../../src/stores/postgres'
import { RedisEphemeralStore } from '../../src/stores/redis'
import { freePort, startRedis, type RedisProcess } from '../stores/redis-processes'

const DEADLINE_MS = 1000
const quiet = {
  error: () => undefined,
  warn: () => undefined,
  info: () => undefined,
  debug: () => undefined,
}

interface Probe {
  status: number
  ms: number
  body: { status?: string; error?: { code: string }; checks?: Record<string, string> }
}

async function probe(url: string): Promise<Probe> {
  const started = Date.now()
  // The client's own limit is far above the deadline: a hanging probe fails the timing check.
  const reply = await fetch(url, { signal: AbortSignal.timeout(10_000) })
  const body = (await reply.json()) as Probe['body']
  return { status: reply.status, ms: Date.now() - started, body }
}

async function eventually(check: () => Promise<void>, ms = 10_000): Promise<void> {
  const until = Date.now() + ms
  for (;;) {
    try {
      await check()
      return
    } catch (error) {
      if (Date.now() > until) throw error
      await new Promise(resolve => setTimeout(resolve, 100))
    }
  }
}

describe('Redis frozen (SIGSTOP) and resumed (SIGCONT)', () => {
  let redis: RedisProcess
  let server: StandaloneServer
  let url: string

  beforeAll(async () => {
    redis = await startRedis(await freePort())
    const store = combineStores(
      new MemoryStore({ sweepIntervalMs: 0 }),
      new RedisEphemeralStore({ url: redis.url, prefix: 'health:' })
    )
    const auth = createBetterAuth({ store, keys: { env: false }, logger: quiet, rateLimit: false })
    server = createServer(auth, { health: { timeoutMs: DEADLINE_MS } })
    const { port } = await server.listen(0)
    url = `http://127.0.0.1:${port}`
  })

  afterAll(async () => {
    if (redis.child.exitCode === null) redis.child.kill('SIGCONT')
    await server.close({ deadlineMs: 0 })
    await server.auth.close()
    await redis.stop()
  })

  it('/readyz goes 503 within the deadline, then 200 again; /healthz stays 200', async () => {
    const before = await probe(`${url}/readyz`)
    expect([before.status, before.body.status]).toEqual([200, 'ready'])

    redis.child.kill('SIGSTOP')
    try {
      for (let i = 0; i < 3; i++) {
        const down = await probe(`${url}/readyz`)
        expect(down.status).toBe(503)
        expect(down.body.error?.code).toBe('BA602')
        expect(down.body.checks).toEqual({ accounts: 'ok', challenges: 'timeout', keys: 'ok' })
        expect(down.ms).toBeLessThan(DEADLINE_MS + 750)
        const live = await probe(`${url}/healthz`)
        expect([live.status, live.body.status]).toEqual([200, 'ok'])
        expect(live.ms).toBeLessThan(500)
      }
    } finally {
      redis.child.kill('SIGCONT')
    }

    await eventually(async () => {
      const back = await probe(`${url}/readyz`)
      expect([back.status, back.body.checks]).toEqual([
        200,
        { accounts: 'ok', challenges: 'ok', keys: 'ok' },
      ])
    })
    expect((await probe(`${url}/healthz`)).status).toBe(200)
  })
})

describe('PostgreSQL frozen (accepts connections, never answers)', () => {
  let frozen: TcpServer
  const sockets = new Set<Socket>()
  let server: StandaloneServer
  let url: string

  beforeAll(async () => {
    frozen = createTcpServer(socket => {
      sockets.add(socket)
      socket.on('error', () => undefined)
      socket.on('close', () => sockets.delete(socket))
    })
    await new Promise<void>(resolve => frozen.listen(0, '127.0.0.1', resolve))
    const address = frozen.address() as { port: number }
    const store = new PostgresStore({
      connectionString: `postgres://postgres@127.0.0.1:${address.port}/test`,
      connectTimeoutMs: 30_000,
    })
    const auth = createBetterAuth({ store, keys: { env: false }, logger: quiet, rateLimit: false })
    server = createServer(auth, { health: { timeoutMs: DEADLINE_MS } })
    const { port } = await server.listen(0)
    url = `http://127.0.0.1:${port}`
  })

  afterAll(async () => {
    await server.close({ deadlineMs: 0 })
    // Unfreeze by cutting: the pool's pending connections fail and it can end.
    for (const socket of sockets) socket.destroy()
    frozen.close()
    await server.auth.close().catch(() => undefined)
  })

  it('/readyz is 503 BA602 within the deadline; /healthz stays 200', async () => {
    for (let i = 0; i < 2; i++) {
      const down = await probe(`${url}/readyz`)
      expect(down.status).toBe(503)
      expect(down.body.error?.code).toBe('BA602')
      expect(down.body.checks?.accounts).toBe('timeout')
      expect(down.ms).toBeLessThan(DEADLINE_MS + 750)
      expect((await probe(`${url}/healthz`)).status).toBe(200)
    }
    // The protocol fails too, but the probe never waited on it.
    expect(sockets.size).toBeGreaterThan(0)
  })
})
