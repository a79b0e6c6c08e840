/**
 * PostgreSQL store (`pg`): accounts, challenges, time-locks and server keys, shared by every
 * instance of a deployment.
 *
 * - The schema comes from an idempotent, versioned migration, run before the first query (or
 *   by `migrate()` / the CLI); concurrent migrations are serialized by an advisory lock.
 * - Multi-step operations (create account, recover, rotation with an effect) are one
 *   transaction; a failure rolls everything back.
 * - Rotation is a compare-and-set: `UPDATE … WHERE rotation_hash = expected`.
 * - Uniqueness is enforced by primary keys; reservations are `INSERT … ON CONFLICT … DO UPDATE
 *   … WHERE expired`, so a value is reserved by exactly one caller until it expires.
 *
 * When PostgreSQL cannot be reached, methods reject (the server answers 503 BA602) and the pool
 * reconnects on later calls; idle-connection errors are caught so they cannot crash the process.
 * Every wait is bounded, also when PostgreSQL is reachable but does not answer (frozen,
 * partitioned): a connection (new, or a free one of the pool) within `connectTimeoutMs`, a
 * statement within `queryTimeoutMs` (PostgreSQL cancels it: `statement_timeout`; a server that
 * does not answer at all has its connection dropped shortly after). A transaction whose statement
 * fails or times out is rolled back — its connection is discarded, never returned to the pool —
 * so nothing is half-written.
 *
 *   import { PostgresStore } from 'better-auth-protocol/stores/postgres'
 *   const store = new PostgresStore({ connectionString: process.env.DATABASE_URL })
 */
import { createHash } from 'node:crypto'
import type { Pool, PoolClient, PoolConfig, QueryResultRow } from 'pg'
import {
  DEFAULT_TABLE_PREFIX,
  SCOPE,
  identityRecordQuery,
  laterOf,
  migrations,
  sessionStateQuery,
  sqlIdentifier,
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
  KeyKind,
  KeyStore,
  RecoverResult,
  RotateResult,
  ServerStore,
  StoredKey,
  TimeLockStore,
} from './types'

export interface PostgresStoreOptions {
  /** An existing pool (the store does not end it). */
  pool?: Pool
  /** Connection string for a pool the store creates (and ends on `close()`). */
  connectionString?: string
  /** Further settings of the pool the store creates. */
  poolConfig?: PoolConfig
  /** Schema of the tables; created if missing. @default the connection's search_path (public) */
  schema?: string
  /** Prefix of the table names. @default 'better_auth_' */
  tablePrefix?: string
  /** Run the migration before the first query. @default true */
  migrate?: boolean
  /** How often expired challenges, time-locks and retired keys are deleted, ms (0: never). @default 60000 */
  sweepIntervalMs?: number
  /** Most rows one sweep statement deletes (a sweep repeats it until done). @default 1000 */
  sweepBatchSize?: number
  /**
   * Longest wait for a connection, new or from the pool, ms; then the call rejects.
   * @default 3000
   */
  connectTimeoutMs?: number
  /**
   * Longest run of one statement, ms: PostgreSQL cancels it then (`statement_timeout`, on the
   * pool the store creates), and a connection that gives no answer within
   * `QUERY_TIMEOUT_GRACE_MS` more is dropped. @default 3000
   */
  queryTimeoutMs?: number
  /** Receives errors that have no caller to reject: idle connections, background sweeps. */
  onError?: (error: unknown) => void
  /** Clock, for tests. @default Date.now */
  now?: () => number
}

/** A 64-bit advisory lock key for a name. */
const advisoryKey = (name: string): string =>
  createHash('sha256').update(name).digest().readBigInt64BE(0).toString()

/** Default connection and statement timeouts, ms. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 3000
export const DEFAULT_QUERY_TIMEOUT_MS = 3000
/**
 * How long after `queryTimeoutMs` a statement without any answer is given up on the client side
 * (a frozen server or a partition: PostgreSQL's own cancellation cannot arrive).
 */
export const QUERY_TIMEOUT_GRACE_MS = 250

/** The error of pg's client-side `query_timeout`: the connection is in an unknown state. */
const isReadTimeout = (error: unknown): boolean =>
  error instanceof Error && error.message === 'Query read timeout'

