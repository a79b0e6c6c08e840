/**
 * SQLite store: every kind of server state, plus the server keys, in one file. For a single
 * node: the default of the example server. The driver is Node's built-in `node:sqlite` where the
 * running Node.js has it (22.13+), else the `better-sqlite3` package (`driver` option).
 *
 * Each operation is one SQLite transaction (`BEGIN IMMEDIATE`, so it also holds when several
 * processes open the same file), and both drivers run it synchronously, so nothing else in
 * the process interleaves with it. The database runs in WAL mode with a busy timeout.
 *
 * A database file the store creates is readable by its owner only (mode 0600, whatever the
 * umask), and so are its `-wal` and `-shm` files: it holds the server's private keys. Expired
 * rows are swept in small batches, yielding to the event loop between them.
 *
 *   import { SqliteStore } from 'better-auth-protocol/stores/sqlite'
 *   const store = new SqliteStore({ path: './better-auth.db' })
 */
import { chmodSync, closeSync, existsSync, fchmodSync, openSync } from 'node:fs'
import {
  openSqlite,
  wrapSqlite,
  type BetterSqlite3Database,
  type ModuleLoader,
  type NodeSqliteDatabase,
  type SqliteDriver,
  type SqliteDriverChoice,
} from './node-sqlite'
import {
  DEFAULT_TABLE_PREFIX,
  SCOPE,
  identityRecordQuery,
  laterOf,
  migrations,
  sessionStateQuery,
  toIdentityRecord,
  toSessionState,
  toStoredKey,
  type IdentityRow,
  type KeyRow,
  type SessionStateRow,
  tableNames,
  type TableNames,
} from './sql'
import type {
  AccountStore,
  AdminAccountStore,
  AdminResult,
  ChallengeStore,
  DeviceKey,
  KeyKind,
  KeyStore,
  NewAccount,
  NewDevice,
  RecoverResult,
  RotateResult,
  RotationEffect,
  ServerStore,
  StoredKey,
  TimeLockStore,
} from './types'

export {
  SqliteDriverError,
  hasNodeSqlite,
  type SqliteDriver,
  type SqliteDriverChoice,
  type SqliteDriverName,
  type SqliteStatement,
} from './node-sqlite'

/** An open database to give the store: a better-sqlite3 `Database` or a node:sqlite `DatabaseSync`. */
export type SqliteDatabase = BetterSqlite3Database | NodeSqliteDatabase

export interface SqliteStoreOptions {
  /** Database file; `':memory:'` for a private in-memory database. @default './better-auth.db' */
  path?: string
  /**
   * An open database to use instead of `path` (the store does not close it): a better-sqlite3
   * `Database` or a node:sqlite `DatabaseSync`.
   */
  database?: SqliteDatabase
  /**
   * The driver that opens `path`: `'node:sqlite'` (built into Node.js 22.13+ and 23.4+),
   * `'better-sqlite3'` (the package, a native build), or `'auto'`: node:sqlite where the running
   * Node.js has it, else better-sqlite3. @default 'auto'
   */
  driver?: SqliteDriverChoice
  /**
   * Create the database file when it does not exist. With `false`, a missing file is an error and
   * nothing is created (e.g. to read an existing database's keys). @default true
   */
  create?: boolean
  /** How the drivers are loaded (`require`), for tests. */
  loader?: ModuleLoader
  /** Prefix of the table names. @default 'better_auth_' */
  tablePrefix?: string
  /** Create or upgrade the tables on open. @default true */
  migrate?: boolean
  /** How long to wait for another process's write lock, ms. @default 5000 */
  busyTimeoutMs?: number
  /** How often expired challenges, time-locks and retired keys are deleted, ms (0: never). @default 60000 */
  sweepIntervalMs?: number
  /**
   * Most rows one sweep step deletes; steps are separated by a turn of the event loop, so a
   * sweep never blocks requests for long. @default 500
   */
  sweepBatchSize?: number
  /** Mode of a database file the store creates (and of its -wal and -shm files). @default 0o600 */
  fileMode?: number
  /** Clock, for tests. @default Date.now */
  now?: () => number
}

/** The default of `sweepBatchSize`. */
export const DEFAULT_SWEEP_BATCH_SIZE = 500

/** Whether a path names a file on disk (not `:memory:`, nor `''`, a private temporary database). */
const isFilePath = (path: string): boolean => path !== ':memory:' && path !== ''

