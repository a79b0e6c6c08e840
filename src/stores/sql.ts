/** What the SQL stores (SQLite, PostgreSQL) share: table names, identifier checks, schema, rows. */
import type { StoredKey } from './types'

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
}

/**
 * Schema versions; each runs once, in order, inside one transaction. A released version is never
 * edited: a change is a new version.
 */
export function migrations(t: TableNames, prefix: string, dialect: SqlDialect): string[] {
  const { integer, tableOptions } = dialect
  const options = tableOptions === '' ? '' : ` ${tableOptions}`
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
  ]
}

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
