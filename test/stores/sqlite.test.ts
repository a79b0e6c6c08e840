import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SqliteStore } from '../../src/stores/sqlite'
import { Clock } from '../helpers'
import { describeStoreConformance, randomHash, randomKey, type StoreHarness } from './conformance'

const dir = mkdtempSync(join(tmpdir(), 'better-auth-sqlite-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function harness(store: SqliteStore, clock: Clock): StoreHarness & { store: SqliteStore } {
  return {
    store,
    accounts: store.accounts,
    challenges: store.challenges,
    refreshKeys: store.refreshKeys,
    accessNonces: store.accessNonces,
    keys: store.keys,
    now: clock.now,
    advance: async ms => clock.advance(ms / 1000),
  }
}

describeStoreConformance(
  'sqlite (file)',
  async () => {
    const clock = new Clock()
    const store = new SqliteStore({
      path: join(dir, 'conformance.db'),
      now: clock.now,
      sweepIntervalMs: 0,
    })
    return harness(store, clock)
  },
  async h => (h as ReturnType<typeof harness>).store.close(),
  { parts: ['accounts', 'ephemeral', 'keys'] }
)

describeStoreConformance(
  'sqlite (:memory:)',
  async () => {
    const clock = new Clock()
    return harness(new SqliteStore({ path: ':memory:', now: clock.now, sweepIntervalMs: 0 }), clock)
  },
  async h => (h as ReturnType<typeof harness>).store.close(),
  { parts: ['accounts', 'ephemeral', 'keys'] }
)

describe('SqliteStore', () => {
  it('keeps accounts and keys across reopening the file; migration is idempotent', async () => {
    const path = join(dir, 'reopen.db')
    const first = new SqliteStore({ path, sweepIntervalMs: 0 })
    const account = {
      identity: randomHash(),
      device: randomHash(),
      publicKey: randomKey(),
      rotationHash: randomHash(),
      recoveryHash: randomHash(),
    }
    expect(await first.accounts.createAccount(account)).toBe(true)
    const key = { publicKey: randomKey(), privateKey: 'pem', createdAt: 1, retireAt: null }
    await first.keys.initKey('response', key)
    await first.close()

    const second = new SqliteStore({ path, sweepIntervalMs: 0 })
    expect(second.migrate()).toBe(0)
    expect(await second.accounts.getDeviceKey(account.identity, account.device)).toEqual({
      publicKey: account.publicKey,
      rotationHash: account.rotationHash,
    })
    expect(await second.keys.listKeys('response', Date.now())).toEqual([key])
    await second.close()
  })

  it('sweeps expired challenges, time-locks and retired keys', async () => {
    const clock = new Clock()
    const store = new SqliteStore({ path: ':memory:', now: clock.now, sweepIntervalMs: 0 })
    await store.challenges.create('0Achallenge', randomHash(), 1000)
    await store.refreshKeys.reserve(randomHash(), 1000)
    await store.accessNonces.reserve(randomHash(), 5000)
    await store.keys.initKey('access', {
      publicKey: randomKey(),
      privateKey: 'a',
      createdAt: 0,
      retireAt: null,
    })
    await store.keys.rotateKey(
      'access',
      { publicKey: randomKey(), privateKey: 'b', createdAt: 0, retireAt: null },
      clock.ms + 1000
    )
    const count = (table: string): number =>
      store.db.prepare(`SELECT COUNT(*) FROM ${table}`).pluck().get() as number
    clock.advance(2)
    store.sweep()
    expect(count(store.tables.challenges)).toBe(0)
    expect(count(store.tables.timeLocks)).toBe(1)
    expect(count(store.tables.keys)).toBe(1)
    await store.close()
  })

  it('uses an open database without closing it, under a table prefix', async () => {
    const { default: Database } = await import('better-sqlite3')
    const db = new Database(':memory:')
    const store = new SqliteStore({ database: db, tablePrefix: 'app_auth_', sweepIntervalMs: 0 })
    const tables = db
      .prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
      .pluck()
      .all()
    expect(tables).toEqual([
      'app_auth_challenges',
      'app_auth_devices',
      'app_auth_identities',
      'app_auth_keys',
      'app_auth_migrations',
      'app_auth_time_locks',
    ])
    await store.close()
    expect(db.open).toBe(true)
    db.close()
  })

  it('rejects a table prefix that is not a plain identifier', () => {
    expect(
      () => new SqliteStore({ path: ':memory:', tablePrefix: 'x"; DROP TABLE y; --' })
    ).toThrow(TypeError)
  })
})
