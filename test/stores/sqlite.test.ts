import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { migrations } from '../../src/stores/sql'
import { SqliteStore } from '../../src/stores/sqlite'
import { Clock } from '../helpers'
import {
  describeStoreConformance,
  randomAccount,
  randomHash,
  randomKey,
  type StoreHarness,
} from './conformance'

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
    const path = join(dir, 'conformance.db')
    const store = new SqliteStore({ path, now: clock.now, sweepIntervalMs: 0 })
    return {
      ...harness(store, clock),
      // Another connection to the same file, as a restarted process would open.
      reopen: async () => new SqliteStore({ path, now: clock.now, sweepIntervalMs: 0 }),
    }
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
    expect(await store.sweep()).toBe(3)
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
      'app_auth_deleted_identities',
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

describe('SqliteStore tombstones', () => {
  const account = randomAccount

  it('a deleted identity cannot be created again after the file is closed and reopened', async () => {
    const path = join(dir, 'tombstone.db')
    const first = new SqliteStore({ path, sweepIntervalMs: 0 })
    const a = account()
    expect(await first.accounts.createAccount(a)).toBe(true)
    expect(
      await first.accounts.rotate(a.identity, a.device, a.rotationHash, a, {
        kind: 'deleteIdentity',
      })
    ).toBe('ok')
    await first.close()
    const second = new SqliteStore({ path, sweepIntervalMs: 0 })
    expect(await second.accounts.createAccount(a)).toBe(false)
    expect(await second.accounts.hasIdentity(a.identity)).toBe(false)
    await second.close()
  })

  it('migrates a database of the previous schema version, keeping its accounts', async () => {
    const { default: Database } = await import('better-sqlite3')
    const path = join(dir, 'v1.db')
    // A database as version 1 left it: migrated to 1 only.
    const v1 = new SqliteStore({ path, migrate: false, sweepIntervalMs: 0 })
    const t = v1.tables
    v1.db.exec(
      `CREATE TABLE ${t.migrations} (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`
    )
    v1.db.exec(
      migrations(t, 'better_auth_', { integer: 'INTEGER', tableOptions: 'WITHOUT ROWID' })[0] ?? ''
    )
    v1.db.prepare(`INSERT INTO ${t.migrations} VALUES (1, 0)`).run()
    const a = account()
    v1.db
      .prepare(`INSERT INTO ${t.identities} (identity, recovery_hash, created_at) VALUES (?, ?, 0)`)
      .run(a.identity, a.recoveryHash)
    v1.db
      .prepare(
        `INSERT INTO ${t.devices} (identity, device, public_key, rotation_hash) VALUES (?, ?, ?, ?)`
      )
      .run(a.identity, a.device, a.publicKey, a.rotationHash)
    await v1.close()

    const upgraded = new SqliteStore({ path, sweepIntervalMs: 0 })
    const db = new Database(path, { readonly: true })
    expect(db.prepare(`SELECT MAX(version) FROM ${t.migrations}`).pluck().get()).toBe(2)
    db.close()
    expect(await upgraded.accounts.getRecoveryHash(a.identity)).toBe(a.recoveryHash)
    expect(
      await upgraded.accounts.rotate(a.identity, a.device, a.rotationHash, a, {
        kind: 'deleteIdentity',
      })
    ).toBe('ok')
    expect(await upgraded.accounts.createAccount(a)).toBe(false)
    await upgraded.close()
  })
})

describe('SqliteStore file permissions', () => {
  const modeOf = (path: string): number => statSync(path).mode & 0o777

  it('creates the database, -wal and -shm files readable by their owner only, whatever the umask', async () => {
    const path = join(dir, 'private.db')
    const previous = process.umask(0)
    let store: SqliteStore
    try {
      store = new SqliteStore({ path, sweepIntervalMs: 0 })
      // A write, so the -wal and -shm files exist.
      expect(
        await store.accounts.createAccount({
          identity: randomHash(),
          device: randomHash(),
          publicKey: randomKey(),
          rotationHash: randomHash(),
          recoveryHash: randomHash(),
        })
      ).toBe(true)
    } finally {
      process.umask(previous)
    }
    for (const file of [path, `${path}-wal`, `${path}-shm`]) {
      expect(existsSync(file)).toBe(true)
      expect([file, modeOf(file)]).toEqual([file, 0o600])
    }
    await store.close()
  })

  it('leaves the mode of an existing database file as it is', async () => {
    const path = join(dir, 'existing.db')
    new SqliteStore({ path, sweepIntervalMs: 0, fileMode: 0o640 }).close()
    expect(modeOf(path)).toBe(0o640)
    const store = new SqliteStore({ path, sweepIntervalMs: 0 })
    expect(modeOf(path)).toBe(0o640)
    await store.close()
  })
})

describe('SqliteStore sweep in batches', () => {
  function filled(expired: number, live: number, batch: number) {
    const clock = new Clock()
    const store = new SqliteStore({
      path: ':memory:',
      now: clock.now,
      sweepIntervalMs: 0,
      sweepBatchSize: batch,
    })
    const insert = store.db.prepare(
      `INSERT INTO ${store.tables.timeLocks} (scope, value, expires_at) VALUES ('nonce', ?, ?)`
    )
    const challenge = store.db.prepare(
      `INSERT INTO ${store.tables.challenges} (nonce, identity, expires_at) VALUES (?, 'x', ?)`
    )
    store.db.transaction(() => {
      for (let i = 0; i < expired; i++) {
        insert.run(`expired-${i}`, clock.ms - 1)
        if (i % 10 === 0) challenge.run(`expired-${i}`, clock.ms - 1)
      }
      for (let i = 0; i < live; i++) insert.run(`live-${i}`, clock.ms + 60_000)
    })()
    const count = (): number =>
      (store.db.prepare(`SELECT COUNT(*) FROM ${store.tables.timeLocks}`).pluck().get() as number) +
      (store.db.prepare(`SELECT COUNT(*) FROM ${store.tables.challenges}`).pluck().get() as number)
    return { store, count }
  }

  it('each batch deletes at most the batch size; batches together delete every expired row', async () => {
    const { store, count } = filled(2345, 10, 500)
    const total = count()
    expect(total).toBe(2345 + 235 + 10)
    const batches: number[] = []
    for (let deleted = store.sweepBatch(); deleted > 0; deleted = store.sweepBatch()) {
      batches.push(deleted)
    }
    expect(batches.every(n => n <= 500)).toBe(true)
    expect(batches.reduce((a, b) => a + b, 0)).toBe(2345 + 235)
    expect(batches.length).toBe(Math.ceil((2345 + 235) / 500))
    expect(count()).toBe(10)
    await store.close()
  })

  it('sweep() removes them all, yielding to the event loop between batches', async () => {
    const { store, count } = filled(5000, 3, 500)
    const seen: number[] = []
    // Callbacks queued before the sweep run while it is under way, not after it.
    const probe = (): void => {
      seen.push(count())
      if (seen.length < 3) setImmediate(probe)
    }
    setImmediate(probe)
    const sweeping = store.sweep()
    // A second call joins the sweep under way.
    expect(store.sweep()).toBe(sweeping)
    expect(await sweeping).toBe(5000 + 500)
    expect(count()).toBe(3)
    expect(seen.length).toBeGreaterThan(0)
    expect(seen.some(n => n > 3 && n < 5503)).toBe(true)
    await store.close()
  })
})
