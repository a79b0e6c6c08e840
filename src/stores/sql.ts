/** What the SQL stores (SQLite, PostgreSQL) share: table names and identifier checks. */

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
    migrations: q('migrations'),
  }
}

/** Time-lock scopes: refresh keys and access nonces share one table. */
export const SCOPE = { refreshKeys: 'refresh', accessNonces: 'nonce' } as const

export const DEFAULT_TABLE_PREFIX = 'better_auth_'
