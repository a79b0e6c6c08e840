/**
 * Two instances on one durable store (SQLite: two connections to one file; PostgreSQL: two
 * pools on one schema), each with its own revocation cache: an action taken through one
 * instance's admin endpoint is refused on the other at once at refresh, and at access (routes
 * with `checkRevocation`) within `revocationCacheMs` of that instance's last read — never later.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BetterAuthError, createBetterAuth, type BetterAuthServer, type ServerStore } from '../src'
import { createServer } from '../adapters/node'
import { SqliteStore } from '../src/stores/sqlite'
import { PostgresStore } from '../src/stores/postgres'
import {
  ATTRIBUTES,
  Clock,
  accessBody,
  createdAccount,
  openSession,
  outcomeOf,
  type Attributes,
  type Session,
  type TestServer,
} from './helpers'
import { refreshBody } from './scenario'
import { POSTGRES_URL, dropSchema, uniqueName } from './stores/services'

const BOUND_MS = 2000
const silent = { error: () => {}, warn: () => {}, info: () => {}, debug: () => {} }

/** One instance: a core on its own connection to the shared store, as the helpers use it. */
function instance(
  store: ServerStore,
  clock: Clock,
  keys?: Awaited<ReturnType<BetterAuthServer['keys']>>
): TestServer {
  const auth = createBetterAuth<Attributes>({
    store,
    now: clock.now,
    attributes: () => ATTRIBUTES,
    keys: keys ?? { env: false },
    logger: silent,
    rateLimit: false,
    revocationCacheMs: BOUND_MS,
  })
  return {
    auth,
    store: undefined as never,
    clock,
    call: (operation, body) => auth.handle(operation, body),
    access: () => Promise.reject(new Error('not used')),
    snapshot: () => '',
  }
}

/** An access check with `checkRevocation` on `server`: the status and code. */
async function revocable(server: TestServer, session: Session) {
  try {
    await server.auth.verifyAccess(
      accessBody(session.token, session.key, { at: server.clock.ms }),
      {},
      { checkRevocation: true }
    )
    return { status: 200 }
  } catch (error) {
    if (!(error instanceof BetterAuthError)) throw error
    return { status: error.status, code: error.code }
  }
}

/** A refresh of `session` on `server`: the status and code. */
async function refresh(server: TestServer, session: Session) {
  return outcomeOf(await server.call('refreshSession', refreshBody(session)))
}

const dir = mkdtempSync(join(tmpdir(), 'better-auth-admin-instances-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const backends: [
  string,
  () => Promise<{ open: (clock: Clock) => ServerStore; done(): Promise<void> }>,
][] = [
  [
    'SQLite (two connections to one file)',
    async () => {
      const path = join(dir, `${uniqueName('two')}.db`)
      return {
        open: clock => new SqliteStore({ path, now: clock.now, sweepIntervalMs: 0 }),
        done: async () => undefined,
      }
    },
  ],
  [
    'PostgreSQL (two pools on one schema)',
    async () => {
      const schema = uniqueName('admintwo')
      return {
        open: clock =>
          new PostgresStore({
            connectionString: POSTGRES_URL,
            schema,
            now: clock.now,
            sweepIntervalMs: 0,
          }),
        done: () => dropSchema(schema),
      }
    },
  ],
]

describe.each(backends)('two instances on %s', (_name, backend) => {
  it('sessions ended through one instance’s admin endpoint are refused on the other within the bound', async () => {
    const { open, done } = await backend()
    const clock = new Clock()
    const one = instance(open(clock), clock)
    const two = instance(open(clock), clock, await one.auth.keys())
    const http = createServer(one.auth, { admin: { authorize: () => 'ops:alice' } })
    const { port } = await http.listen(0)
    try {
      const account = await createdAccount(one)
      const session = await openSession(one, account.first)
      const spare = await openSession(two, account.first)
      // The other instance reads the session state now, and may keep it for BOUND_MS.
      expect(await revocable(two, session)).toEqual({ status: 200 })
      clock.advance(0.5)

      const reply = await fetch(
        `http://127.0.0.1:${port}/admin/identities/${account.identity}/sessions/end`,
        { method: 'POST' }
      )
      expect(reply.status).toBe(200)
      expect(await reply.json()).toMatchObject({ actor: 'ops:alice', at: clock.ms })

      // The acting instance refuses at once; the other refreshes from the store: at once too.
      expect(await revocable(one, session)).toEqual({ status: 401, code: 'BA401' })
      expect(await refresh(two, spare)).toEqual({ status: 401, code: 'BA401' })
      // At access the other may accept until BOUND_MS after its read, never after.
      expect(await revocable(two, session)).toEqual({ status: 200 })
      clock.advance((BOUND_MS - 500 - 1) / 1000)
      expect(await revocable(two, session)).toEqual({ status: 200 })
      clock.advance(0.001)
      expect(await revocable(two, session)).toEqual({ status: 401, code: 'BA401' })
    } finally {
      await http.close()
      await one.auth.close()
      await two.auth.close()
      await done()
    }
  })

  it('a suspension through the other instance: refused at once at refresh, within the bound at access', async () => {
    const { open, done } = await backend()
    const clock = new Clock()
    const one = instance(open(clock), clock)
    const two = instance(open(clock), clock, await one.auth.keys())
    try {
      const account = await createdAccount(one)
      const session = await openSession(one, account.first)
      const spare = await openSession(one, account.first)
      expect(await revocable(one, session)).toEqual({ status: 200 })
      clock.advance(1)
      await two.auth.admin.suspend(account.identity, { actor: 'ops:bob', reason: 'abuse' })
      expect(await refresh(one, spare)).toEqual({ status: 403, code: 'BA307' })
      expect(await revocable(one, session)).toEqual({ status: 200 }) // read 1 s ago
      clock.advance((BOUND_MS - 1000) / 1000)
      expect(await revocable(one, session)).toEqual({ status: 403, code: 'BA307' })
    } finally {
      await one.auth.close()
      await two.auth.close()
      await done()
    }
  })
})