const asError = (error: unknown): Error =>
  error instanceof Error ? error : new Error(String(error))

/** SQLSTATEs after which a transaction may simply run again. */
const RETRYABLE = new Set(['40001', '40P01'])

type Queryable = Pick<PoolClient, 'query'>

/** The PostgreSQL ServerStore. */
export class PostgresStore implements ServerStore {
  readonly pool: Pool
  readonly tables: TableNames
  /** The accounts, with administration (`AdminAccountStore`). */
  readonly accounts: AccountStore & AdminAccountStore
  readonly challenges: ChallengeStore
  readonly refreshKeys: TimeLockStore
  readonly accessNonces: TimeLockStore
  readonly keys: KeyStore
  private readonly owned: boolean
  private readonly schema: string | undefined
  private readonly prefix: string
  private readonly now: () => number
  private readonly onError: (error: unknown) => void
  private readonly autoMigrate: boolean
  private migrated: Promise<void> | undefined
  private timer: ReturnType<typeof setInterval> | undefined
  private readonly names = new Map<string, string>()
  private readonly poolErrorListener = (error: unknown): void => this.onError(error)
  private readonly connectTimeoutMs: number
  /** The client-side limit of a statement (its `query_timeout`). */
  private readonly readTimeoutMs: number
  private readonly batchSize: number

  constructor(options: PostgresStoreOptions = {}) {
    this.owned = options.pool === undefined
    const positive = (value: number | undefined, fallback: number): number =>
      value !== undefined && Number.isFinite(value) && value > 0 ? Math.ceil(value) : fallback
    this.connectTimeoutMs = positive(options.connectTimeoutMs, DEFAULT_CONNECT_TIMEOUT_MS)
    const queryTimeoutMs = positive(options.queryTimeoutMs, DEFAULT_QUERY_TIMEOUT_MS)
    this.readTimeoutMs = queryTimeoutMs + QUERY_TIMEOUT_GRACE_MS
    this.batchSize = positive(options.sweepBatchSize, 1000)
    this.pool =
      options.pool ??
      // pg loads here, when a store creates its pool: never for an app that uses no PostgreSQL,
      // even in an ES module bundle (a literal require, which bundlers see; see stores/url.ts).
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      new (require('pg') as typeof import('pg')).Pool({
        connectionString: options.connectionString,
        max: 10,
        connectionTimeoutMillis: this.connectTimeoutMs,
        statement_timeout: queryTimeoutMs,
        idleTimeoutMillis: 30_000,
        keepAlive: true,
        ...options.poolConfig,
      })
    // An idle client whose connection drops emits 'error' on the pool; unheard, it would
    // crash the process. The pool discards that client and connects anew on demand.
    this.pool.on('error', this.poolErrorListener)
    this.schema = options.schema === undefined ? undefined : sqlIdentifier(options.schema, 'schema')
    this.prefix = options.tablePrefix ?? DEFAULT_TABLE_PREFIX
    this.tables = tableNames(this.prefix, this.schema)
    this.now = options.now ?? Date.now
    this.onError = options.onError ?? (() => undefined)
    this.autoMigrate = options.migrate ?? true
    this.accounts = this.accountStore()
    this.challenges = this.challengeStore()
    this.refreshKeys = this.timeLockStore(SCOPE.refreshKeys)
    this.accessNonces = this.timeLockStore(SCOPE.accessNonces)
    this.keys = this.keyStore()
    const interval = options.sweepIntervalMs ?? 60_000
    if (interval > 0) {
      this.timer = setInterval(() => {
        this.sweep().catch(this.onError)
      }, interval)
      this.timer.unref()
    }
  }

