/**
 * The SQLite drivers of the SQLite store: Node's built-in `node:sqlite` (`DatabaseSync`, Node.js
 * 22.13+ and 23.4+ without a flag) and the `better-sqlite3` package, behind one small synchronous
 * interface (prepare/run/get/all, exec, immediate transactions, pragmas, close).
 *
 * `driver: 'auto'` (the default) takes `node:sqlite` where the running Node.js has it, so the
 * embedded store needs no native build there, and `better-sqlite3` otherwise. Each driver is
 * loaded only when chosen, with a literal `require`, so bundlers see it; a missing one is
 * reported with what to install and which other store to choose, never as a bare
 * `Cannot find module`.
 */
import { existsSync } from 'node:fs'

/** A value bound to a statement parameter, or read from a column. */
export type SqliteValue = string | number | bigint | null | Uint8Array

/** A prepared statement. */
export interface SqliteStatement {
  run(...params: SqliteValue[]): { changes: number }
  get(...params: SqliteValue[]): Record<string, unknown> | undefined
  all(...params: SqliteValue[]): Record<string, unknown>[]
  /** The same statement answering only the first column of each row. */
  pluck(): { get(...params: SqliteValue[]): unknown; all(...params: SqliteValue[]): unknown[] }
}

const first = (row: Record<string, unknown>): unknown => Object.values(row)[0]

/** A statement from its three calls, with `pluck`. */
function statementOf(
  run: (params: SqliteValue[]) => { changes: number },
  get: (params: SqliteValue[]) => unknown,
  all: (params: SqliteValue[]) => unknown[]
): SqliteStatement {
  const row = (params: SqliteValue[]) => get(params) as Record<string, unknown> | undefined
  const rows = (params: SqliteValue[]) => all(params) as Record<string, unknown>[]
  return {
    run: (...params) => run(params),
    get: (...params) => row(params),
    all: (...params) => rows(params),
    pluck: () => ({
      get: (...params) => {
        const found = row(params)
        return found === undefined ? undefined : first(found)
      },
      all: (...params) => rows(params).map(first),
    }),
  }
}

/** An open SQLite connection, whichever driver holds it. */
export interface SqliteDriver {
  /** Which driver this is. */
  readonly name: SqliteDriverName
  /** The driver's own database object (a better-sqlite3 `Database` or a `DatabaseSync`). */
  readonly raw: unknown
  /** Whether the connection is open. */
  readonly open: boolean
  prepare(sql: string): SqliteStatement
  /** Runs one or more statements without parameters. */
  exec(sql: string): void
  /**
   * Wraps `fn` in a transaction begun with `BEGIN IMMEDIATE` (a savepoint when one is already
   * open): committed when it returns, rolled back when it throws. `fn` must be synchronous.
   */
  transaction<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R
  /** `PRAGMA <text>`; returns the first column of the first row, if any. */
  pragma(text: string): unknown
  close(): void
}

export type SqliteDriverName = 'node:sqlite' | 'better-sqlite3'

/** Which driver to use: `'auto'` takes node:sqlite where Node.js has it, else better-sqlite3. */
export type SqliteDriverChoice = SqliteDriverName | 'auto'

/** Loads a module by name (`require`); replaceable in tests. */
export type ModuleLoader = (name: 'node:sqlite' | 'better-sqlite3') => unknown

/** The parts of a better-sqlite3 `Database` the driver uses. */
export interface BetterSqlite3Database {
  readonly open: boolean
  readonly inTransaction: boolean
  prepare(sql: string): {
    run(...params: unknown[]): { changes: number }
    get(...params: unknown[]): unknown
    all(...params: unknown[]): unknown[]
  }
  exec(sql: string): unknown
  pragma(text: string, options?: { simple?: boolean }): unknown
  transaction<F extends (...args: never[]) => unknown>(fn: F): { immediate: F }
  close(): unknown
}

/** The parts of a node:sqlite `DatabaseSync` the driver uses. */
export interface NodeSqliteDatabase {
  prepare(sql: string): {
    run(...params: unknown[]): { changes: number | bigint }
    get(...params: unknown[]): unknown
    all(...params: unknown[]): unknown[]
  }
  exec(sql: string): void
  close(): void
}