/**
 * Creates `path` with `mode` if it does not exist (exclusive create, then `fchmod`, so the umask
 * cannot widen it). Returns whether it created the file.
 */
function createPrivateFile(path: string, mode: number): boolean {
  let fd: number
  try {
    fd = openSync(path, 'wx', mode)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw error
  }
  try {
    fchmodSync(fd, mode)
  } finally {
    closeSync(fd)
  }
  return true
}

interface DeviceRow {
  public_key: string
  rotation_hash: string
}

/** An object whose every property is made by its function on first read, once. */
function lazily<T extends Record<string, () => unknown>>(
  makers: T
): { readonly [K in keyof T]: ReturnType<T[K]> } {
  const out = {} as { [K in keyof T]: ReturnType<T[K]> }
  for (const name of Object.keys(makers) as (keyof T)[]) {
    let made: ReturnType<T[typeof name]> | undefined
    Object.defineProperty(out, name, {
      enumerable: true,
      get: () => (made ??= makers[name]?.() as ReturnType<T[typeof name]>),
    })
  }
  return out
}

/** The SQLite ServerStore. Construct, use, `close()`. */
export class SqliteStore implements ServerStore {
  /** The connection, through the driver interface (`db.name`: which driver; `db.raw`: its own object). */
  readonly db: SqliteDriver
  /** The accounts, with administration (`AdminAccountStore`). */
  readonly accounts: AccountStore & AdminAccountStore
  readonly challenges: ChallengeStore
  readonly refreshKeys: TimeLockStore
  readonly accessNonces: TimeLockStore
  readonly keys: KeyStore
  readonly tables: TableNames
  private readonly owned: boolean
  private readonly now: () => number
  private readonly prefix: string
  private timer: ReturnType<typeof setInterval> | undefined
  private statements: ReturnType<SqliteStore['prepare']> | undefined
  private readonly batchSize: number
  private sweeping: Promise<number> | undefined