  /**
   * Creates or upgrades the schema; idempotent, and safe to run from several instances at once.
   * Returns how many migration steps ran.
   */
  async migrate(): Promise<number> {
    const t = this.tables
    const steps = migrations(t, this.prefix, {
      integer: 'BIGINT',
      tableOptions: '',
      addColumnIfNotExists: true,
    })
    return this.transaction(async c => {
      // One migration at a time per table set, across every instance.
      await this.simple(c, 'SELECT pg_advisory_xact_lock($1)', [advisoryKey(t.migrations)])
      if (this.schema !== undefined) {
        await this.simple(c, `CREATE SCHEMA IF NOT EXISTS "${this.schema}"`)
      }
      await this.simple(
        c,
        `CREATE TABLE IF NOT EXISTS ${t.migrations} (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`
      )
      const { rows } = await this.simple<{ v: number | null }>(
        c,
        `SELECT MAX(version) AS v FROM ${t.migrations}`
      )
      const applied = rows[0]?.v ?? 0
      for (let version = applied + 1; version <= steps.length; version++) {
        await this.simple(c, steps[version - 1] as string)
        await this.simple(c, `INSERT INTO ${t.migrations} (version, applied_at) VALUES ($1, $2)`, [
          version,
          Date.now(),
        ])
      }
      return [steps.length - applied, true]
    }, false)
  }

  /**
   * Deletes expired challenges and time-locks, and retired keys, `sweepBatchSize` rows per
   * statement (each well within the statement timeout). Resolves to the number of rows deleted.
   */
  async sweep(): Promise<number> {
    const now = this.now()
    const t = this.tables
    const statements = [
      `DELETE FROM ${t.challenges} WHERE nonce IN
         (SELECT nonce FROM ${t.challenges} WHERE expires_at <= $1 LIMIT $2)`,
      `DELETE FROM ${t.timeLocks} WHERE (scope, value) IN
         (SELECT scope, value FROM ${t.timeLocks} WHERE expires_at <= $1 LIMIT $2)`,
      `DELETE FROM ${t.keys} WHERE (kind, public_key) IN
         (SELECT kind, public_key FROM ${t.keys}
          WHERE retire_at IS NOT NULL AND retire_at <= $1 LIMIT $2)`,
    ]
    let total = 0
    for (const text of statements) {
      for (;;) {
        const { rowCount } = await this.query(text, [now, this.batchSize])
        total += rowCount
        if (rowCount < this.batchSize) break
      }
    }
    return total
  }

  /** Drops every table of the store (tests, uninstall). The schema itself is kept. */
  async dropTables(): Promise<void> {
    const t = this.tables
    await this.pool.query(
      `DROP TABLE IF EXISTS ${t.devices}, ${t.identities}, ${t.deletedIdentities}, ${t.challenges}, ${t.timeLocks}, ${t.keys}, ${t.migrations}`
    )
    this.migrated = undefined
  }

  async close(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
    if (this.owned) await this.pool.end()
    else this.pool.off('error', this.poolErrorListener)
  }

  // ---------------------------------------------------------------- plumbing

  /** Runs the migration once before the first query; a failed attempt is retried next time. */
  private ready(): Promise<void> {
    if (!this.autoMigrate) return Promise.resolve()
    this.migrated ??= this.migrate().then(
      () => undefined,
      error => {
        this.migrated = undefined
        throw error
      }
    )
    return this.migrated
  }

  /** A named (prepared) statement per distinct text, whatever pool the store shares. */
  private statement(text: string): { name: string; text: string } {
    let name = this.names.get(text)
    if (name === undefined) {
      name = 'ba_' + createHash('sha256').update(text).digest('hex').slice(0, 24)
      this.names.set(text, name)
    }
    return { name, text }
  }

  /**
   * A client of the pool within `connectTimeoutMs` (also for a pool the store did not create,
   * whose own settings may not bound the wait); a client that comes later goes back to the pool.
   */
  private acquire(): Promise<PoolClient> {
    const ms = this.connectTimeoutMs
    return new Promise<PoolClient>((resolve, reject) => {
      let late = false
      const timer = setTimeout(() => {
        late = true
        reject(new Error(`timeout: no PostgreSQL connection within ${ms} ms`))
      }, ms)
      this.pool.connect().then(
        client => {
          clearTimeout(timer)
          if (late) client.release()
          else resolve(client)
        },
        (error: unknown) => {
          clearTimeout(timer)
          reject(asError(error))
        }
      )
    })
  }

