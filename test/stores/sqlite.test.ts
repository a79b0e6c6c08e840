import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { migrations } from '../../src/stores/sql'
import {
  SqliteDriverError,
  SqliteStore,
  hasNodeSqlite,
  type SqliteDriverChoice,
} from '../../src/stores/sqlite'
import { Clock } from '../helpers'
import { expectSchema2AccountUpgraded } from './upgrade'
import {
  describeStoreConformance,
  randomAccount,
  randomHash,
  randomKey,
  type StoreHarness,
} from './conformance'

/**
 * The driver under test: BETTER_AUTH_SQLITE_DRIVER=node:sqlite or better-sqlite3 (default: auto,
 * node:sqlite where Node.js has it). `make test-matrix` (scripts/matrix.mjs) runs this file again
 * under Node.js 22 and 24 with node:sqlite.
 */
const DRIVER = (process.env.BETTER_AUTH_SQLITE_DRIVER ?? 'auto') as SqliteDriverChoice
/** Tests that open a better-sqlite3 database themselves run only where that driver is used. */
const usesBetterSqlite3 = DRIVER === 'better-sqlite3' || (DRIVER === 'auto' && !hasNodeSqlite())
const withBetterSqlite3 = usesBetterSqlite3 ? it : it.skip
const withNodeSqlite = usesBetterSqlite3 ? it.skip : it

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
    const store = new SqliteStore({ driver: DRIVER, path, now: clock.now, sweepIntervalMs: 0 })
    return {
      ...harness(store, clock),
      // Another connection to the same file, as a restarted process would open.
      reopen: async () =>
        new SqliteStore({ driver: DRIVER, path, now: clock.now, sweepIntervalMs: 0 }),
    }
  },
  async h => (h as ReturnType<typeof harness>).store.close(),
  { parts: ['accounts', 'admin', 'ephemeral', 'keys'] }
)

describeStoreConformance(
  'sqlite (:memory:)',
  async () => {
    const clock = new Clock()
    return harness(
      new SqliteStore({ driver: DRIVER, path: ':memory:', now: clock.now, sweepIntervalMs: 0 }),
      clock
    )
  },
  async h => (h as ReturnType<typeof harness>).store.close(),
  { parts: ['accounts', 'admin', 'ephemeral', 'keys'] }
)

