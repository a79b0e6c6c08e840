/** The command line: keys, migrations, access-key rotation, and `serve`. */
import { createPrivateKey } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  BetterAuthClient,
  Blake3Hasher,
  FetchNetwork,
  NodeSigningKey,
  createBetterAuth,
} from '../../src'
import { SqliteStore } from '../../src/stores/sqlite'
import { until } from '../helpers'
import { POSTGRES_URL, dropSchema, uniqueName } from '../stores/services'
import { SwitchNetwork, cli, clientOn, serveCli, startServer } from './processes'

const dir = mkdtempSync(join(tmpdir(), 'better-auth-cli-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('keygen', () => {
  it('prints a P-256 private key (PEM or JWK) and its public key', async () => {
    const pem = await cli(['keygen'])
    expect(pem.code).toBe(0)
    const key = NodeSigningKey.from(pem.out)
    expect(pem.err).toContain(`public key: ${key.publicKeyText}`)
    const jwk = await cli(['keygen', '--format', 'jwk'])
    expect(createPrivateKey({ key: JSON.parse(jwk.out), format: 'jwk' }).asymmetricKeyType).toBe(
      'ec'
    )
    expect((await cli(['keygen', '--format', 'der'])).code).toBe(2)
  })

  it('writes a file only the owner can read, and never overwrites one', async () => {
    const file = join(dir, 'response.pem')
    expect((await cli(['keygen', '--out', file])).code).toBe(0)
    expect(statSync(file).mode & 0o777).toBe(0o600)
    const key = NodeSigningKey.from(readFileSync(file, 'utf8'))
    const again = await cli(['keygen', '--out', file])
    expect(again.code).toBe(1)
    expect(NodeSigningKey.from(readFileSync(file, 'utf8')).publicKeyText).toBe(key.publicKeyText)
  })
})

describe('migrate', () => {
  it('creates the tables once (SQLite and PostgreSQL), then reports them up to date', async () => {
    const database = `sqlite:${join(dir, 'migrate.db')}`
    expect(await cli(['migrate', '--database', database])).toMatchObject({
      code: 0,
      out: expect.stringMatching(/applied \d+ migration/),
    })
    expect((await cli(['migrate'], { BETTER_AUTH_DATABASE: database })).out).toContain('up to date')
    const schema = uniqueName('cli')
    try {
      const pg = `${POSTGRES_URL}?schema=${schema}`
      expect((await cli(['migrate', '--database', pg])).out).toMatch(/applied \d+ migration/)
      expect((await cli(['migrate', '--database', pg])).out).toContain('up to date')
    } finally {
      await dropSchema(schema)
    }
    // A database URL that cannot serve, or cannot be read, is a usage error (2).
    expect((await cli(['migrate', '--database', 'memory:'])).code).toBe(2)
    expect((await cli(['migrate', '--database', 'mysql://x'])).code).toBe(2)
    expect((await cli(['migrate'], { BETTER_AUTH_DATABASE: 'mysql://x' })).code).toBe(2)
    // A database that does not answer is a failure (1).
    const down = await cli(['migrate', '--database', 'postgres://u@127.0.0.1:1/x?timeout=500'])
    expect(down.code).toBe(1)
  })
})

describe('access keys', () => {
  it('rotates and retires the access key kept in the database; servers follow', async () => {
    const path = join(dir, 'keys.db')
    const env = { BETTER_AUTH_DATABASE: `sqlite:${path}` }
    expect((await cli(['migrate'], env)).code).toBe(0)
    const listed = await cli(['keys'], env)
    expect(listed.code).toBe(0)
    const first = /access\s+(\S+) current/.exec(listed.out)?.[1] as string
    expect(first).toMatch(/^1AAI/)

    const rotated = await cli(['rotate-access-key', '--retire-after', '600'], env)
    expect(rotated.code).toBe(0)
    const second = /access key (\S+) is current/.exec(rotated.out)?.[1] as string
    const after = (await cli(['keys'], env)).out
    expect(after).toContain(`${second} current`)
    expect(after).toMatch(new RegExp(`${first} retiring until \\S+Z`))

    // A server on the database signs with the new key and still accepts the old one.
    const store = new SqliteStore({ path, sweepIntervalMs: 0 })
    const auth = createBetterAuth({ store, keys: { env: false } })
    const keys = await auth.keys()
    expect(keys.accessIdentity).toBe(second)
    expect(keys.isTrustedAccessKey(first)).toBe(true)

    expect((await cli(['retire-access-key', second], env)).code).toBe(2)
    expect((await cli(['retire-access-key', first], env)).code).toBe(0)
    expect((await cli(['retire-access-key', first], env)).code).toBe(1)
    await keys.reload()
    expect(keys.isTrustedAccessKey(first)).toBe(false)
    await auth.close()
  })

  it('refuses to rotate an access key that comes from the environment', async () => {
    const env = {
      BETTER_AUTH_DATABASE: `sqlite:${join(dir, 'env.db')}`,
      BETTER_AUTH_ACCESS_KEY: NodeSigningKey.generate().toPem(),
    }
    const result = await cli(['rotate-access-key'], env)
    expect(result.code).toBe(2)
    expect(result.err).toContain('BETTER_AUTH_ACCESS_KEY')
  })

  it('keeps keys sealed with BETTER_AUTH_KEY_SECRET, and needs it to read them', async () => {
    const env = {
      BETTER_AUTH_DATABASE: `sqlite:${join(dir, 'sealed.db')}`,
      BETTER_AUTH_KEY_SECRET: 's3cret',
    }
    expect((await cli(['rotate-access-key'], env)).code).toBe(0)
    const without = await cli(['keys'], { BETTER_AUTH_DATABASE: env.BETTER_AUTH_DATABASE })
    expect(without.code).toBe(1)
    expect(without.err).toContain('BETTER_AUTH_KEY_SECRET')
  })

  it('needs a database that keeps keys', async () => {
    expect((await cli(['keys', '--database', 'memory:'])).code).toBe(2)
  })
})

