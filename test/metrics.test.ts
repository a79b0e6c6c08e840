/** Metrics: counts against a mixed workload, bounded labels, a failing recorder, /metrics. */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Registry } from 'prom-client'
import { createServer, metricsHandler, type StandaloneServer } from '../adapters/node'
import {
  ERROR_CODES,
  createMetrics,
  type AuditEvent,
  type BetterAuthMetrics,
  type MetricsRecorder,
} from '../src'
import { OPERATIONS } from '../src/server/operations'
import {
  accessBody,
  createdAccount,
  makeServer,
  openSession,
  TestAccount,
  type TestServer,
} from './helpers'

/** `name{labels} value` lines of the Prometheus text format, as [series, value]. */
function parse(text: string): Map<string, number> {
  const series = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const cut = line.lastIndexOf(' ')
    series.set(line.slice(0, cut), Number(line.slice(cut + 1)))
  }
  return series
}

/** The labels of every series, by label name. */
function labelValues(text: string): Map<string, Set<string>> {
  const labels = new Map<string, Set<string>>()
  for (const m of text.matchAll(/([a-z_]+)="([^"]*)"/g)) {
    const [, name, value] = m as unknown as [string, string, string]
    if (!labels.has(name)) labels.set(name, new Set())
    labels.get(name)?.add(value)
  }
  return labels
}

const ROUTE = { route: '/orders/:id' }
const LIMITED = {
  route: '/limited',
  rateLimit: { ip: { points: 2, duration: 60 }, name: 'limited' },
}

/** A workload whose every outcome is known; returns the secrets and ids it used. */
async function workload(server: TestServer): Promise<{ secrets: string[] }> {
  const { auth, clock } = server
  const accounts: TestAccount[] = []
  for (let i = 0; i < 3; i++) accounts.push(await createdAccount(server)) // 3 createAccount ok
  await server.call('createAccount', (accounts[0] as TestAccount).createAccountBody()) // BA305
  const sessions = []
  for (const a of accounts.slice(0, 2)) sessions.push(await openSession(server, a.first)) // 2+2 ok
  const [s1, s2] = sessions as [(typeof sessions)[0], (typeof sessions)[0]]
  const at = clock.now()
  // 4 granted on /orders/:id (paths /orders/1 … /orders/4), one replayed (BA304), one anonymous.
  for (let i = 1; i <= 4; i++) {
    const body = accessBody((i % 2 ? s1 : s2).token, (i % 2 ? s1 : s2).key, { at })
    await auth.verifyAccess(body, { path: `/orders/${i}` }, ROUTE)
    if (i === 4) {
      await expect(auth.verifyAccess(body, { path: '/orders/4' }, ROUTE)).rejects.toMatchObject({
        code: 'BA304',
      })
    }
  }
  await expect(auth.verifyAccess('{"payload":{}}', { path: '/orders/9' }, ROUTE)).rejects.toThrow()
  // A route limited to 2 a minute: the third is refused (BA601).
  for (let i = 0; i < 3; i++) {
    await auth
      .verifyAccess(accessBody(s1.token, s1.key, { at }), { ip: '198.51.100.7' }, LIMITED)
      .catch(() => undefined)
  }
  // A store that fails once: 503 BA602 on createAccount.
  const accountsStore = server.store.accounts as unknown as Record<string, unknown>
  const original = accountsStore.createAccount
  accountsStore.createAccount = () => Promise.reject(new Error('connection lost'))
  const failed = await server.call('createAccount', new TestAccount().createAccountBody())
  expect(failed.status).toBe(503)
  accountsStore.createAccount = original
  const secrets = [
    ...accounts.map(a => a.identity),
    ...sessions.flatMap(s => [s.token, s.key.publicKeyText]),
    '/orders/1',
    '/orders/9',
    '198.51.100.7',
  ]
  return { secrets }
}