  /** Runs `work` on a client of the pool; a client that failed is discarded, not reused. */
  private async withClient<T>(
    work: (client: PoolClient) => Promise<T>,
    /** Whether a failure leaves the client fit for reuse. */
    reusable: (failure: unknown) => boolean = () => false
  ): Promise<T> {
    const client = await this.acquire()
    let failure: unknown
    // A checked-out client whose connection drops emits 'error'; unheard, it would crash the
    // process. The query under way rejects as well.
    const onClientError = (error: unknown): void => {
      failure ??= error
      this.onError(error)
    }
    client.on('error', onClientError)
    try {
      return await work(client)
    } catch (error) {
      failure ??= error
      throw error
    } finally {
      client.off('error', onClientError)
      // pg ends a released client that has a query under way by destroying its socket.
      client.release(failure === undefined || reusable(failure) ? undefined : asError(failure))
    }
  }

  /** One statement on `client`, unnamed, with the client-side time limit. */
  private async simple<R extends QueryResultRow>(
    client: Queryable,
    text: string,
    values?: unknown[]
  ): Promise<{ rows: R[]; rowCount: number }> {
    // pg reads `query_timeout` from a query's config too (its types list it for clients only).
    const config = { text, values, query_timeout: this.readTimeoutMs }
    const result = await client.query<R>(config)
    return { rows: result.rows, rowCount: result.rowCount ?? 0 }
  }

  private async query<R extends QueryResultRow>(
    text: string,
    values: unknown[],
    client?: Queryable
  ): Promise<{ rows: R[]; rowCount: number }> {
    const run = async (c: Queryable): Promise<{ rows: R[]; rowCount: number }> => {
      const config = { ...this.statement(text), values, query_timeout: this.readTimeoutMs }
      const result = await c.query<R>(config)
      return { rows: result.rows, rowCount: result.rowCount ?? 0 }
    }
    if (client !== undefined) return run(client)
    await this.ready()
    return this.withClient(run)
  }