describe('usage', () => {
  const COMMANDS = ['keygen', 'migrate', 'keys', 'rotate-access-key', 'retire-access-key', 'serve']

  it('prints the version', async () => {
    const { version } = JSON.parse(
      readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')
    ) as { version: string }
    for (const flag of ['--version', '-v']) {
      expect(await cli([flag])).toEqual({ code: 0, out: `${version}\n`, err: '' })
    }
  })

  it('answers --help on every command with its own usage, and exits 0', async () => {
    for (const command of COMMANDS) {
      for (const flag of ['--help', '-h']) {
        const result = await cli([command, flag])
        expect({ command, code: result.code }).toEqual({ command, code: 0 })
        expect(result.out).toContain(`usage: better-auth-protocol ${command}`)
      }
      expect((await cli(['help', command])).out).toContain(`usage: better-auth-protocol ${command}`)
    }
    const all = await cli(['--help'])
    expect(all.code).toBe(0)
    for (const command of COMMANDS) expect(all.out).toContain(`  ${command} `)
  })

  it('answers a usage error with a short hint and exit code 2, never the whole usage', async () => {
    const cases: [string[], RegExp][] = [
      [['frobnicate'], /unknown command: frobnicate\nsee 'better-auth-protocol --help'/],
      [['keygen', '--bogus'], /Unknown option '--bogus'\nsee 'better-auth-protocol keygen --help'/],
      [['keygen', '--format', 'der'], /--format must be pem or jwk/],
      [['serve', '--port', 'x'], /--port/],
      [['serve', '--trust-proxy', 'some'], /--trust-proxy/],
      [['serve', '--cors', 'not an origin'], /--cors/],
      [['serve', '--log-level', 'loud'], /--log-level/],
      [['serve', '--ecdsa', 'fast'], /--ecdsa: auto \| threadpool \| inline/],
      [['serve', '--prefix', 'auth'], /--prefix/],
      [['serve', '--database', 'memory:', '--redis', 'http://x'], /--redis/],
      [['retire-access-key'], /needs a PUBLIC_KEY/],
      [['keys', '--database', 'mysql://x'], /unsupported database URL/],
    ]
    for (const [args, message] of cases) {
      const result = await cli(args)
      expect({ args, code: result.code, out: result.out }).toEqual({ args, code: 2, out: '' })
      expect(result.err).toMatch(message)
      expect(result.err).toMatch(/^error: .*\nsee '.*--help'\n$/)
    }
    // No command at all: the usage, on stderr, exit 2.
    const none = await cli([])
    expect(none.code).toBe(2)
    expect(none.err).toContain('usage: better-auth-protocol')
  })
})

