import { Pool } from 'pg'
import { PostgresStore } from '../../src/stores/postgres'
import { migrations, type TableNames } from '../../src/stores/sql'
import { Clock } from '../helpers'
import {
  describeStoreConformance,
  randomAccount,
  randomHash,
  randomKey,
  type StoreHarness,
} from './conformance'
import { POSTGRES_URL, dropSchema, uniqueName } from './services'
import { expectSchema2AccountUpgraded } from './upgrade'

type Harness = StoreHarness & { store: PostgresStore; schema: string }

/** Writes an account's identity (created at `createdAt`) and device rows as early schemas held them. */
async function insertAccount(
  pool: Pool,
  t: TableNames,
  a: ReturnType<typeof randomAccount>,
  createdAt: number
): Promise<void> {
  await pool.query(`INSERT INTO ${t.identities} VALUES ($1, $2, $3)`, [
    a.identity,
    a.recoveryHash,
    createdAt,
  ])
  await pool.query(`INSERT INTO ${t.devices} VALUES ($1, $2, $3, $4)`, [
    a.identity,
    a.device,
    a.publicKey,
    a.rotationHash,
  ])
}

function harness(store: PostgresStore, schema: string, clock: Clock): Harness {
  return {
    store,
    schema,
    accounts: store.accounts,
    challenges: store.challenges,
    refreshKeys: store.refreshKeys,
    accessNonces: store.accessNonces,
    keys: store.keys,
    now: clock.now,
    advance: async ms => clock.advance(ms / 1000),
  }
}

async function teardown(h: StoreHarness): Promise<void> {
  const { store, schema } = h as Harness
  await store.close()
  await dropSchema(schema)
}

describeStoreConformance(
  'postgres',
  async () => {
    const clock = new Clock()
    const schema = uniqueName('pg')
    const store = new PostgresStore({
      connectionString: POSTGRES_URL,
      schema,
      now: clock.now,
      sweepIntervalMs: 0,
    })
    return {
      ...harness(store, schema, clock),
      // A new store object (and pool) on the same schema, as a restarted instance.
      reopen: async () =>
        new PostgresStore({ connectionString: POSTGRES_URL, schema, sweepIntervalMs: 0 }),
    }
  },
  teardown,
  { parts: ['accounts', 'admin', 'ephemeral', 'keys'] }
)