describe('SqliteStore', () => {
  it('keeps accounts and keys across reopening the file; migration is idempotent', async () => {
    const path = join(dir, 'reopen.db')
    const first = new SqliteStore({ driver: DRIVER, path, sweepIntervalMs: 0 })
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

    const second = new SqliteStore({ driver: DRIVER, path, sweepIntervalMs: 0 })
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
    const store = new SqliteStore({
      driver: DRIVER,
      path: ':memory:',
      now: clock.now,
      sweepIntervalMs: 0,
    })
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

  withBetterSqlite3('uses an open database without closing it, under a table prefix', async () => {
    const { default: Database } = await import('better-sqlite3')
    const db = new Database(':memory:')
    const store = new SqliteStore({
      driver: DRIVER,
      database: db,
      tablePrefix: 'app_auth_',
      sweepIntervalMs: 0,
    })
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

  withNodeSqlite('uses an open node:sqlite database without closing it', async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { DatabaseSync } = require('node:sqlite') as {
      DatabaseSync: new (path: string) => import('../../src/stores/sqlite').SqliteDatabase & {
        prepare(sql: string): { all(): unknown[] }
      }
    }
    const db = new DatabaseSync(':memory:')
    const store = new SqliteStore({ database: db, tablePrefix: 'app_auth_', sweepIntervalMs: 0 })
    expect(store.db.name).toBe('node:sqlite')
    const tables = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).all()
    expect(tables).toHaveLength(7)
    await store.close()
    expect(db.prepare('SELECT 1 AS one').all()).toHaveLength(1)
    db.close()
  })

  it('rejects a table prefix that is not a plain identifier', () => {
    expect(
      () =>
        new SqliteStore({ driver: DRIVER, path: ':memory:', tablePrefix: 'x"; DROP TABLE y; --' })
    ).toThrow(TypeError)
  })
})

describe('SqliteStore tombstones', () => {
  const account = randomAccount

  it('a deleted identity cannot be created again after the file is closed and reopened', async () => {
    const path = join(dir, 'tombstone.db')
    const first = new SqliteStore({ driver: DRIVER, path, sweepIntervalMs: 0 })
    const a = account()
    expect(await first.accounts.createAccount(a)).toBe(true)
    expect(
      await first.accounts.rotate(a.identity, a.device, a.rotationHash, a, {
        kind: 'deleteIdentity',
      })
    ).toBe('ok')
    await first.close()
    const second = new SqliteStore({ driver: DRIVER, path, sweepIntervalMs: 0 })
    expect(await second.accounts.createAccount(a)).toBe(false)
    expect(await second.accounts.hasIdentity(a.identity)).toBe(false)
    await second.close()
  })

  it('migrates a database of the previous schema version, keeping its accounts', async () => {
    const path = join(dir, 'v1.db')
    // A database as version 1 left it: migrated to 1 only.
    const v1 = new SqliteStore({ driver: DRIVER, path, migrate: false, sweepIntervalMs: 0 })
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

    const upgraded = new SqliteStore({ driver: DRIVER, path, sweepIntervalMs: 0 })
    expect(upgraded.db.prepare(`SELECT MAX(version) FROM ${t.migrations}`).pluck().get()).toBe(3)
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

/** A store on a new database at `path` migrated to version 2 only, as version 2 left it. */
function schema2Database(path: string): SqliteStore {
  const v2 = new SqliteStore({ driver: DRIVER, path, migrate: false, sweepIntervalMs: 0 })
  const t = v2.tables
  v2.db.exec(
    `CREATE TABLE ${t.migrations} (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`
  )
  const steps = migrations(t, 'better_auth_', { integer: 'INTEGER', tableOptions: 'WITHOUT ROWID' })
  v2.db.exec(steps[0] ?? '')
  v2.db.exec(steps[1] ?? '')
  v2.db.prepare(`INSERT INTO ${t.migrations} VALUES (1, 0), (2, 0)`).run()
  return v2
}

describe('SqliteStore administration schema (version 3)', () => {
  it('upgrades a database of version 2 in place: accounts kept, administration works', async () => {
    const path = join(dir, 'v2.db')
    // A database as version 2 left it: migrated to 2 only, with an account.
    const v2 = schema2Database(path)
    const t = v2.tables
    const a = randomAccount()
    v2.db
      .prepare(`INSERT INTO ${t.identities} (identity, recovery_hash, created_at) VALUES (?, ?, 7)`)
      .run(a.identity, a.recoveryHash)
    v2.db
      .prepare(
        `INSERT INTO ${t.devices} (identity, device, public_key, rotation_hash) VALUES (?, ?, ?, ?)`
      )
      .run(a.identity, a.device, a.publicKey, a.rotationHash)
    await v2.close()

    const clock = new Clock()
    const upgraded = new SqliteStore({ driver: DRIVER, path, now: clock.now, sweepIntervalMs: 0 })
    try {
      expect(upgraded.db.prepare(`SELECT MAX(version) FROM ${t.migrations}`).pluck().get()).toBe(3)
      // Idempotent: nothing more to run, on this connection or another.
      expect(upgraded.migrate()).toBe(0)
      // What was not recorded before the upgrade is null.
      await expectSchema2AccountUpgraded(upgraded.accounts, a)
      expect(await upgraded.accounts.suspendIdentity(a.identity, clock.ms, 'review')).toBe('ok')
      expect(await upgraded.accounts.getSessionState(a.identity, a.device)).toEqual({
        suspendedAt: clock.ms,
        sessionsEndedAt: clock.ms,
        lastSessionAt: null,
      })
      expect(
        await upgraded.accounts.rotate(a.identity, a.device, a.rotationHash, a, { kind: 'none' })
      ).toBe('ok')
      const record = await upgraded.accounts.getIdentityRecord(a.identity)
      expect(record?.devices[0]?.rotatedAt).toBe(clock.ms)
    } finally {
      await upgraded.close()
    }
    const again = new SqliteStore({ driver: DRIVER, path, sweepIntervalMs: 0 })
    expect(again.migrate()).toBe(0)
    await again.close()
  })
})

describe('SqliteStore opened without migrating', () => {
  it('serves the keys of a database of version 2 (e.g. the keys command before migrate)', async () => {
    const path = join(dir, 'v2-keys.db')
    const v2 = schema2Database(path)
    const key = { publicKey: randomKey(), privateKey: 'pem', createdAt: 1, retireAt: null }
    expect(await v2.keys.initKey('response', key)).toEqual(key)
    expect(await v2.keys.listKeys('response', Date.now())).toEqual([key])
    expect(await v2.sweep()).toBe(0)
    await v2.close()
  })
})

describe('SqliteStore file permissions', () => {
  const modeOf = (path: string): number => statSync(path).mode & 0o777

  it('creates the database, -wal and -shm files readable by their owner only, whatever the umask', async () => {
    const path = join(dir, 'private.db')
    const previous = process.umask(0)
    let store: SqliteStore
    try {
      store = new SqliteStore({ driver: DRIVER, path, sweepIntervalMs: 0 })
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
    new SqliteStore({ driver: DRIVER, path, sweepIntervalMs: 0, fileMode: 0o640 }).close()
    expect(modeOf(path)).toBe(0o640)
    const store = new SqliteStore({ driver: DRIVER, path, sweepIntervalMs: 0 })
    expect(modeOf(path)).toBe(0o640)
    await store.close()
  })
})

describe('SqliteStore sweep in batches', () => {
  function filled(expired: number, live: number, batch: number) {
    const clock = new Clock()
    const store = new SqliteStore({
      driver: DRIVER,
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

describe('SQLite drivers', () => {
  const missing = (name: string) =>
    Object.assign(new Error(`Cannot find module '${name}'\nRequire stack:\n- /somewhere.js`), {
      code: name === 'node:sqlite' ? 'ERR_UNKNOWN_BUILTIN_MODULE' : 'MODULE_NOT_FOUND',
    })
  const without =
    (...absent: string[]) =>
    (name: 'node:sqlite' | 'better-sqlite3'): unknown => {
      if (absent.includes(name)) throw missing(name)
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      return name === 'better-sqlite3' ? require('better-sqlite3') : require('node:sqlite')
    }

  it('auto takes node:sqlite where Node.js has it, else better-sqlite3', async () => {
    const store = new SqliteStore({ path: ':memory:', sweepIntervalMs: 0 })
    expect(store.db.name).toBe(hasNodeSqlite() ? 'node:sqlite' : 'better-sqlite3')
    await store.close()
    const chosen = new SqliteStore({ driver: DRIVER, path: ':memory:', sweepIntervalMs: 0 })
    expect(chosen.db.name).toBe(
      DRIVER === 'auto' ? (hasNodeSqlite() ? 'node:sqlite' : 'better-sqlite3') : DRIVER
    )
    await chosen.close()
  })

  it('without any driver, says what to install and which other store to choose', () => {
    const path = join(dir, 'no-driver.db')
    let error: unknown
    try {
      new SqliteStore({ path, loader: without('node:sqlite', 'better-sqlite3') })
    } catch (caught) {
      error = caught
    }
    expect(error).toBeInstanceOf(SqliteDriverError)
    const message = (error as Error).message
    expect(message).toContain('npm install better-sqlite3')
    expect(message).toContain('memory:')
    expect(message).toContain('22.13')
    expect(message).not.toMatch(/Cannot find module|Require stack/)
    // Nothing is left behind.
    expect(existsSync(path)).toBe(false)
  })

  it('names the other driver when the chosen one is missing', () => {
    expect(
      () =>
        new SqliteStore({ path: ':memory:', driver: 'node:sqlite', loader: without('node:sqlite') })
    ).toThrow(/node:sqlite is not available.*better-sqlite3.*memory:/)
    expect(
      () =>
        new SqliteStore({
          path: ':memory:',
          driver: 'better-sqlite3',
          loader: without('better-sqlite3'),
        })
    ).toThrow(/npm install better-sqlite3.*node:sqlite.*memory:/)
    // Installed but unloadable (a native build for another Node.js): rebuild it.
    expect(
      () =>
        new SqliteStore({
          path: ':memory:',
          driver: 'better-sqlite3',
          loader: () => {
            throw new Error('was compiled against a different Node.js version')
          },
        })
    ).toThrow(/npm rebuild better-sqlite3/)
    expect(
      () => new SqliteStore({ path: ':memory:', driver: 'sqlite3' as SqliteDriverChoice })
    ).toThrow(TypeError)
  })

  it('opens only an existing file with create: false', () => {
    const path = join(dir, 'absent.db')
    expect(() => new SqliteStore({ driver: DRIVER, path, create: false })).toThrow(
      `no SQLite database at ${path}`
    )
    expect(existsSync(path)).toBe(false)
  })

  it('commits a transaction, rolls back one that throws, and nests as savepoints', async () => {
    const store = new SqliteStore({ driver: DRIVER, path: ':memory:', sweepIntervalMs: 0 })
    const { db } = store
    db.exec('CREATE TABLE t (v INTEGER)')
    const insert = db.prepare('INSERT INTO t (v) VALUES (?)')
    const count = () => db.prepare('SELECT COUNT(*) AS n FROM t').pluck().get()
    db.transaction((v: number) => insert.run(v))(1)
    expect(count()).toBe(1)
    expect(() =>
      db.transaction(() => {
        insert.run(2)
        throw new Error('no')
      })()
    ).toThrow('no')
    expect(count()).toBe(1)
    db.transaction(() => {
      insert.run(3)
      try {
        db.transaction(() => {
          insert.run(4)
          throw new Error('inner')
        })()
      } catch {
        // the inner part is undone, the outer one goes on
      }
    })()
    expect(db.prepare('SELECT v FROM t ORDER BY v').pluck().all()).toEqual([1, 3])
    await store.close()
    expect(db.open).toBe(false)
  })
})