  constructor(options: SqliteStoreOptions = {}) {
    this.owned = options.database === undefined
    const path = options.path ?? './better-auth.db'
    const mode = options.fileMode ?? 0o600
    // Before SQLite opens it: SQLite would create the file 0644 (less the umask), and SQLite
    // gives the -wal and -shm files the mode of the database file.
    const create = options.create ?? true
    if (this.owned && !create && isFilePath(path) && !existsSync(path)) {
      throw new Error(`no SQLite database at ${path}`)
    }
    // Load the driver before creating the file: a missing driver leaves nothing behind.
    const open = (): SqliteDriver =>
      openSqlite(path, {
        ...(options.driver === undefined ? {} : { driver: options.driver }),
        ...(options.loader === undefined ? {} : { loader: options.loader }),
        mustExist: !create,
      })
    let db: SqliteDriver
    let created = false
    if (options.database !== undefined) {
      db = wrapSqlite(options.database)
    } else if (!create || !isFilePath(path) || existsSync(path)) {
      db = open()
    } else {
      // Open a private in-memory database first, so a missing driver fails before any file exists.
      openSqlite(':memory:', {
        ...(options.driver === undefined ? {} : { driver: options.driver }),
        ...(options.loader === undefined ? {} : { loader: options.loader }),
      }).close()
      created = createPrivateFile(path, mode)
      db = open()
    }
    this.db = db
    this.now = options.now ?? Date.now
    this.prefix = options.tablePrefix ?? DEFAULT_TABLE_PREFIX
    this.tables = tableNames(this.prefix)
    this.batchSize = Math.max(1, Math.floor(options.sweepBatchSize ?? DEFAULT_SWEEP_BATCH_SIZE))
    if (this.owned) {
      this.db.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000))}`)
      // WAL lets readers and one writer proceed together; not available for :memory:.
      this.db.pragma('journal_mode = WAL')
      this.db.pragma('synchronous = NORMAL')
      // Checkpoint every 100 WAL pages (SQLite's default is 1000): each checkpoint then blocks the
      // event loop for about a millisecond, not ~10 ms, e.g. in the middle of a sweep's batches.
      this.db.pragma('wal_autocheckpoint = 100')
    }
    this.db.pragma('foreign_keys = ON')
    if (options.migrate ?? true) this.migrate()
    if (created) {
      // SQLite already matches them to the database file; set them anyway, should a file with
      // other permissions have been left behind by an earlier database of that name.
      for (const suffix of ['-wal', '-shm', '-journal']) {
        if (existsSync(path + suffix)) chmodSync(path + suffix, mode)
      }
    }
    this.accounts = this.accountStore()
    this.challenges = this.challengeStore()
    this.refreshKeys = this.timeLockStore(SCOPE.refreshKeys)
    this.accessNonces = this.timeLockStore(SCOPE.accessNonces)
    this.keys = this.keyStore()
    const interval = options.sweepIntervalMs ?? 60_000
    if (interval > 0) {
      this.timer = setInterval(() => {
        // A busy or closed database: the next sweep tries again.
        this.sweep().catch(() => undefined)
      }, interval)
      this.timer.unref()
    }
  }

  /** Creates or upgrades the tables (idempotent; safe to run from several processes). */
  migrate(): number {
    const t = this.tables
    const steps = migrations(t, this.prefix, { integer: 'INTEGER', tableOptions: 'WITHOUT ROWID' })
    const run = this.db.transaction((): number => {
      this.db.exec(
        `CREATE TABLE IF NOT EXISTS ${t.migrations} (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`
      )
      const row = this.db.prepare(`SELECT MAX(version) AS v FROM ${t.migrations}`).get() as {
        v: number | null
      }
      const applied = row.v ?? 0
      for (let version = applied + 1; version <= steps.length; version++) {
        this.db.exec(steps[version - 1] as string)
        this.db
          .prepare(`INSERT INTO ${t.migrations} (version, applied_at) VALUES (?, ?)`)
          .run(version, Date.now())
      }
      return steps.length - applied
    })
    return run()
  }

  /**
   * Deletes expired challenges and time-locks, and retired keys, in batches of at most
   * `sweepBatchSize` rows with a turn of the event loop between batches (each batch is one short
   * synchronous statement). Resolves to the number of rows deleted. A sweep already under way is
   * joined, not doubled.
   */
  sweep(): Promise<number> {
    this.sweeping ??= (async () => {
      try {
        let total = 0
        for (;;) {
          const deleted = this.sweepBatch()
          total += deleted
          if (deleted === 0) return total
          await new Promise<void>(resolve => setImmediate(resolve))
          if (!this.db.open) return total
        }
      } finally {
        this.sweeping = undefined
      }
    })()
    return this.sweeping
  }

  /**
   * One sweep step: deletes at most `sweepBatchSize` expired rows (challenges first, then
   * time-locks, then retired keys) and returns how many it deleted; 0 when nothing is left.
   */
  sweepBatch(): number {
    const now = this.now()
    const s = this.stmts()
    const limit = this.batchSize
    let deleted = s.sweepChallenges.run(now, limit).changes
    if (deleted < limit) deleted += s.sweepTimeLocks.run(now, limit - deleted).changes
    if (deleted < limit) deleted += s.sweepKeys.run(now, limit - deleted).changes
    return deleted
  }

  async close(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
    if (this.owned && this.db.open) this.db.close()
  }

  private stmts(): ReturnType<SqliteStore['prepare']> {
    this.statements ??= this.prepare()
    return this.statements
  }

  private prepare() {
    const t = this.tables
    const db = this.db
    // Each prepared on first use: a database opened without migrating (`migrate: false`, e.g. to
    // read its keys) prepares only the statements it runs, not those of columns it lacks.
    return lazily({
      insertIdentity: () =>
        db.prepare(
          `INSERT INTO ${t.identities} (identity, recovery_hash, created_at) VALUES (?, ?, ?)
         ON CONFLICT (identity) DO NOTHING`
        ),
      hasIdentity: () => db.prepare(`SELECT 1 FROM ${t.identities} WHERE identity = ?`).pluck(),
      recoveryHash: () =>
        db.prepare(`SELECT recovery_hash FROM ${t.identities} WHERE identity = ?`).pluck(),
      setRecoveryHash: () =>
        db.prepare(`UPDATE ${t.identities} SET recovery_hash = ? WHERE identity = ?`),
      deleteIdentity: () => db.prepare(`DELETE FROM ${t.identities} WHERE identity = ?`),
      device: () =>
        db.prepare(
          `SELECT public_key, rotation_hash FROM ${t.devices} WHERE identity = ? AND device = ?`
        ),
      insertDevice: () =>
        db.prepare(
          `INSERT INTO ${t.devices} (identity, device, public_key, rotation_hash, created_at)
         VALUES (?, ?, ?, ?, ?)`
        ),
      updateDevice: () =>
        db.prepare(
          `UPDATE ${t.devices} SET public_key = ?, rotation_hash = ?, rotated_at = ?
         WHERE identity = ? AND device = ?`
        ),
      deleteDevice: () => db.prepare(`DELETE FROM ${t.devices} WHERE identity = ? AND device = ?`),
      deleteDevices: () => db.prepare(`DELETE FROM ${t.devices} WHERE identity = ?`),
      identityRecord: () => db.prepare(identityRecordQuery(t, '?')),
      identityState: () => db.prepare(sessionStateQuery(t, false, ['?', '?'])),
      deviceState: () => db.prepare(sessionStateQuery(t, true, ['?', '?'])),
      recordSession: () =>
        db.prepare(
          `UPDATE ${t.devices} SET last_session_at = ?
         WHERE identity = ? AND device = ? AND (last_session_at IS NULL OR last_session_at < ?)`
        ),
      endIdentitySessions: () =>
        db.prepare(
          `UPDATE ${t.identities} SET ${laterOf('sessions_ended_at', '?')} WHERE identity = ?`
        ),
      endDeviceSessions: () =>
        db.prepare(
          `UPDATE ${t.devices} SET ${laterOf('sessions_ended_at', '?')}
         WHERE identity = ? AND device = ?`
        ),
      suspend: () =>
        db.prepare(
          `UPDATE ${t.identities} SET suspended_at = ?, suspended_reason = ?,
           ${laterOf('sessions_ended_at', '?')}
         WHERE identity = ? AND suspended_at IS NULL`
        ),
      reinstate: () =>
        db.prepare(
          `UPDATE ${t.identities} SET suspended_at = NULL, suspended_reason = NULL
         WHERE identity = ? AND suspended_at IS NOT NULL`
        ),
      createChallenge: () =>
        db.prepare(
          `INSERT INTO ${t.challenges} (nonce, identity, expires_at) VALUES (?, ?, ?)
         ON CONFLICT (nonce) DO UPDATE SET identity = excluded.identity, expires_at = excluded.expires_at`
        ),
      peekChallenge: () =>
        db
          .prepare(`SELECT identity FROM ${t.challenges} WHERE nonce = ? AND expires_at > ?`)
          .pluck(),
      consumeChallenge: () =>
        db
          .prepare(
            `DELETE FROM ${t.challenges} WHERE nonce = ? AND expires_at > ? RETURNING identity`
          )
          .pluck(),
      reserve: () =>
        db.prepare(
          `INSERT INTO ${t.timeLocks} (scope, value, expires_at) VALUES (?, ?, ?)
         ON CONFLICT (scope, value) DO UPDATE SET expires_at = excluded.expires_at
         WHERE ${t.timeLocks}.expires_at <= ?`
        ),
      // Bounded deletes (the tables have no rowid: their keys select the rows), by the expiry
      // indexes.
      sweepChallenges: () =>
        db.prepare(
          `DELETE FROM ${t.challenges} WHERE nonce IN
           (SELECT nonce FROM ${t.challenges} WHERE expires_at <= ? LIMIT ?)`
        ),
      sweepTimeLocks: () =>
        db.prepare(
          `DELETE FROM ${t.timeLocks} WHERE (scope, value) IN
           (SELECT scope, value FROM ${t.timeLocks} WHERE expires_at <= ? LIMIT ?)`
        ),
      sweepKeys: () =>
        db.prepare(
          `DELETE FROM ${t.keys} WHERE (kind, public_key) IN
           (SELECT kind, public_key FROM ${t.keys}
            WHERE retire_at IS NOT NULL AND retire_at <= ? LIMIT ?)`
        ),
      isDeleted: () =>
        db.prepare(`SELECT 1 FROM ${t.deletedIdentities} WHERE identity = ?`).pluck(),
      recordDeleted: () =>
        db.prepare(
          `INSERT INTO ${t.deletedIdentities} (identity, deleted_at) VALUES (?, ?)
         ON CONFLICT (identity) DO NOTHING`
        ),
      insertKey: () =>
        db.prepare(
          `INSERT INTO ${t.keys} (kind, public_key, private_key, created_at, retire_at)
         VALUES (?, ?, ?, ?, NULL) ON CONFLICT DO NOTHING`
        ),
      currentKey: () =>
        db.prepare(
          `SELECT public_key, private_key, created_at, retire_at FROM ${t.keys}
         WHERE kind = ? AND retire_at IS NULL`
        ),
      listKeys: () =>
        db.prepare(
          `SELECT public_key, private_key, created_at, retire_at FROM ${t.keys}
         WHERE kind = ? AND (retire_at IS NULL OR retire_at > ?)
         ORDER BY retire_at IS NULL DESC, retire_at DESC, created_at DESC`
        ),
      retireCurrent: () =>
        db.prepare(`UPDATE ${t.keys} SET retire_at = ? WHERE kind = ? AND retire_at IS NULL`),
      retireKey: () =>
        db.prepare(
          `UPDATE ${t.keys} SET retire_at = MIN(retire_at, ?)
         WHERE kind = ? AND public_key = ? AND retire_at IS NOT NULL AND retire_at > ?`
        ),
    })
  }

  private accountStore(): AccountStore & AdminAccountStore {
    const db = this.db
    const s = (): ReturnType<SqliteStore['prepare']> => this.stmts()
    const now = this.now

    const create = db.transaction((a: NewAccount): boolean => {
      // A deleted identity is never created again.
      if (s().isDeleted.get(a.identity) !== undefined) return false
      if (s().insertIdentity.run(a.identity, a.recoveryHash, now()).changes === 0) return false
      s().insertDevice.run(a.identity, a.device, a.publicKey, a.rotationHash, now())
      return true
    })

    const rotate = db.transaction(
      (
        identity: string,
        device: string,
        expected: string,
        next: DeviceKey,
        effect: RotationEffect
      ): RotateResult => {
        const row = s().device.get(identity, device) as DeviceRow | undefined
        if (row === undefined) return 'unknown-device'
        if (row.rotation_hash !== expected) return 'hash-mismatch'
        // Preconditions of the effect first: a refused effect changes nothing.
        if (
          effect.kind === 'revokeDevice' &&
          s().device.get(identity, effect.device) === undefined
        ) {
          return 'target-unknown'
        }
        if (effect.kind === 'linkDevice' && s().device.get(identity, effect.device) !== undefined) {
          return 'target-exists'
        }
        s().updateDevice.run(next.publicKey, next.rotationHash, now(), identity, device)
        switch (effect.kind) {
          case 'deleteIdentity':
            s().deleteIdentity.run(identity)
            s().recordDeleted.run(identity, now())
            break
          case 'revokeDevice':
            s().deleteDevice.run(identity, effect.device)
            break
          case 'linkDevice':
            s().insertDevice.run(
              identity,
              effect.device,
              effect.publicKey,
              effect.rotationHash,
              now()
            )
            break
          case 'changeRecoveryHash':
            s().setRecoveryHash.run(effect.recoveryHash, identity)
            break
          case 'none':
            break
        }
        return 'ok'
      }
    )

    const recover = db.transaction(
      (identity: string, expected: string, recoveryHash: string, d: NewDevice): RecoverResult => {
        const current = s().recoveryHash.get(identity) as string | undefined
        if (current === undefined) return 'unknown-identity'
        if (current !== expected) return 'hash-mismatch'
        s().setRecoveryHash.run(recoveryHash, identity)
        s().deleteDevices.run(identity)
        s().insertDevice.run(identity, d.device, d.publicKey, d.rotationHash, now())
        return 'ok'
      }
    )

    const exists = (identity: string): boolean => s().hasIdentity.get(identity) !== undefined

    const revokeDevice = db.transaction((identity: string, device: string): AdminResult => {
      if (!exists(identity)) return 'unknown-identity'
      return s().deleteDevice.run(identity, device).changes === 1 ? 'ok' : 'unknown-device'
    })

    const endSessions = db.transaction(
      (identity: string, at: number, device: string | undefined): AdminResult => {
        if (!exists(identity)) return 'unknown-identity'
        if (device === undefined) {
          s().endIdentitySessions.run(at, at, identity)
          return 'ok'
        }
        const { changes } = s().endDeviceSessions.run(at, at, identity, device)
        return changes === 1 ? 'ok' : 'unknown-device'
      }
    )

    const suspend = db.transaction((identity: string, at: number, reason: string | null) => {
      if (s().suspend.run(at, reason, at, at, identity).changes === 1) return 'ok' as const
      return exists(identity) ? ('already-suspended' as const) : ('unknown-identity' as const)
    })

    const reinstate = db.transaction((identity: string) => {
      if (s().reinstate.run(identity).changes === 1) return 'ok' as const
      return exists(identity) ? ('not-suspended' as const) : ('unknown-identity' as const)
    })

    const deleteIdentity = db.transaction((identity: string, at: number) => {
      if (s().deleteIdentity.run(identity).changes === 0) return 'unknown-identity' as const
      s().recordDeleted.run(identity, at)
      return 'ok' as const
    })

    // One statement: a consistent read without a write lock.
    const identityRecord = (identity: string) =>
      toIdentityRecord(identity, s().identityRecord.all(identity) as unknown as IdentityRow[])

    return {
      createAccount: async account => create(account),
      hasIdentity: async identity => s().hasIdentity.get(identity) !== undefined,
      getDeviceKey: async (identity, device) => {
        const row = s().device.get(identity, device) as DeviceRow | undefined
        return row === undefined
          ? undefined
          : { publicKey: row.public_key, rotationHash: row.rotation_hash }
      },
      getRecoveryHash: async identity => s().recoveryHash.get(identity) as string | undefined,
      rotate: async (identity, device, expected, next, effect) =>
        rotate(identity, device, expected, next, effect),
      recover: async (identity, expected, recoveryHash, device) =>
        recover(identity, expected, recoveryHash, device),
      getIdentityRecord: async identity => identityRecord(identity),
      getSessionState: async (identity, device) =>
        toSessionState(
          (device === undefined
            ? s().identityState.get(identity)
            : s().deviceState.get(identity, device)) as SessionStateRow | undefined
        ),
      recordSession: async (identity, device, at) => {
        s().recordSession.run(at, identity, device, at)
      },
      revokeDevice: async (identity, device) => revokeDevice(identity, device),
      endSessions: async (identity, at, device) => endSessions(identity, at, device),
      suspendIdentity: async (identity, at, reason) => suspend(identity, at, reason ?? null),
      reinstateIdentity: async identity => reinstate(identity),
      deleteIdentity: async (identity, at) => deleteIdentity(identity, at),
    }
  }

  private challengeStore(): ChallengeStore {
    const s = (): ReturnType<SqliteStore['prepare']> => this.stmts()
    return {
      create: async (nonce, identity, ttlMs) => {
        s().createChallenge.run(nonce, identity, this.now() + ttlMs)
      },
      peek: async nonce => s().peekChallenge.get(nonce, this.now()) as string | undefined,
      consume: async nonce => s().consumeChallenge.get(nonce, this.now()) as string | undefined,
    }
  }

  private timeLockStore(scope: string): TimeLockStore {
    return {
      reserve: async (value, ttlMs) => {
        const now = this.now()
        return this.stmts().reserve.run(scope, value, now + ttlMs, now).changes === 1
      },
    }
  }

  private keyStore(): KeyStore {
    const s = (): ReturnType<SqliteStore['prepare']> => this.stmts()
    const init = this.db.transaction((kind: KeyKind, key: StoredKey): StoredKey => {
      s().insertKey.run(kind, key.publicKey, key.privateKey, key.createdAt)
      return toStoredKey(s().currentKey.get(kind) as unknown as KeyRow)
    })
    const rotate = this.db.transaction((kind: KeyKind, key: StoredKey, retireAt: number) => {
      s().retireCurrent.run(retireAt, kind)
      if (s().insertKey.run(kind, key.publicKey, key.privateKey, key.createdAt).changes !== 1) {
        throw new Error('key store: that key was stored before')
      }
    })
    return {
      initKey: async (kind, key) => init(kind, key),
      listKeys: async (kind, now) =>
        (s().listKeys.all(kind, now) as unknown as KeyRow[]).map(toStoredKey),
      rotateKey: async (kind, key, retireAt) => rotate(kind, key, retireAt),
      retireKey: async (kind, publicKey, retireAt) =>
        s().retireKey.run(retireAt, kind, publicKey, this.now()).changes === 1,
    }
  }
}