describe('PostgresStore', () => {
  const schema = uniqueName('pgx')
  const pool = new Pool({ connectionString: POSTGRES_URL, max: 4 })
  afterAll(async () => {
    await pool.end()
    await dropSchema(schema)
  })

  const account = randomAccount

  it('migrates once, idempotently, even when instances start together', async () => {
    const stores = Array.from(
      { length: 5 },
      () => new PostgresStore({ pool, schema, sweepIntervalMs: 0 })
    )
    const steps = await Promise.all(stores.map(s => s.migrate()))
    expect(steps.slice().sort()).toEqual([0, 0, 0, 0, 3])
    const { rows } = await pool.query(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1`,
      [schema]
    )
    expect(rows.map(r => r.table_name)).toEqual([
      'better_auth_challenges',
      'better_auth_deleted_identities',
      'better_auth_devices',
      'better_auth_identities',
      'better_auth_keys',
      'better_auth_migrations',
      'better_auth_time_locks',
    ])
    await Promise.all(stores.map(s => s.close()))
  })

  it('shares a pool without ending it, and sees what another instance wrote', async () => {
    const a = new PostgresStore({ pool, schema, sweepIntervalMs: 0 })
    const b = new PostgresStore({ pool, schema, sweepIntervalMs: 0 })
    const acc = account()
    expect(await a.accounts.createAccount(acc)).toBe(true)
    expect(await b.accounts.createAccount(acc)).toBe(false)
    expect(await b.accounts.getRecoveryHash(acc.identity)).toBe(acc.recoveryHash)
    await a.close()
    await b.close()
    expect((await pool.query('SELECT 1 AS one')).rows[0].one).toBe(1)
  })

  it('sweeps expired challenges, time-locks and retired keys', async () => {
    const clock = new Clock()
    const sweepSchema = uniqueName('pgsweep')
    const store = new PostgresStore({
      pool,
      schema: sweepSchema,
      now: clock.now,
      sweepIntervalMs: 0,
    })
    try {
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
      clock.advance(2)
      expect(await store.sweep()).toBe(3)
      const count = async (table: string) =>
        Number((await pool.query(`SELECT COUNT(*) AS n FROM ${table}`)).rows[0].n)
      expect(await count(store.tables.challenges)).toBe(0)
      expect(await count(store.tables.timeLocks)).toBe(1)
      expect(await count(store.tables.keys)).toBe(1)
    } finally {
      await store.close()
      await dropSchema(sweepSchema)
    }
  })

  it('rejects when PostgreSQL cannot be reached (recovery: test/deploy/faults.test.ts)', async () => {
    const store = new PostgresStore({
      connectionString: 'postgres://postgres@127.0.0.1:18299/test',
      poolConfig: { connectionTimeoutMillis: 500 },
      sweepIntervalMs: 0,
    })
    await expect(store.accounts.hasIdentity(randomHash())).rejects.toThrow()
    await expect(store.challenges.peek('0A')).rejects.toThrow()
    await store.close()
  })

  it('migrates a schema of version 1 to the tombstones, keeping its accounts', async () => {
    const v1 = uniqueName('pgv1')
    const store = new PostgresStore({ pool, schema: v1, sweepIntervalMs: 0 })
    const t = store.tables
    try {
      // The schema as version 1 left it.
      await pool.query(`CREATE SCHEMA "${v1}"`)
      await pool.query(
        `CREATE TABLE ${t.migrations} (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`
      )
      await pool.query(
        migrations(t, 'better_auth_', { integer: 'BIGINT', tableOptions: '' })[0] as string
      )
      await pool.query(`INSERT INTO ${t.migrations} VALUES (1, 0)`)
      const a = account()
      await insertAccount(pool, t, a, 0)

      expect(await store.migrate()).toBe(2)
      expect(await store.migrate()).toBe(0)
      expect(await store.accounts.getRecoveryHash(a.identity)).toBe(a.recoveryHash)
      expect(
        await store.accounts.rotate(a.identity, a.device, a.rotationHash, a, {
          kind: 'deleteIdentity',
        })
      ).toBe('ok')
      expect(await store.accounts.createAccount(a)).toBe(false)
    } finally {
      await store.close()
      await dropSchema(v1)
    }
  })

  it('upgrades a schema of version 2 in place to administration (version 3), idempotently', async () => {
    const v2 = uniqueName('pgv2')
    const clock = new Clock()
    const store = new PostgresStore({ pool, schema: v2, now: clock.now, sweepIntervalMs: 0 })
    const t = store.tables
    try {
      // The schema as version 2 left it, with an account.
      await pool.query(`CREATE SCHEMA "${v2}"`)
      await pool.query(
        `CREATE TABLE ${t.migrations} (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`
      )
      const steps = migrations(t, 'better_auth_', {
        integer: 'BIGINT',
        tableOptions: '',
        addColumnIfNotExists: true,
      })
      await pool.query(steps[0] as string)
      await pool.query(steps[1] as string)
      await pool.query(`INSERT INTO ${t.migrations} VALUES (1, 0), (2, 0)`)
      const a = account()
      await insertAccount(pool, t, a, 7)

      // Several instances upgrading at once: one runs the step.
      const others = Array.from(
        { length: 3 },
        () => new PostgresStore({ pool, schema: v2, sweepIntervalMs: 0 })
      )
      const ran = await Promise.all([store.migrate(), ...others.map(o => o.migrate())])
      await Promise.all(others.map(o => o.close()))
      expect(ran.slice().sort()).toEqual([0, 0, 0, 1])
      expect(await store.migrate()).toBe(0)
      await expectSchema2AccountUpgraded(store.accounts, a)
      expect(await store.accounts.endSessions(a.identity, clock.ms, a.device)).toBe('ok')
      expect(await store.accounts.getSessionState(a.identity, a.device)).toEqual({
        suspendedAt: null,
        sessionsEndedAt: clock.ms,
        lastSessionAt: null,
      })
      // The step is idempotent on its own too (ADD COLUMN IF NOT EXISTS): run again, it changes nothing.
      await pool.query(steps[2] as string)
      expect(await store.accounts.getSessionState(a.identity, a.device)).toEqual({
        suspendedAt: null,
        sessionsEndedAt: clock.ms,
        lastSessionAt: null,
      })
    } finally {
      await store.close()
      await dropSchema(v2)
    }
  })

  it('rejects a schema name that is not a plain identifier', () => {
    expect(() => new PostgresStore({ pool, schema: 'a"b' })).toThrow(TypeError)
  })
})