describe('--json', () => {
  it('keygen prints the key pair as JSON', async () => {
    const pem = await cli(['keygen', '--json'])
    expect(pem.code).toBe(0)
    const parsed = JSON.parse(pem.out) as { privateKey: string; publicKey: string }
    expect(NodeSigningKey.from(parsed.privateKey).publicKeyText).toBe(parsed.publicKey)
    const jwk = JSON.parse((await cli(['keygen', '--json', '--format', 'jwk'])).out) as {
      privateKey: object
    }
    expect(createPrivateKey({ key: jwk.privateKey as never, format: 'jwk' }).type).toBe('private')
    const file = join(dir, 'json.pem')
    const written = JSON.parse((await cli(['keygen', '--json', '--out', file])).out) as {
      file: string
      publicKey: string
    }
    expect(written.file).toBe(file)
    expect(NodeSigningKey.from(readFileSync(file, 'utf8')).publicKeyText).toBe(written.publicKey)
  })

  it('keys prints the response key and the access keys as JSON', async () => {
    const env = { BETTER_AUTH_DATABASE: `sqlite:${join(dir, 'json.db')}` }
    expect((await cli(['migrate'], env)).code).toBe(0)
    expect((await cli(['rotate-access-key', '--retire-after', '60'], env)).code).toBe(0)
    const listed = await cli(['keys', '--json'], env)
    expect(listed.code).toBe(0)
    const keys = JSON.parse(listed.out) as {
      response: string
      access: { publicKey: string; state: string; retireAt?: string }[]
    }
    expect(keys.response).toMatch(/^1AAI/)
    expect(keys.access.map(k => k.state)).toEqual(['current', 'retiring'])
    expect(keys.access[1]?.retireAt).toMatch(/Z$/)
  })
})

describe('keys never creates a database', () => {
  it('fails (1) on a SQLite file that does not exist, and creates nothing', async () => {
    const path = join(dir, 'typo.db')
    const result = await cli(['keys', '--database', `sqlite:${path}`])
    expect(result.code).toBe(1)
    expect(result.err).toContain(`no SQLite database at ${path}`)
    expect(existsSync(path)).toBe(false)
    expect(existsSync(`${path}-wal`)).toBe(false)
  })

  it('fails (1) on a database without the key table, and creates no table', async () => {
    const path = join(dir, 'empty.db')
    writeFileSync(path, '')
    const result = await cli(['keys', '--database', `sqlite:${path}`])
    expect(result.code).toBe(1)
    expect(result.err).toContain("run 'better-auth-protocol migrate' first")
    const store = new SqliteStore({ path, migrate: false, sweepIntervalMs: 0 })
    expect(store.db.prepare(`SELECT COUNT(*) FROM sqlite_master`).pluck().get()).toBe(0)
    await store.close()
    const schema = uniqueName('clikeys')
    const pg = await cli(['keys', '--database', `${POSTGRES_URL}?schema=${schema}`])
    expect(pg.code).toBe(1)
    expect(pg.err).toContain('has no key table')
  })
})

describe('serve', () => {
  it('runs the auth server: protocol endpoints, key endpoints, 404 and 405', async () => {
    const server = await startServer(
      'cli/index.ts',
      18250,
      {
        BETTER_AUTH_DATABASE: `sqlite:${join(dir, 'serve.db')}`,
      },
      ['serve']
    )
    try {
      const client = clientOn(new SwitchNetwork(server.url))
      await client.createAccount(new Blake3Hasher().sum(NodeSigningKey.generate().publicKeyText))
      await client.createSession()
      await client.refreshSession()
      await client.rotateDevice()

      const keyText = await (await fetch(`${server.url}/key/response`)).text()
      expect(keyText).toMatch(/^1AAI/)
      const published = (await (await fetch(`${server.url}/key/access`)).json()) as {
        payload: { access: { serverIdentity: string }; response: { accessKeys: unknown[] } }
      }
      expect(published.payload.access.serverIdentity).toBe(keyText)
      expect(published.payload.response.accessKeys).toHaveLength(1)

      const missing = await fetch(`${server.url}/nowhere`, { method: 'POST', body: '{}' })
      expect(missing.status).toBe(404)
      expect(await missing.json()).toMatchObject({ error: { code: 'BA604' } })
      const wrong = await fetch(`${server.url}/account/create`)
      expect([wrong.status, wrong.headers.get('allow')]).toEqual([405, 'POST'])
      const bad = await fetch(`${server.url}/account/create`, { method: 'POST', body: '{' })
      expect([bad.status, ((await bad.json()) as { error: { code: string } }).error.code]).toEqual([
        400,
        'BA101',
      ])

      // Liveness and readiness for a load balancer.
      const live = await fetch(`${server.url}/healthz`)
      expect([live.status, await live.json()]).toEqual([200, { status: 'ok' }])
      const ready = await fetch(`${server.url}/readyz`)
      expect([ready.status, await ready.json()]).toEqual([
        200,
        { status: 'ready', checks: { accounts: 'ok', challenges: 'ok', keys: 'ok' } },
      ])
      // SIGTERM: a graceful exit, code 0.
      const exited = new Promise(resolve => server.child.once('exit', code => resolve(code)))
      server.child.kill('SIGTERM')
      expect(await exited).toBe(0)
    } finally {
      await server.stop()
    }
  })
})