  /**
   * Runs `work` in a transaction. `work` returns `[result, commit]`: an expected refusal rolls
   * back without an exception. Deadlocks and serialization failures are retried.
   */
  private async transaction<T>(
    work: (client: PoolClient) => Promise<[T, boolean]>,
    migrateFirst = true
  ): Promise<T> {
    if (migrateFirst) await this.ready()
    const retryable = (error: unknown): boolean => {
      const code = (error as { code?: unknown } | undefined)?.code
      return typeof code === 'string' && RETRYABLE.has(code)
    }
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.withClient(async client => {
          await this.simple(client, 'BEGIN')
          try {
            const [result, commit] = await work(client)
            await this.simple(client, commit ? 'COMMIT' : 'ROLLBACK')
            return result
          } catch (error) {
            // After a client-side timeout the connection is still busy: a ROLLBACK would only
            // wait behind the hung statement. The client is discarded instead, and PostgreSQL
            // rolls back a transaction whose connection closes before COMMIT.
            if (!isReadTimeout(error)) {
              await this.simple(client, 'ROLLBACK').catch(() => undefined)
            }
            throw error
          }
          // A client that failed for an unknown reason may be broken: only a deadlock or a
          // serialization failure (rolled back above) leaves it fit for reuse.
        }, retryable)
      } catch (error) {
        if (attempt < 3 && retryable(error)) continue
        throw error
      }
    }
  }

  // ---------------------------------------------------------------- stores

  private accountStore(): AccountStore & AdminAccountStore {
    const t = this.tables
    const q = this.query.bind(this)

    const lockIdentity = `SELECT recovery_hash FROM ${t.identities} WHERE identity = $1 FOR UPDATE`
    const casDevice = `UPDATE ${t.devices} SET public_key = $3, rotation_hash = $4, rotated_at = $6
       WHERE identity = $1 AND device = $2 AND rotation_hash = $5`
    const deviceExists = `SELECT 1 FROM ${t.devices} WHERE identity = $1 AND device = $2`
    const identityExists = `SELECT 1 FROM ${t.identities} WHERE identity = $1`
    const insertDevice = `INSERT INTO ${t.devices} (identity, device, public_key, rotation_hash, created_at)
       VALUES ($1, $2, $3, $4, $5) ON CONFLICT (identity, device) DO NOTHING`
    const exists = async (identity: string, c?: Queryable): Promise<boolean> =>
      (await q(identityExists, [identity], c)).rowCount > 0

    /** Why a compare-and-set matched no row. */
    const refusal = async (identity: string, device: string, c?: Queryable) =>
      (await q(deviceExists, [identity, device], c)).rowCount === 0
        ? ('unknown-device' as const)
        : ('hash-mismatch' as const)

    return {
      createAccount: async a =>
        this.transaction<boolean>(async c => {
          // One statement: the identity (with its recovery hash) and its first device, or nothing.
          const { rowCount } = await q(
            `WITH created AS (
               INSERT INTO ${t.identities} (identity, recovery_hash, created_at)
               VALUES ($1, $2, $3) ON CONFLICT (identity) DO NOTHING RETURNING identity
             )
             INSERT INTO ${t.devices} (identity, device, public_key, rotation_hash, created_at)
             SELECT identity, $4, $5, $6, $3 FROM created`,
            [a.identity, a.recoveryHash, this.now(), a.device, a.publicKey, a.rotationHash],
            c
          )
          if (rowCount !== 1) return [false, false]
          // A deleted identity is never created again. Checked after the insert, in a statement
          // of its own: an insert that met a deletion under way waited for it to commit, and this
          // statement's snapshot then includes the tombstone that deletion wrote.
          const deleted = await q(
            `SELECT 1 FROM ${t.deletedIdentities} WHERE identity = $1`,
            [a.identity],
            c
          )
          return deleted.rowCount === 0 ? [true, true] : [false, false]
        }),

      hasIdentity: async identity =>
        (await q(`SELECT 1 FROM ${t.identities} WHERE identity = $1`, [identity])).rowCount > 0,

      getDeviceKey: async (identity, device) => {
        const { rows } = await q<{ public_key: string; rotation_hash: string }>(
          `SELECT public_key, rotation_hash FROM ${t.devices} WHERE identity = $1 AND device = $2`,
          [identity, device]
        )
        const row = rows[0]
        return row === undefined
          ? undefined
          : { publicKey: row.public_key, rotationHash: row.rotation_hash }
      },

      getRecoveryHash: async identity => {
        const { rows } = await q<{ recovery_hash: string }>(
          `SELECT recovery_hash FROM ${t.identities} WHERE identity = $1`,
          [identity]
        )
        return rows[0]?.recovery_hash
      },

      rotate: async (identity, device, expected, next, effect) => {
        const cas = [identity, device, next.publicKey, next.rotationHash, expected, this.now()]
        if (effect.kind === 'none') {
          // A single conditional UPDATE: atomic on its own, one round trip.
          if ((await q(casDevice, cas)).rowCount === 1) return 'ok'
          return refusal(identity, device)
        }
        return this.transaction<RotateResult>(async c => {
          // Lock order: identity, then devices (as a cascading delete takes them).
          if ((await q(lockIdentity, [identity], c)).rowCount === 0) {
            return ['unknown-device', false]
          }
          if ((await q(casDevice, cas, c)).rowCount === 0) {
            return [await refusal(identity, device, c), false]
          }
          switch (effect.kind) {
            case 'deleteIdentity':
              await q(`DELETE FROM ${t.identities} WHERE identity = $1`, [identity], c)
              // The tombstone, in the same transaction: the identity can never be created again.
              await q(
                `INSERT INTO ${t.deletedIdentities} (identity, deleted_at) VALUES ($1, $2)
                 ON CONFLICT (identity) DO NOTHING`,
                [identity, this.now()],
                c
              )
              break
            case 'revokeDevice': {
              const { rowCount } = await q(
                `DELETE FROM ${t.devices} WHERE identity = $1 AND device = $2`,
                [identity, effect.device],
                c
              )
              if (rowCount === 0) return ['target-unknown', false]
              break
            }
            case 'linkDevice': {
              const { rowCount } = await q(
                insertDevice,
                [identity, effect.device, effect.publicKey, effect.rotationHash, this.now()],
                c
              )
              if (rowCount === 0) return ['target-exists', false]
              break
            }
            case 'changeRecoveryHash':
              await q(
                `UPDATE ${t.identities} SET recovery_hash = $2 WHERE identity = $1`,
                [identity, effect.recoveryHash],
                c
              )
              break
          }
          return ['ok', true]
        })
      },

      recover: async (identity, expected, recoveryHash, d) =>
        this.transaction<RecoverResult>(async c => {
          const { rows } = await q<{ recovery_hash: string }>(lockIdentity, [identity], c)
          const current = rows[0]?.recovery_hash
          if (current === undefined) return ['unknown-identity', false]
          if (current !== expected) return ['hash-mismatch', false]
          await q(
            `UPDATE ${t.identities} SET recovery_hash = $2 WHERE identity = $1`,
            [identity, recoveryHash],
            c
          )
          await q(`DELETE FROM ${t.devices} WHERE identity = $1`, [identity], c)
          await q(insertDevice, [identity, d.device, d.publicKey, d.rotationHash, this.now()], c)
          return ['ok', true]
        }),

      // ---------------------------------------------------------------- administration

      getIdentityRecord: async identity =>
        // One statement: one consistent snapshot of the identity and its devices.
        toIdentityRecord(
          identity,
          (await q<IdentityRow>(identityRecordQuery(t, '$1'), [identity])).rows
        ),

      getSessionState: async (identity, device) => {
        const { rows } =
          device === undefined
            ? await q<SessionStateRow>(sessionStateQuery(t, false, ['$1', '$2']), [identity])
            : await q<SessionStateRow>(sessionStateQuery(t, true, ['$1', '$2']), [identity, device])
        return toSessionState(rows[0])
      },

      recordSession: async (identity, device, at) => {
        await q(
          `UPDATE ${t.devices} SET last_session_at = $3
           WHERE identity = $1 AND device = $2 AND (last_session_at IS NULL OR last_session_at < $3)`,
          [identity, device, at]
        )
      },

      revokeDevice: async (identity, device) =>
        this.transaction<AdminResult>(async c => {
          // Lock order: identity, then devices (as rotations with an effect take them). A
          // rotation of the device under way either commits first (and the device is deleted
          // after it) or finds no row to update ('unknown-device').
          if ((await q(lockIdentity, [identity], c)).rowCount === 0) {
            return ['unknown-identity', false]
          }
          const { rowCount } = await q(
            `DELETE FROM ${t.devices} WHERE identity = $1 AND device = $2`,
            [identity, device],
            c
          )
          return rowCount === 1 ? ['ok', true] : ['unknown-device', false]
        }),

      endSessions: async (identity, at, device) => {
        // One conditional UPDATE, atomic on its own; a later moment already recorded is kept.
        const { rowCount } =
          device === undefined
            ? await q(
                `UPDATE ${t.identities} SET ${laterOf('sessions_ended_at', '$2')} WHERE identity = $1`,
                [identity, at]
              )
            : await q(
                `UPDATE ${t.devices} SET ${laterOf('sessions_ended_at', '$3')}
                 WHERE identity = $1 AND device = $2`,
                [identity, device, at]
              )
        if (rowCount === 1) return 'ok'
        if (device === undefined || !(await exists(identity))) return 'unknown-identity'
        return 'unknown-device'
      },

      suspendIdentity: async (identity, at, reason) => {
        const { rowCount } = await q(
          `UPDATE ${t.identities} SET suspended_at = $2, suspended_reason = $3,
             ${laterOf('sessions_ended_at', '$2')}
           WHERE identity = $1 AND suspended_at IS NULL`,
          [identity, at, reason ?? null]
        )
        if (rowCount === 1) return 'ok'
        return (await exists(identity)) ? 'already-suspended' : 'unknown-identity'
      },

      reinstateIdentity: async identity => {
        const { rowCount } = await q(
          `UPDATE ${t.identities} SET suspended_at = NULL, suspended_reason = NULL
           WHERE identity = $1 AND suspended_at IS NOT NULL`,
          [identity]
        )
        if (rowCount === 1) return 'ok'
        return (await exists(identity)) ? 'not-suspended' : 'unknown-identity'
      },

      deleteIdentity: async (identity, at) =>
        this.transaction<'ok' | 'unknown-identity'>(async c => {
          const { rowCount } = await q(
            `DELETE FROM ${t.identities} WHERE identity = $1`,
            [identity],
            c
          )
          if (rowCount === 0) return ['unknown-identity', false]
          // The tombstone, in the same transaction: the identity can never be created again.
          await q(
            `INSERT INTO ${t.deletedIdentities} (identity, deleted_at) VALUES ($1, $2)
             ON CONFLICT (identity) DO NOTHING`,
            [identity, at],
            c
          )
          return ['ok', true]
        }),
    }
  }

  private challengeStore(): ChallengeStore {
    const t = this.tables
    return {
      create: async (nonce, identity, ttlMs) => {
        await this.query(
          `INSERT INTO ${t.challenges} (nonce, identity, expires_at) VALUES ($1, $2, $3)
           ON CONFLICT (nonce) DO UPDATE SET identity = EXCLUDED.identity, expires_at = EXCLUDED.expires_at`,
          [nonce, identity, this.now() + ttlMs]
        )
      },
      peek: async nonce => {
        const { rows } = await this.query<{ identity: string }>(
          `SELECT identity FROM ${t.challenges} WHERE nonce = $1 AND expires_at > $2`,
          [nonce, this.now()]
        )
        return rows[0]?.identity
      },
      consume: async nonce => {
        const { rows } = await this.query<{ identity: string }>(
          `DELETE FROM ${t.challenges} WHERE nonce = $1 AND expires_at > $2 RETURNING identity`,
          [nonce, this.now()]
        )
        return rows[0]?.identity
      },
    }
  }

  private timeLockStore(scope: string): TimeLockStore {
    const t = this.tables
    const text = `INSERT INTO ${t.timeLocks} AS lock (scope, value, expires_at) VALUES ($1, $2, $3)
       ON CONFLICT (scope, value) DO UPDATE SET expires_at = EXCLUDED.expires_at
       WHERE lock.expires_at <= $4`
    return {
      reserve: async (value, ttlMs) => {
        const now = this.now()
        return (await this.query(text, [scope, value, now + ttlMs, now])).rowCount === 1
      },
    }
  }

  private keyStore(): KeyStore {
    const t = this.tables
    const columns = 'public_key, private_key, created_at, retire_at'
    const insert = `INSERT INTO ${t.keys} (kind, public_key, private_key, created_at, retire_at)
       VALUES ($1, $2, $3, $4, NULL) ON CONFLICT DO NOTHING`
    return {
      initKey: async (kind: KeyKind, key: StoredKey) => {
        await this.query(insert, [kind, key.publicKey, key.privateKey, key.createdAt])
        const { rows } = await this.query<KeyRow>(
          `SELECT ${columns} FROM ${t.keys} WHERE kind = $1 AND retire_at IS NULL`,
          [kind]
        )
        const row = rows[0]
        if (row === undefined) throw new Error('key store: no current key after initKey')
        return toStoredKey(row)
      },
      listKeys: async (kind, now) => {
        const { rows } = await this.query<KeyRow>(
          `SELECT ${columns} FROM ${t.keys}
           WHERE kind = $1 AND (retire_at IS NULL OR retire_at > $2)
           ORDER BY retire_at IS NULL DESC, retire_at DESC, created_at DESC`,
          [kind, now]
        )
        return rows.map(toStoredKey)
      },
      rotateKey: async (kind, key, retireAt) =>
        this.transaction(async c => {
          // Rotations of one kind run one at a time, so each sees the key the last one made.
          await this.simple(c, 'SELECT pg_advisory_xact_lock($1)', [
            advisoryKey(`${t.keys}:${kind}`),
          ])
          await this.query(
            `UPDATE ${t.keys} SET retire_at = $2 WHERE kind = $1 AND retire_at IS NULL`,
            [kind, retireAt],
            c
          )
          const { rowCount } = await this.query(
            insert,
            [kind, key.publicKey, key.privateKey, key.createdAt],
            c
          )
          if (rowCount !== 1) throw new Error('key store: that key was stored before')
          return [undefined, true]
        }),
      retireKey: async (kind, publicKey, retireAt) => {
        const { rowCount } = await this.query(
          `UPDATE ${t.keys} SET retire_at = LEAST(retire_at, $3)
           WHERE kind = $1 AND public_key = $2 AND retire_at IS NOT NULL AND retire_at > $4`,
          [kind, publicKey, retireAt, this.now()]
        )
        return rowCount === 1
      },
    }
  }
}
