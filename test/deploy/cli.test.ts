/** The command line: keys, migrations, access-key rotation, and `serve`. */
import { createPrivateKey } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Blake3Hasher, NodeSigningKey, createBetterAuth } from '../../src'
import { runCli, type CliIo } from '../../src/cli'
import { SqliteStore } from '../../src/stores/sqlite'
import { POSTGRES_URL, dropSchema, uniqueName } from '../stores/services'
import { SwitchNetwork, clientOn, startServer } from './processes'

const dir = mkdtempSync(join(tmpdir(), 'better-auth-cli-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

async function cli(args: string[], env: Record<string, string> = {}) {
  let out = ''
  let err = ''
  const io: CliIo = { out: t => void (out += t), err: t => void (err += t), env }
  const code = await runCli(args, io)
  return { code, out, err }
}

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
    expect((await cli(['migrate', '--database', 'memory:'])).code).toBe(2)
    expect((await cli(['migrate', '--database', 'mysql://x'])).code).toBe(1)
  })
})

describe('access keys', () => {
  it('rotates and retires the access key kept in the database; servers follow', async () => {
    const path = join(dir, 'keys.db')
    const env = { BETTER_AUTH_DATABASE: `sqlite:${path}` }
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

it('answers unknown commands and bad options with the usage and exit code 2', async () => {
  for (const args of [['frobnicate'], [], ['keygen', '--bogus']]) {
    const result = await cli(args)
    expect(result.code).toBe(2)
    expect(result.out + result.err).toContain('usage: better-auth-protocol')
  }
  expect((await cli(['help'])).code).toBe(0)
})

describe('serve', () => {
  it('runs the auth server: protocol endpoints, key endpoints, 404 and 405', async () => {
    const server = await startServer(
      'src/cli.ts',
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