describe('serve options', () => {
  it('--prefix, --openapi, --cors, --trust-proxy, and one log line per request', async () => {
    const app = 'https://app.example.com'
    const server = await serveCli(
      [
        '--port',
        '0',
        '--prefix',
        '/auth',
        '--openapi',
        '--cors',
        `${app}, http://localhost:5173`,
        '--trust-proxy',
        '1',
        '--log-level',
        'info',
      ],
      { BETTER_AUTH_DATABASE: 'memory:', BETTER_AUTH_RATE_LIMIT: 'off' }
    )
    try {
      expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/auth$/)
      const origin = server.url.replace(/\/auth$/, '')
      // The protocol under the prefix: a whole client flow.
      const client = new BetterAuthClient({ network: new FetchNetwork(server.url) })
      await client.createAccount(new Blake3Hasher().sum(NodeSigningKey.generate().publicKeyText))
      await client.createSession()
      expect((await fetch(`${origin}/key/response`, { method: 'POST' })).status).toBe(404)

      // The OpenAPI document of those endpoints.
      const openapi = await fetch(`${server.url}/openapi.json`)
      expect(openapi.status).toBe(200)
      const document = (await openapi.json()) as { openapi: string; paths: object }
      expect(document.openapi).toBe('3.1.0')
      expect(Object.keys(document.paths)).toContain('/auth/account/create')

      // CORS: preflights of allowed origins, and the header on their replies; nothing for others.
      const preflight = (from: string) =>
        fetch(`${server.url}/account/create`, {
          method: 'OPTIONS',
          headers: {
            origin: from,
            'access-control-request-method': 'POST',
            'access-control-request-headers': 'content-type',
          },
        })
      const allowed = await preflight(app)
      expect(allowed.status).toBe(204)
      expect(allowed.headers.get('access-control-allow-origin')).toBe(app)
      expect(allowed.headers.get('access-control-allow-methods')).toContain('POST')
      expect(allowed.headers.get('access-control-allow-headers')).toContain('content-type')
      const other = await preflight('https://evil.example')
      expect(other.status).toBe(403)
      expect(other.headers.get('access-control-allow-origin')).toBeNull()
      const reply = await fetch(`${server.url}/key/response`, {
        method: 'POST',
        headers: { origin: 'http://localhost:5173' },
      })
      expect(reply.status).toBe(200)
      expect(reply.headers.get('access-control-allow-origin')).toBe('http://localhost:5173')
      expect(reply.headers.get('vary')).toMatch(/origin/i)
      const refused = await fetch(`${server.url}/key/response`, {
        method: 'POST',
        headers: { origin: 'https://evil.example' },
      })
      expect(refused.headers.get('access-control-allow-origin')).toBeNull()

      // Health endpoints stay on.
      expect((await fetch(`${origin}/healthz`)).status).toBe(200)

      // One line per request, with the client IP that one trusted proxy forwarded.
      await fetch(`${server.url}/key/response`, {
        method: 'POST',
        headers: { 'x-forwarded-for': '203.0.113.7' },
      })
      await until(() => server.err().includes(' 203.0.113.7\n'), {
        what: 'the log line of the last request',
      })
      const lines = server
        .err()
        .split('\n')
        .filter(line => / info (GET|POST|OPTIONS) /.test(line))
      expect(lines.some(l => / info POST \/auth\/account\/create 200 [\d.]+ms /.test(l))).toBe(true)
      expect(lines.some(l => / info OPTIONS \/auth\/account\/create 403 /.test(l))).toBe(true)
      expect(lines.some(l => / info GET \/healthz 200 /.test(l))).toBe(true)
      expect(lines.at(-1)).toMatch(/ info POST \/auth\/key\/response 200 [\d.]+ms 203\.0\.113\.7$/)
      // Each request: one line (4 of the client flow, the 404, openapi, 2 preflights, 2 replies,
      // healthz, the last one).
      expect(lines).toHaveLength(12)
    } finally {
      expect(await server.stop()).toBe(0)
    }
  })

  it('logs no request lines at --log-level warn', async () => {
    const server = await serveCli(['--port', '0', '--log-level', 'warn'], {
      BETTER_AUTH_DATABASE: 'memory:',
    })
    try {
      expect((await fetch(`${server.url}/key/response`, { method: 'POST' })).status).toBe(200)
      expect((await fetch(`${server.url}/openapi.json`)).status).toBe(404)
    } finally {
      await server.stop()
    }
    // Everything the server wrote, read to the end once it exited.
    expect(server.err()).not.toMatch(/ info /)
  })
})