type NodeSqliteModule = {
  DatabaseSync: new (path: string, options?: Record<string, unknown>) => NodeSqliteDatabase
}
type BetterSqlite3Constructor = new (
  path: string,
  options?: Record<string, unknown>
) => BetterSqlite3Database

/** Loads each driver with a literal `require` (bundlers see both; neither loads until asked). */
const defaultLoader: ModuleLoader = name => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  if (name === 'better-sqlite3') return require('better-sqlite3')
  return withoutSqliteWarning(
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    () => require('node:sqlite')
  )
}

/**
 * Runs `load` without the one-time "SQLite is an experimental feature" warning Node.js 22 and 23
 * print when node:sqlite is first loaded (every other warning passes through).
 */
function withoutSqliteWarning<T>(load: () => T): T {
  const emit = process.emitWarning
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const text = typeof warning === 'string' ? warning : warning.message
    const type = typeof rest[0] === 'string' ? rest[0] : (rest[0] as { type?: string })?.type
    const name = typeof warning === 'string' ? type : warning.name
    if (name === 'ExperimentalWarning' && /sqlite/i.test(text)) return
    ;(emit as (...args: unknown[]) => void).call(process, warning, ...rest)
  }) as typeof process.emitWarning
  try {
    return load()
  } finally {
    process.emitWarning = emit
  }
}

/** A driver is not installed or not available in this Node.js. */
export class SqliteDriverError extends Error {
  override readonly name = 'SqliteDriverError'
  constructor(
    message: string,
    readonly driver: SqliteDriverChoice
  ) {
    super(message)
  }
}

const OTHER_STORES =
  'or choose another store: memory: (in-process, nothing kept) or postgres://… ' +
  '(BETTER_AUTH_DATABASE, or the `database` option)'

const NEEDS_BETTER_SQLITE3 =
  'the SQLite store needs the better-sqlite3 package: npm install better-sqlite3'

function isMissing(error: unknown, name: string): boolean {
  const code = (error as { code?: string } | null)?.code
  if (code === 'ERR_UNKNOWN_BUILTIN_MODULE') return true
  if (code !== 'MODULE_NOT_FOUND' && code !== 'ERR_MODULE_NOT_FOUND') return false
  return String((error as Error).message).includes(name)
}

function loadNodeSqlite(loader: ModuleLoader): NodeSqliteModule | undefined {
  try {
    const module = loader('node:sqlite') as Partial<NodeSqliteModule> | undefined
    return typeof module?.DatabaseSync === 'function' ? (module as NodeSqliteModule) : undefined
  } catch (error) {
    if (isMissing(error, 'sqlite')) return undefined
    throw error
  }
}

function loadBetterSqlite3(loader: ModuleLoader): BetterSqlite3Constructor | undefined {
  let module: unknown
  try {
    module = loader('better-sqlite3')
  } catch (error) {
    if (isMissing(error, 'better-sqlite3')) return undefined
    // Installed, but its native part does not load (built for another Node.js, say).
    throw new SqliteDriverError(
      `better-sqlite3 is installed but does not load (${(error as Error).message.split('\n')[0]}); ` +
        `reinstall it (npm rebuild better-sqlite3), use Node.js 22.13+ for the built-in ` +
        `node:sqlite, ${OTHER_STORES}`,
      'better-sqlite3'
    )
  }
  const constructor = (module as { default?: unknown }).default ?? module
  return constructor as BetterSqlite3Constructor
}

/** Whether this Node.js has node:sqlite (22.13+, 23.4+; earlier 22.x behind a flag). */
export function hasNodeSqlite(loader: ModuleLoader = defaultLoader): boolean {
  return loadNodeSqlite(loader) !== undefined
}

export interface OpenSqliteOptions {
  driver?: SqliteDriverChoice
  /** Fail instead of creating the file when it does not exist. */
  mustExist?: boolean
  /** How modules are loaded, for tests. @default require */
  loader?: ModuleLoader
}

