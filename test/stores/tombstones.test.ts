/**
 * A deleted account stays deleted: the original createAccount message, replayed after
 * deleteAccount, is refused with 409 BA305 by the server on every store, also after a restart,
 * and whoever holds the first device key cannot log in again.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NodeSigningKey, type ServerStore } from '../../src'
import { MemoryStore } from '../../src/stores/memory'
import { PostgresStore } from '../../src/stores/postgres'
import { SqliteStore } from '../../src/stores/sqlite'
import {
  TestAccount,
  createSessionBody,
  errorOf,
  makeServer,
  sessionRequest,
  type TestServer,
} from '../helpers'
import { rotateBody } from '../scenario'
import { POSTGRES_URL, dropSchema, uniqueName } from './services'

const dir = mkdtempSync(join(tmpdir(), 'better-auth-tombstones-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

interface Backend {
  name: string
  /** Opens the store; `restart` opens the same data anew (a new process). */
  open(): { store: ServerStore; restart(): ServerStore; cleanup(): Promise<void> }
}

const backends: Backend[] = [
  {
    name: 'memory',
    open: () => {
      const store = new MemoryStore({ sweepIntervalMs: 0 })
      return { store, restart: () => store, cleanup: async () => undefined }
    },
  },
  {
    name: 'SQLite',
    open: () => {
      const path = join(dir, `${uniqueName('tomb')}.db`)
      const opened: SqliteStore[] = []
      const open = (): SqliteStore => {
        const s = new SqliteStore({ path, sweepIntervalMs: 0 })
        opened.push(s)
        return s
      }
      return {
        store: open(),
        restart: open,
        cleanup: async () => {
          for (const s of opened) await s.close()
        },
      }
    },
  },
  {
    name: 'PostgreSQL',
    open: () => {
      const schema = uniqueName('tomb')
      const opened: PostgresStore[] = []
      const open = (): PostgresStore => {
        const s = new PostgresStore({ connectionString: POSTGRES_URL, schema, sweepIntervalMs: 0 })
        opened.push(s)
        return s
      }
      return {
        store: open(),
        restart: open,
        cleanup: async () => {
          for (const s of opened) await s.close()
          await dropSchema(schema)
        },
      }
    },
  },
]

/** A server on `store`; keys not persisted, so each server is independent of the key table. */
const serverOn = (store: ServerStore): TestServer =>
  makeServer({ store, keys: { env: false, store: false } })

describe.each(backends)('replaying createAccount after deleteAccount ($name)', backend => {
  it('is refused with 409 BA305, also after a restart; no account exists afterwards', async () => {
    const { store, restart, cleanup } = backend.open()
    try {
      const server = serverOn(store)
      const account = new TestAccount()
      const creation = account.createAccountBody()
      expect((await server.call('createAccount', creation)).status).toBe(200)
      expect((await server.call('deleteAccount', rotateBody(account.first))).status).toBe(200)
      expect(await store.accounts.hasIdentity(account.identity)).toBe(false)

      // The exact body of the creation, replayed.
      const replayed = await server.call('createAccount', creation)
      expect([replayed.status, errorOf(replayed).code]).toEqual([409, 'BA305'])
      expect(await store.accounts.hasIdentity(account.identity)).toBe(false)
      expect(
        await store.accounts.getDeviceKey(account.identity, account.first.device)
      ).toBeUndefined()

      // The first device key cannot open a session.
      const challenge = await server.call('requestSession', sessionRequest(account.identity))
      if (challenge.status === 200) {
        const nonce = (
          JSON.parse(challenge.body) as {
            payload: { response: { authentication: { nonce: string } } }
          }
        ).payload.response.authentication.nonce
        const body = createSessionBody(
          account.first,
          nonce,
          NodeSigningKey.generate(),
          NodeSigningKey.generate()
        )
        const session = await server.call('createSession', body)
        expect(session.status).not.toBe(200)
      }

      // A restarted server on the same data refuses it too.
      const after = restart()
      const again = await serverOn(after).call('createAccount', creation)
      expect([again.status, errorOf(again).code]).toEqual([409, 'BA305'])
      expect(await after.accounts.hasIdentity(account.identity)).toBe(false)
    } finally {
      await cleanup()
    }
  })
})
