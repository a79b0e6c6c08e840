/**
 * `better-auth-protocol admin …` against databases made by real flows (an in-process server on
 * the same SQLite file or PostgreSQL schema), and `serve --admin-token` (the admin endpoints of
 * the CLI's server).
 */
import { createHash } from 'node:crypto'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import {
  BetterAuthClient,
  BetterAuthError,
  Blake3Hasher,
  FetchNetwork,
  NodeSigningKey,
  createBetterAuth,
  type AuditEvent,
  type BetterAuthServer,
  type Network,
  type Operation,
  type ServerStore,
} from '../../src'
import { SqliteStore } from '../../src/stores/sqlite'
import { PostgresStore } from '../../src/stores/postgres'
import { POSTGRES_URL, dropSchema, uniqueName } from '../stores/services'
import { cli, serveCli } from './processes'

const dir = mkdtempSync(join(tmpdir(), 'better-auth-cli-admin-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const silent = { error: () => {}, warn: () => {}, info: () => {}, debug: () => {} }

/** A network calling a core in process (its protocol endpoints). */
function networkOf(auth: BetterAuthServer): Network {
  const byPath = new Map(auth.routes().map(r => [r.path, r.endpoint]))
  return {
    async send(path, body) {
      const endpoint = byPath.get(path)
      if (endpoint === undefined) return { status: 404, body: '' }
      const result = await auth.handle(endpoint as Operation, body)
      return { status: result.status, body: result.body }
    },
  }
}

/** A server on `store` and a client of it with an account and a session. */
async function withAccount(store: ServerStore) {
  const auth = createBetterAuth({ store, keys: { env: false }, rateLimit: false, logger: silent })
  const client = new BetterAuthClient({ network: networkOf(auth) })
  await client.createAccount(new Blake3Hasher().sum(NodeSigningKey.generate().publicKeyText))
  await client.createSession()
  return { auth, client, identity: await client.identity(), device: await client.device() }
}

/** The code of what a client call threw. */
async function codeOf(call: Promise<unknown>): Promise<string> {
  try {
    await call
  } catch (error) {
    if (error instanceof BetterAuthError) return error.code
    throw error
  }
  return 'ok'
}

/** Every row of every table of a SQLite database, to show that nothing changed. */
async function contentsOf(path: string): Promise<string> {
  const store = new SqliteStore({ path, create: false, migrate: false, sweepIntervalMs: 0 })
  try {
    const tables = store.db
      .prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
      .pluck()
      .all() as string[]
    const rows = tables.map(table => [table, store.db.prepare(`SELECT * FROM "${table}"`).all()])
    return createHash('sha256').update(JSON.stringify(rows)).digest('hex')
  } finally {
    await store.close()
  }
}

type Shown = {
  identity: string
  createdAt: number
  suspendedAt: number | null
  suspendedReason: string | null
  sessionsEndedAt: number | null
  devices: {
    device: string
    createdAt: number | null
    rotatedAt: number | null
    lastSessionAt: number | null
  }[]
}

describe('admin on a SQLite database', () => {
  const path = join(dir, 'admin.db')
  const database = `sqlite:${path}`
  const env = { BETTER_AUTH_DATABASE: database }
  let store: SqliteStore
  let account: Awaited<ReturnType<typeof withAccount>>

  beforeAll(async () => {
    store = new SqliteStore({ path, sweepIntervalMs: 0 })
    account = await withAccount(store)
  })
  afterAll(() => account.auth.close())

  it('show lists the identity and its device (--json and text)', async () => {
    const started = Date.now()
    // The last session is recorded off the request's path.
    let shown: Shown | undefined
    for (let i = 0; i < 50 && (shown?.devices[0]?.lastSessionAt ?? null) === null; i++) {
      await new Promise(resolve => setTimeout(resolve, 10))
      const result = await cli([
        'admin',
        'show',
        account.identity,
        '--json',
        '--database',
        database,
      ])
      expect(result).toMatchObject({ code: 0, err: '' })
      shown = JSON.parse(result.out) as Shown
    }
    expect(shown).toEqual({
      identity: account.identity,
      createdAt: expect.any(Number),
      suspendedAt: null,
      suspendedReason: null,
      sessionsEndedAt: null,
      devices: [
        {
          device: account.device,
          createdAt: expect.any(Number),
          rotatedAt: null,
          lastSessionAt: expect.any(Number),
          sessionsEndedAt: null,
        },
      ],
    })
    expect(shown?.devices[0]?.lastSessionAt).toBeLessThanOrEqual(started)

    const text = await cli(['admin', 'show', account.identity], env)
    expect(text.code).toBe(0)
    const lines = text.out.split('\n')
    expect(lines[0]).toBe(`identity        ${account.identity}`)
    expect(text.out).toMatch(/^created {9}\d{4}-\d\d-\d\dT[\d:.]+Z$/m)
    expect(text.out).toContain('suspended       no\n')
    expect(text.out).toContain('sessions ended  never\n')
    expect(text.out).toContain('devices         1\n')
    expect(text.out).toContain(`  ${account.device}\n`)
    expect(text.out).toMatch(/^ {4}created {9}\S+Z$/m)
    expect(text.out).toContain('    last rotated    never\n')
    expect(text.out).toMatch(/^ {4}last session {4}\S+Z$/m)
  })

  it('end-sessions: a refresh with the earlier token is refused (BA401); the event names the actor', async () => {
    const events: AuditEvent[] = []
    const result = await cli(
      ['admin', 'end-sessions', account.identity, '--json', '--actor', 'ops:alice'],
      env,
      events
    )
    expect(result).toMatchObject({ code: 0, err: '' })
    expect(JSON.parse(result.out)).toEqual({
      action: 'admin.sessions.ended',
      identity: account.identity,
      at: expect.any(Number),
      changed: true,
      actor: 'ops:alice',
    })
    expect(events).toEqual([
      expect.objectContaining({
        type: 'admin.sessions.ended',
        identity: account.identity,
        actor: 'ops:alice',
      }),
    ])
    expect(await codeOf(account.client.refreshSession())).toBe('BA401')
    // A new session works at once.
    await new Promise(resolve => setTimeout(resolve, 2))
    await account.client.createSession()
    await account.client.refreshSession()
  })

  it('suspend refuses new sessions (BA307) until reinstate; the actor defaults to cli:<user>', async () => {
    const events: AuditEvent[] = []
    const suspended = await cli(
      ['admin', 'suspend', account.identity, '--reason', 'chargeback'],
      env,
      events
    )
    expect(suspended.code).toBe(0)
    expect(suspended.out).toMatch(
      new RegExp(`^suspended identity ${account.identity} at \\S+Z\\n$`)
    )
    const actor = `cli:${userInfo().username}`
    expect(events.map(e => [e.type, e.actor, e.reason])).toEqual([
      ['admin.identity.suspended', actor, 'chargeback'],
    ])
    expect(await codeOf(account.client.createSession())).toBe('BA307')
    expect(await codeOf(account.client.refreshSession())).toBe('BA307')
    const shown = JSON.parse((await cli(['admin', 'show', account.identity, '--json'], env)).out)
    expect(shown).toMatchObject({ suspendedAt: expect.any(Number), suspendedReason: 'chargeback' })
    expect((await cli(['admin', 'show', account.identity], env)).out).toMatch(
      /^suspended {7}since \S+Z \(chargeback\)$/m
    )

    const again = await cli(['admin', 'suspend', account.identity, '--json'], env)
    expect(JSON.parse(again.out)).toMatchObject({ changed: false, actor })

    const reinstated = await cli(['admin', 'reinstate', account.identity], env)
    expect(reinstated).toMatchObject({ code: 0, out: `reinstated identity ${account.identity}\n` })
    await new Promise(resolve => setTimeout(resolve, 2))
    await account.client.createSession()
    await account.client.refreshSession()
    expect((await cli(['admin', 'reinstate', account.identity], env)).out).toBe(
      `identity ${account.identity} is not suspended; nothing changed\n`
    )
  })

  it('an unknown identity or device: exit 1 with BA608, the database unchanged', async () => {
    const before = await contentsOf(path)
    const unknown = new Blake3Hasher().sum('nobody')
    const cases = [
      ['show', unknown],
      ['revoke-device', unknown, account.device],
      ['revoke-device', account.identity, unknown],
      ['end-sessions', unknown],
      ['end-sessions', account.identity, '--device', unknown],
      ['suspend', unknown],
      ['reinstate', unknown],
      ['delete', unknown, '--yes'],
    ]
    for (const args of cases) {
      const result = await cli(['admin', ...args], env)
      expect({ args, code: result.code, out: result.out }).toEqual({ args, code: 1, out: '' })
      expect(result.err).toMatch(/^error: BA608 unknown (identity|device); nothing was changed\n$/)
      const json = await cli(['admin', ...args, '--json'], env)
      expect(json.code).toBe(1)
      expect(JSON.parse(json.out)).toEqual({
        error: { code: 'BA608', message: expect.stringContaining('nothing was changed') },
      })
    }
    expect(await contentsOf(path)).toBe(before)
  })

  it('revoke-device: the device is gone, its session refused (BA301)', async () => {
    const result = await cli(
      ['admin', 'revoke-device', account.identity, account.device, '--actor', 'ops:bob'],
      env
    )
    expect(result).toMatchObject({
      code: 0,
      out: `revoked device ${account.device} of identity ${account.identity}\n`,
    })
    const shown = JSON.parse((await cli(['admin', 'show', account.identity, '--json'], env)).out)
    expect(shown.devices).toEqual([])
    expect((await cli(['admin', 'show', account.identity], env)).out).toContain(
      'devices         0 (recovery only)\n'
    )
    expect(await codeOf(account.client.refreshSession())).toBe('BA301')
    expect(await codeOf(account.client.createSession())).toBe('BA301')
  })

  it('delete needs --yes, then deletes for good', async () => {
    const other = await withAccount(new SqliteStore({ path, sweepIntervalMs: 0 }))
    try {
      const refused = await cli(['admin', 'delete', other.identity], env)
      expect(refused.code).toBe(2)
      expect(refused.err).toMatch(/--yes/)
      expect((await cli(['admin', 'show', other.identity], env)).code).toBe(0)
      const deleted = await cli(['admin', 'delete', other.identity, '--yes', '--json'], env)
      expect(JSON.parse(deleted.out)).toMatchObject({
        action: 'admin.identity.deleted',
        identity: other.identity,
        changed: true,
      })
      expect((await cli(['admin', 'show', other.identity], env)).code).toBe(1)
      expect(await codeOf(other.client.refreshSession())).toBe('BA301')
    } finally {
      await other.auth.close()
    }
  })
})

describe('admin on PostgreSQL', () => {
  it('shows and suspends an identity made by a real flow', async () => {
    const schema = uniqueName('cliadmin')
    const database = `${POSTGRES_URL}?schema=${schema}`
    const store = new PostgresStore({ connectionString: POSTGRES_URL, schema, sweepIntervalMs: 0 })
    const account = await withAccount(store)
    try {
      const shown = await cli(['admin', 'show', account.identity, '--json', '--database', database])
      expect(shown.code).toBe(0)
      expect((JSON.parse(shown.out) as Shown).devices.map(d => d.device)).toEqual([account.device])
      expect((await cli(['admin', 'suspend', account.identity, '--database', database])).code).toBe(
        0
      )
      expect(await codeOf(account.client.createSession())).toBe('BA307')
    } finally {
      await account.auth.close()
      await dropSchema(schema)
    }
  })
})

describe('admin never creates a database', () => {
  it('fails (1) on a SQLite file that does not exist, and creates nothing', async () => {
    const path = join(dir, 'typo.db')
    const result = await cli(['admin', 'show', 'x', '--database', `sqlite:${path}`])
    expect(result.code).toBe(1)
    expect(result.err).toContain(`no SQLite database at ${path}`)
    expect(existsSync(path)).toBe(false)
  })

  it('fails (1) on a database without tables, and creates none', async () => {
    const path = join(dir, 'empty.db')
    await new SqliteStore({ path, migrate: false, sweepIntervalMs: 0 }).close()
    const result = await cli(['admin', 'show', 'x', '--database', `sqlite:${path}`])
    expect(result.code).toBe(1)
    expect(result.err).toContain("run 'better-auth-protocol migrate' first")
    const store = new SqliteStore({ path, migrate: false, sweepIntervalMs: 0 })
    expect(store.db.prepare(`SELECT COUNT(*) FROM sqlite_master`).pluck().get()).toBe(0)
    await store.close()
  })
})

describe('admin usage', () => {
  const COMMANDS = ['show', 'revoke-device', 'end-sessions', 'suspend', 'reinstate', 'delete']

  it('answers --help on admin and on each command, exit 0', async () => {
    for (const command of COMMANDS) {
      for (const flag of ['--help', '-h']) {
        const result = await cli(['admin', command, flag])
        expect({ command, code: result.code, err: result.err }).toEqual({
          command,
          code: 0,
          err: '',
        })
        expect(result.out).toContain(`usage: better-auth-protocol admin ${command}`)
      }
      expect((await cli(['admin', 'help', command])).out).toContain(
        `usage: better-auth-protocol admin ${command}`
      )
    }
    for (const args of [
      ['admin', '--help'],
      ['admin', 'help'],
      ['help', 'admin'],
      ['admin', '-h'],
    ]) {
      const result = await cli(args)
      expect(result.code).toBe(0)
      for (const command of COMMANDS) expect(result.out).toContain(`  ${command} `)
    }
    expect((await cli(['--help'])).out).toContain('  admin ')
    // No command: the usage on stderr, exit 2.
    const none = await cli(['admin'])
    expect(none.code).toBe(2)
    expect(none.err).toContain('usage: better-auth-protocol admin <command>')
  })

  it('answers a usage error with a short hint and exit 2, touching no database', async () => {
    const path = join(dir, 'usage.db')
    const database = ['--database', `sqlite:${path}`]
    const id = new Blake3Hasher().sum('someone')
    const cases: [string[], RegExp][] = [
      [
        ['admin', 'frobnicate'],
        /unknown admin command: frobnicate\nsee 'better-auth-protocol admin --help'/,
      ],
      [
        ['admin', 'show'],
        /admin show needs IDENTITY\nsee 'better-auth-protocol admin show --help'/,
      ],
      [['admin', 'show', id, 'extra'], /unexpected argument: extra/],
      [['admin', 'revoke-device', id], /needs IDENTITY and DEVICE/],
      [['admin', 'show', id, '--bogus'], /Unknown option '--bogus'/],
      [['admin', 'show', id, '--actor', 'x'], /Unknown option '--actor'/],
      [['admin', 'suspend', id, '--device', 'x'], /Unknown option '--device'/],
      [['admin', 'delete', id], /admin delete is permanent: add --yes/],
      [['admin', 'show', id, '--database', 'memory:'], /memory: keeps no accounts/],
      [['admin', 'show', id, '--database', 'mysql://x'], /unsupported database URL/],
    ]
    for (const [args, message] of cases) {
      const result = await cli(args)
      expect({ args, code: result.code, out: result.out }).toEqual({ args, code: 2, out: '' })
      expect(result.err).toMatch(message)
      expect(result.err).toMatch(/^error: .*\nsee 'better-auth-protocol admin.*--help'\n$/)
    }
    // Arguments the action refuses (an actor or reason with control characters, an empty
    // identity): exit 2 too, before the database is opened or changed.
    expect(await cli(['migrate', ...database])).toMatchObject({ code: 0 })
    const before = await contentsOf(path)
    for (const args of [
      ['suspend', id, '--reason', 'a\nb'],
      ['suspend', id, '--actor', 'a\u0007'],
      ['end-sessions', ''],
    ]) {
      const result = await cli(['admin', ...args, ...database])
      expect({ args, code: result.code }).toEqual({ args, code: 2 })
      expect(result.err).toMatch(/^error: invalid message \(/)
    }
    expect(await contentsOf(path)).toBe(before)
  })
})

describe('serve --admin-token', () => {
  it('serves the admin endpoints to the bearer token only; off without one', async () => {
    const token = 'a-long-admin-token-0123456789'
    const database = `sqlite:${join(dir, 'serve-admin.db')}`
    const server = await serveCli(['--port', '0', '--openapi', '--log-level', 'warn'], {
      BETTER_AUTH_DATABASE: database,
      BETTER_AUTH_RATE_LIMIT: 'off',
      BETTER_AUTH_ADMIN_TOKEN: token,
    })
    try {
      expect(server.out()).toContain(`admin: ${server.url}/admin\n`)
      const client = new BetterAuthClient({ network: new FetchNetwork(server.url) })
      await client.createAccount(new Blake3Hasher().sum(NodeSigningKey.generate().publicKeyText))
      await client.createSession()
      const identity = await client.identity()
      const at = `${server.url}/admin/identities/${identity}`
      const bearer = { authorization: `Bearer ${token}` }

      const none = await fetch(at)
      expect(none.status).toBe(401)
      expect(none.headers.get('www-authenticate')).toMatch(/^Bearer /)
      expect(((await none.json()) as { error: { code: string } }).error.code).toBe('BA404')
      const wrong = await fetch(`${at}/suspend`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}x` },
      })
      expect([
        wrong.status,
        ((await wrong.json()) as { error: { code: string } }).error.code,
      ]).toEqual([403, 'BA306'])

      const shown = await fetch(at, { headers: bearer })
      expect(shown.status).toBe(200)
      expect(shown.headers.get('cache-control')).toBe('no-store')
      expect(((await shown.json()) as Shown).suspendedAt).toBeNull()

      const suspended = await fetch(`${at}/suspend`, {
        method: 'POST',
        headers: { ...bearer, 'content-type': 'application/json', 'x-better-auth-actor': 'alice' },
        body: JSON.stringify({ reason: 'abuse' }),
      })
      expect(suspended.status).toBe(200)
      expect(await suspended.json()).toMatchObject({ changed: true, actor: 'admin-token:alice' })
      expect(await codeOf(client.createSession())).toBe('BA307')
      // The CLI sees the same database.
      const cliShown = await cli(['admin', 'show', identity, '--json', '--database', database])
      expect(JSON.parse(cliShown.out)).toMatchObject({ suspendedReason: 'abuse' })

      // The OpenAPI document describes them.
      const document = (await (await fetch(`${server.url}/openapi.json`)).json()) as {
        paths: Record<string, unknown>
      }
      expect(Object.keys(document.paths)).toContain('/admin/identities/{identity}/suspend')
    } finally {
      expect(await server.stop()).toBe(0)
    }

    const off = await serveCli(['--port', '0', '--log-level', 'warn'], {
      BETTER_AUTH_DATABASE: database,
      BETTER_AUTH_RATE_LIMIT: 'off',
    })
    try {
      expect(off.out()).not.toContain('admin:')
      const reply = await fetch(`${off.url}/admin/identities/x`, {
        headers: { authorization: `Bearer ${token}` },
      })
      expect(reply.status).toBe(404)
      expect(((await reply.json()) as { error: { code: string } }).error.code).toBe('BA604')
    } finally {
      await off.stop()
    }
  }, 60_000)

  it('refuses a short admin token as a usage error', async () => {
    const result = await cli(['serve', '--admin-token', 'short', '--database', 'memory:'])
    expect(result.code).toBe(2)
    expect(result.err).toMatch(/^error: --admin-token: at least 16 characters/)
    const env = await cli(['serve', '--database', 'memory:'], { BETTER_AUTH_ADMIN_TOKEN: 'x y' })
    expect(env.code).toBe(2)
    expect(env.err).toMatch(/^error: BETTER_AUTH_ADMIN_TOKEN: /)
  })
})