describe('metrics', () => {
  let metrics: BetterAuthMetrics
  let server: TestServer

  beforeEach(() => {
    metrics = createMetrics()
    server = makeServer({ metrics })
  })

  it('count a mixed workload exactly, by operation, code and route', async () => {
    await workload(server)
    const text = await metrics.render()
    const s = parse(text)
    const count = (series: string) => s.get(series) ?? 0
    expect(count('better_auth_requests_total{operation="createAccount",code="ok"}')).toBe(3)
    expect(count('better_auth_requests_total{operation="createAccount",code="BA305"}')).toBe(1)
    expect(count('better_auth_requests_total{operation="createAccount",code="BA602"}')).toBe(1)
    expect(count('better_auth_requests_total{operation="requestSession",code="ok"}')).toBe(2)
    expect(count('better_auth_requests_total{operation="createSession",code="ok"}')).toBe(2)
    expect(count('better_auth_access_checks_total{code="ok",route="/orders/:id"}')).toBe(4)
    expect(count('better_auth_access_checks_total{code="BA304",route="/orders/:id"}')).toBe(1)
    expect(count('better_auth_access_checks_total{code="BA404",route="/orders/:id"}')).toBe(1)
    expect(count('better_auth_access_checks_total{code="ok",route="/limited"}')).toBe(2)
    expect(count('better_auth_access_checks_total{code="BA601",route="/limited"}')).toBe(1)
    expect(count('better_auth_rate_limited_total{operation="access"}')).toBe(1)
    expect(count('better_auth_store_errors_total{store="accounts"}')).toBe(1)
    expect(count('better_auth_operation_duration_seconds_count{operation="createAccount"}')).toBe(5)
    expect(count('better_auth_access_check_duration_seconds_count')).toBe(9)
    // 7 access requests reached the token (not the anonymous one, nor the one refused by the
    // route's IP limit, checked first): each session's token misses once, at its first use.
    const hits = count('better_auth_token_cache_requests_total{result="hit"}')
    const misses = count('better_auth_token_cache_requests_total{result="miss"}')
    expect(hits + misses).toBe(7)
    expect(misses).toBe(2)
    expect(count('better_auth_key_cache_requests_total{result="hit"}')).toBe(7)
  })

  it('have bounded labels: no identity, no path with ids, no token, no IP', async () => {
    const { secrets } = await workload(server)
    // An unknown operation from JavaScript is `unknown`, not its name.
    await server.auth.handle('no-such-operation' as never, '{}')
    // Routes beyond the cap are `other`.
    for (let i = 0; i < 250; i++) {
      await server.auth.verifyAccess('{}', {}, { route: `/r${i}` }).catch(() => undefined)
    }
    const text = await metrics.render()
    for (const secret of secrets) expect(text).not.toContain(secret)
    const labels = labelValues(text)
    const codes = new Set(['ok', ...Object.keys(ERROR_CODES)])
    for (const code of labels.get('code') ?? []) expect(codes).toContain(code)
    const operations = new Set<string>([...OPERATIONS, 'unknown', 'access'])
    for (const op of labels.get('operation') ?? []) expect(operations).toContain(op)
    expect(labels.get('operation')).toContain('unknown')
    expect([...(labels.get('store') ?? [])]).toEqual(['accounts'])
    expect([...(labels.get('result') ?? [])].sort()).toEqual(['hit', 'miss'])
    const routes = labels.get('route') ?? new Set()
    expect(routes).toContain('other')
    expect(routes.size).toBeLessThanOrEqual(201)
    for (const route of routes) expect(route).not.toMatch(/\/orders\/\d/)
  })

  it('never fail a request: a throwing recorder is logged once', async () => {
    const errors: unknown[] = []
    const throwing: MetricsRecorder = {
      operation: () => {
        throw new Error('registry broken')
      },
      access: () => {
        throw new Error('registry broken')
      },
      rateLimited: () => undefined,
      storeError: () => undefined,
      tokenCache: () => {
        throw new Error('registry broken')
      },
      keyCache: () => undefined,
    }
    const broken = makeServer({
      metrics: throwing,
      logger: {
        error: (object: object) => errors.push(object),
        warn: () => undefined,
        info: () => undefined,
        debug: () => undefined,
      },
    })
    const a = await createdAccount(broken)
    const session = await openSession(broken, a.first)
    const reply = await broken.access(
      accessBody(session.token, session.key, { at: broken.clock.now() })
    )
    expect(reply.status).toBe(200)
    expect(errors).toHaveLength(1)
  })

  it('share an application registry, under a prefix', async () => {
    const registry = new Registry()
    const own = createMetrics({ registry, prefix: 'auth_' })
    const shared = makeServer({ metrics: own })
    await createdAccount(shared)
    expect(await registry.metrics()).toContain(
      'auth_requests_total{operation="createAccount",code="ok"} 1'
    )
    expect(() => createMetrics({ prefix: 'bad-prefix' })).toThrow(TypeError)
  })
})