/** Opens `path` (`':memory:'` for a private in-memory database) with the chosen driver. */
export function openSqlite(path: string, options: OpenSqliteOptions = {}): SqliteDriver {
  const choice = options.driver ?? 'auto'
  const loader = options.loader ?? defaultLoader
  if (choice !== 'auto' && choice !== 'node:sqlite' && choice !== 'better-sqlite3') {
    throw new TypeError(`SQLite driver must be 'auto', 'node:sqlite' or 'better-sqlite3'`)
  }
  if (options.mustExist === true && path !== ':memory:' && path !== '' && !existsSync(path)) {
    throw new Error(`no SQLite database at ${path}`)
  }
  if (choice !== 'better-sqlite3') {
    const sqlite = loadNodeSqlite(loader)
    if (sqlite !== undefined) {
      return nodeSqliteDriver(new sqlite.DatabaseSync(path, { open: true }))
    }
    if (choice === 'node:sqlite') {
      throw new SqliteDriverError(
        `node:sqlite is not available in Node.js ${process.version} (it needs 22.13+ or 23.4+); ` +
          `use driver 'better-sqlite3' (npm install better-sqlite3), ${OTHER_STORES}`,
        choice
      )
    }
  }
  const Database = loadBetterSqlite3(loader)
  if (Database === undefined) {
    throw new SqliteDriverError(
      choice === 'auto'
        ? `${NEEDS_BETTER_SQLITE3} (Node.js ${process.version} has no built-in node:sqlite; ` +
            `22.13+ has), ${OTHER_STORES}`
        : `${NEEDS_BETTER_SQLITE3}, use driver 'node:sqlite' on Node.js 22.13+, ${OTHER_STORES}`,
      choice
    )
  }
  return betterSqlite3Driver(
    new Database(path, options.mustExist === true ? { fileMustExist: true } : {})
  )
}

/** Wraps a database opened elsewhere: a better-sqlite3 `Database` or a node:sqlite `DatabaseSync`. */
export function wrapSqlite(database: BetterSqlite3Database | NodeSqliteDatabase): SqliteDriver {
  return typeof (database as BetterSqlite3Database).pragma === 'function'
    ? betterSqlite3Driver(database as BetterSqlite3Database)
    : nodeSqliteDriver(database as NodeSqliteDatabase)
}

function betterSqlite3Driver(db: BetterSqlite3Database): SqliteDriver {
  return {
    name: 'better-sqlite3',
    raw: db,
    get open() {
      return db.open
    },
    prepare(sql) {
      const statement = db.prepare(sql)
      return statementOf(
        params => statement.run(...params),
        params => statement.get(...params),
        params => statement.all(...params)
      )
    },
    exec(sql) {
      db.exec(sql)
    },
    transaction<A extends unknown[], R>(fn: (...args: A) => R) {
      const run = db.transaction(fn as unknown as (...args: never[]) => R).immediate as unknown as (
        ...args: A
      ) => R
      return (...args: A) => run(...args)
    },
    pragma(text) {
      return db.pragma(text, { simple: true })
    },
    close() {
      if (db.open) db.close()
    },
  }
}

function nodeSqliteDriver(db: NodeSqliteDatabase): SqliteDriver {
  let open = true
  let depth = 0
  return {
    name: 'node:sqlite',
    raw: db,
    get open() {
      const isOpen = (db as { isOpen?: boolean }).isOpen
      return typeof isOpen === 'boolean' ? isOpen && open : open
    },
    prepare(sql) {
      const statement = db.prepare(sql)
      return statementOf(
        params => ({ changes: Number(statement.run(...params).changes) }),
        params => statement.get(...params),
        params => statement.all(...params)
      )
    },
    exec(sql) {
      db.exec(sql)
    },
    transaction<A extends unknown[], R>(fn: (...args: A) => R) {
      return (...args: A): R => {
        const savepoint = depth > 0 ? `better_auth_${depth}` : undefined
        db.exec(savepoint === undefined ? 'BEGIN IMMEDIATE' : `SAVEPOINT ${savepoint}`)
        depth++
        let result: R
        try {
          result = fn(...args)
        } catch (error) {
          depth--
          db.exec(
            savepoint === undefined ? 'ROLLBACK' : `ROLLBACK TO ${savepoint}; RELEASE ${savepoint}`
          )
          throw error
        }
        depth--
        try {
          db.exec(savepoint === undefined ? 'COMMIT' : `RELEASE ${savepoint}`)
        } catch (error) {
          if (savepoint === undefined) db.exec('ROLLBACK')
          throw error
        }
        return result
      }
    },
    pragma(text) {
      const row = db.prepare(`PRAGMA ${text}`).get() as Record<string, unknown> | undefined
      return row === undefined ? undefined : Object.values(row)[0]
    },
    close() {
      if (open) {
        open = false
        db.close()
      }
    },
  }
}
