/** What the SQL stores (SQLite, PostgreSQL) share: table names, identifier checks, schema, rows. */
import type { IdentityRecord, SessionState, StoredKey } from './types'

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,47}$/

/** Checks a schema name or table prefix, so it can be put into SQL text safely. */
export function sqlIdentifier(value: string, what: string): string {
  if (!IDENTIFIER.test(value)) {
    throw new TypeError(`${what} must match ${IDENTIFIER.source}, got ${JSON.stringify(value)}`)
  }
  return value
}

export interface TableNames {
  identities: string
  devices: string
  challenges: string
  timeLocks: string
  keys: string
  /** Deleted identities (tombstones): an identity deleted once is never created again. */
  deletedIdentities: string
  migrations: string
}

/** Quoted, optionally schema-qualified table names. */
export function tableNames(prefix: string, schema?: string): TableNames {
  sqlIdentifier(prefix === '' ? '_' : prefix, 'table prefix')
  const q = (name: string): string =>
    (schema === undefined ? '' : `"${sqlIdentifier(schema, 'schema')}".`) + `"${prefix}${name}"`
  return {
    identities: q('identities'),
    devices: q('devices'),
    challenges: q('challenges'),
    timeLocks: q('time_locks'),
    keys: q('keys'),
    deletedIdentities: q('deleted_identities'),
    migrations: q('migrations'),
  }
}

/** Time-lock scopes: refresh keys and access nonces share one table. */
export const SCOPE = { refreshKeys: 'refresh', accessNonces: 'nonce' } as const

export const DEFAULT_TABLE_PREFIX = 'better_auth_'

/** Where the two SQL dialects differ in the schema. */
export interface SqlDialect {
  /** The type of millisecond timestamps. */
  integer: 'INTEGER' | 'BIGINT'
  /** What follows the tables keyed by text (SQLite: `WITHOUT ROWID`). */
  tableOptions: string
  /** Whether `ALTER TABLE … ADD COLUMN IF NOT EXISTS` is understood (PostgreSQL; not SQLite). */
  addColumnIfNotExists?: boolean
}

/**
 * Schema versions; each runs once, in order, inside one transaction. A released version is never
 * edited: a change is a new version.
 */
export function migrations(t: TableNames, prefix: string, dialect: SqlDialect): string[] {
  const { integer, tableOptions } = dialect
  const options = tableOptions === '' ? '' : ` ${tableOptions}`
  const ifNotExists = dialect.addColumnIfNotExists === true ? ' IF NOT EXISTS' : ''
  const addColumns = (table: string, columns: string[]): string =>
    columns.map(column => `ALTER TABLE ${table} ADD COLUMN${ifNotExists} ${column};`).join('\n')
  return [
    `CREATE TABLE IF NOT EXISTS ${t.identities} (
       identity TEXT PRIMARY KEY,
       recovery_hash TEXT NOT NULL,
       created_at ${integer} NOT NULL
     )${options};
     CREATE TABLE IF NOT EXISTS ${t.devices} (
       identity TEXT NOT NULL REFERENCES ${t.identities} (identity) ON DELETE CASCADE,
       device TEXT NOT NULL,
       public_key TEXT NOT NULL,
       rotation_hash TEXT NOT NULL,
       PRIMARY KEY (identity, device)
     )${options};
     CREATE TABLE IF NOT EXISTS ${t.challenges} (
       nonce TEXT PRIMARY KEY,
       identity TEXT NOT NULL,
       expires_at ${integer} NOT NULL
     )${options};
     CREATE INDEX IF NOT EXISTS "${prefix}challenges_expiry" ON ${t.challenges} (expires_at);
     CREATE TABLE IF NOT EXISTS ${t.timeLocks} (
       scope TEXT NOT NULL,
       value TEXT NOT NULL,
       expires_at ${integer} NOT NULL,
       PRIMARY KEY (scope, value)
     )${options};
     CREATE INDEX IF NOT EXISTS "${prefix}time_locks_expiry" ON ${t.timeLocks} (expires_at);
     CREATE TABLE IF NOT EXISTS ${t.keys} (
       kind TEXT NOT NULL,
       public_key TEXT NOT NULL,
       private_key TEXT NOT NULL,
       created_at ${integer} NOT NULL,
       retire_at ${integer},
       PRIMARY KEY (kind, public_key)
     );
     CREATE UNIQUE INDEX IF NOT EXISTS "${prefix}keys_current" ON ${t.keys} (kind)
       WHERE retire_at IS NULL;`,
    // 2: tombstones. Deleting an identity records it here in the same transaction, and account
    // creation refuses a recorded identity, so a replayed createAccount cannot bring it back.
    `CREATE TABLE IF NOT EXISTS ${t.deletedIdentities} (
       identity TEXT PRIMARY KEY,
       deleted_at ${integer} NOT NULL
     )${options};
     CREATE INDEX IF NOT EXISTS "${prefix}challenges_expiry" ON ${t.challenges} (expires_at);
     CREATE INDEX IF NOT EXISTS "${prefix}time_locks_expiry" ON ${t.timeLocks} (expires_at);`,
    // 3: administration. When each device was created, last rotated and last used for a session;
    // suspension and ended sessions per identity and per device. Devices stored before have no
    // creation time (NULL). The migration runs once (versioned, in one transaction).
    addColumns(t.identities, [
      `suspended_at ${integer}`,
      'suspended_reason TEXT',
      `sessions_ended_at ${integer}`,
    ]) +
      '\n' +
      addColumns(t.devices, [
        `created_at ${integer}`,
        `rotated_at ${integer}`,
        `last_session_at ${integer}`,
        `sessions_ended_at ${integer}`,
      ]),
  ]
}