describe('access.granted', () => {
  it('is off by default, and an opt-in event without secrets', async () => {
    const events: AuditEvent[] = []
    const quiet = makeServer({ onEvent: e => events.push(e) })
    const a = await createdAccount(quiet)
    const s = await openSession(quiet, a.first)
    await quiet.auth.verifyAccess(accessBody(s.token, s.key, { at: quiet.clock.now() }))
    expect(events.map(e => e.type)).not.toContain('access.granted')

    const loud = makeServer({ onEvent: e => events.push(e), auditAccessGranted: true })
    const b = await createdAccount(loud)
    const t = await openSession(loud, b.first)
    const body = accessBody(t.token, t.key, { at: loud.clock.now() })
    await loud.auth.verifyAccess(body, { path: '/orders/1', ip: '203.0.113.9' })
    const granted = events.filter(e => e.type === 'access.granted')
    expect(granted).toEqual([
      {
        type: 'access.granted',
        time: expect.any(String),
        route: '/orders/1',
        identity: b.identity,
        device: b.first.device,
        ip: '203.0.113.9',
      },
    ])
    const serialized = JSON.stringify(granted)
    const { access } = (JSON.parse(body) as { payload: { access: { nonce: string } } }).payload
    for (const secret of [t.token, t.key.publicKeyText, access.nonce]) {
      expect(serialized).not.toContain(secret)
    }
    expect(serialized).not.toMatch(/"(0I|0A|1AAI)[A-Za-z0-9_-]{20,}/)
  })
})

describe('/metrics', () => {
  let standalone: StandaloneServer | undefined
  afterEach(async () => {
    await standalone?.close({ deadlineMs: 100 })
    standalone = undefined
  })

  const routeOf = (server: TestServer, endpoint: string): string =>
    server.auth.routes().find(r => r.endpoint === endpoint)?.path ?? ''

  it('is served by the standalone server and counts what was sent over HTTP', async () => {
    const metrics = createMetrics()
    const server = makeServer({ metrics })
    standalone = createServer(server.auth, { metrics: true, health: false })
    standalone.protect('/orders/:id', () => ({ ok: true }))
    const { port } = await standalone.listen(0)
    const base = `http://127.0.0.1:${port}`
    const post = (path: string, body: string) => fetch(base + path, { method: 'POST', body })
    for (let i = 0; i < 2; i++) {
      const r = await post(routeOf(server, 'createAccount'), new TestAccount().createAccountBody())
      expect(r.status).toBe(200)
    }
    const a = await createdAccount(server)
    const s = await openSession(server, a.first)
    const at = server.clock.now()
    for (let i = 0; i < 3; i++) {
      expect((await post(`/orders/${i}`, accessBody(s.token, s.key, { at }))).status).toBe(200)
    }
    expect((await post('/orders/7', '{"payload":{}}')).status).toBe(401)
    const scraped = await fetch(`${base}/metrics`)
    expect(scraped.status).toBe(200)
    expect(scraped.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
    const s2 = parse(await scraped.text())
    expect(s2.get('better_auth_requests_total{operation="createAccount",code="ok"}')).toBe(3)
    expect(s2.get('better_auth_access_checks_total{code="ok",route="/orders/:id"}')).toBe(3)
    expect(s2.get('better_auth_access_checks_total{code="BA404",route="/orders/:id"}')).toBe(1)
    expect((await fetch(`${base}/metrics`, { method: 'POST' })).status).toBe(405)
  })

  it('can have a listener of its own, and builds the metrics for a core made from options', async () => {
    standalone = createServer({ keys: { env: false } }, { metrics: { port: 0 }, health: false })
    const { port } = await standalone.listen(0)
    expect((await fetch(`http://127.0.0.1:${port}/metrics`)).status).toBe(404)
    const address = standalone.metricsListener?.server.address()
    const metricsPort = typeof address === 'object' && address !== null ? address.port : 0
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()
    expect(text).toContain('# TYPE better_auth_requests_total counter')
    await standalone.close({ deadlineMs: 100 })
    expect(standalone.metricsListener?.server.listening).toBe(false)
    standalone = undefined
  })

  it('metricsHandler mounts on any node:http stack, and needs metrics', async () => {
    const metrics = createMetrics()
    const server = makeServer({ metrics })
    await createdAccount(server)
    const handler = metricsHandler(server.auth)
    const answer = (url: string, method = 'GET') =>
      new Promise<{ status: number; body: string; next: boolean }>(resolve => {
        const res = {
          headersSent: false,
          destroyed: false,
          setHeader: () => undefined,
          writeHead(status: number) {
            this.status = status
          },
          status: 0,
          end(body: string) {
            resolve({ status: this.status, body, next: false })
          },
        }
        handler({ url, method } as IncomingMessage, res as unknown as ServerResponse, () =>
          resolve({ status: 0, body: '', next: true })
        )
      })
    const ok = await answer('/metrics?x=1')
    expect(ok.status).toBe(200)
    expect(ok.body).toContain('better_auth_requests_total{operation="createAccount",code="ok"} 1')
    expect((await answer('/other')).next).toBe(true)
    expect((await answer('/metrics', 'DELETE')).status).toBe(405)
    expect(() => metricsHandler(makeServer().auth)).toThrow(/createMetrics/)
    expect(metricsHandler(metrics)).toBeInstanceOf(Function)
  })
})