/** A row of the identity-with-devices query of the SQL stores (BIGINT columns as strings in pg). */
export interface IdentityRow {
  created_at: string | number | null
  suspended_at: string | number | null
  suspended_reason: string | null
  sessions_ended_at: string | number | null
  device: string | null
  device_created_at: string | number | null
  rotated_at: string | number | null
  last_session_at: string | number | null
  device_sessions_ended_at: string | number | null
}

/** The identity-with-devices query: one statement, so one consistent snapshot; `$1`/`?`: identity. */
export function identityRecordQuery(t: TableNames, placeholder: string): string {
  return `SELECT i.created_at, i.suspended_at, i.suspended_reason, i.sessions_ended_at,
       d.device, d.created_at AS device_created_at, d.rotated_at, d.last_session_at,
       d.sessions_ended_at AS device_sessions_ended_at
     FROM ${t.identities} i LEFT JOIN ${t.devices} d ON d.identity = i.identity
     WHERE i.identity = ${placeholder}
     ORDER BY COALESCE(d.created_at, 0), d.device`
}

const time = (value: string | number | null | undefined): number | null =>
  value === null || value === undefined ? null : Number(value)

/** The identity record from the rows of `identityRecordQuery` (undefined without rows). */
export function toIdentityRecord(
  identity: string,
  rows: IdentityRow[]
): IdentityRecord | undefined {
  const first = rows[0]
  if (first === undefined) return undefined
  return {
    identity,
    createdAt: time(first.created_at),
    suspendedAt: time(first.suspended_at),
    suspendedReason: first.suspended_reason,
    sessionsEndedAt: time(first.sessions_ended_at),
    devices: rows
      .filter(row => row.device !== null)
      .map(row => ({
        device: row.device as string,
        createdAt: time(row.device_created_at),
        rotatedAt: time(row.rotated_at),
        lastSessionAt: time(row.last_session_at),
        sessionsEndedAt: time(row.device_sessions_ended_at),
      })),
  }
}

/** A row of the session-state queries. */
export interface SessionStateRow {
  suspended_at: string | number | null
  sessions_ended_at: string | number | null
  device_sessions_ended_at?: string | number | null
  last_session_at?: string | number | null
}

/**
 * The session-state query of an identity (`withDevice` false; placeholders: identity) or of one
 * of its devices (placeholders: identity, device): one row when active, none otherwise.
 */
export function sessionStateQuery(
  t: TableNames,
  withDevice: boolean,
  placeholders: [string, string]
): string {
  const [identity, device] = placeholders
  if (!withDevice) {
    return `SELECT suspended_at, sessions_ended_at FROM ${t.identities} WHERE identity = ${identity}`
  }
  return `SELECT i.suspended_at, i.sessions_ended_at,
       d.sessions_ended_at AS device_sessions_ended_at, d.last_session_at
     FROM ${t.identities} i JOIN ${t.devices} d ON d.identity = i.identity
     WHERE i.identity = ${identity} AND d.device = ${device}`
}

/** The session state from a row of `sessionStateQuery`. */
export function toSessionState(row: SessionStateRow | undefined): SessionState | undefined {
  if (row === undefined) return undefined
  const identityEnded = time(row.sessions_ended_at)
  const deviceEnded = time(row.device_sessions_ended_at)
  return {
    suspendedAt: time(row.suspended_at),
    sessionsEndedAt:
      identityEnded === null || deviceEnded === null
        ? (identityEnded ?? deviceEnded)
        : Math.max(identityEnded, deviceEnded),
    lastSessionAt: time(row.last_session_at),
  }
}

/** `column = at` unless it already holds a later moment (portable: no GREATEST in SQLite). */
export const laterOf = (column: string, at: string): string =>
  `${column} = CASE WHEN ${column} IS NULL OR ${column} < ${at} THEN ${at} ELSE ${column} END`

/** A row of the keys table; PostgreSQL returns BIGINT columns as strings. */
export interface KeyRow {
  public_key: string
  private_key: string
  created_at: string | number
  retire_at: string | number | null
}

export const toStoredKey = (row: KeyRow): StoredKey => ({
  publicKey: row.public_key,
  privateKey: row.private_key,
  createdAt: Number(row.created_at),
  retireAt: row.retire_at === null ? null : Number(row.retire_at),
})
