/**
 * Server keys in a durable store: persistence, sealing, access-key rotation shared by
 * instances, the published access keys, and a resource server's remote key source.
 */
import {
  BetterAuthClient,
  NodeSigningKey,
  RemoteAccessKeys,
  ServerKeys,
  accessKeysSigningInput,
  decodeToken,
  openApiDocument,
  parseEnvelope,
  type KeyStore,
  type Network,
  type SigningKey,
} from '../../src'
import Ajv2020 from 'ajv/dist/2020'
import { ACCESS_KEYS_RESPONSE } from '../../src/server/openapi'
import { SqliteStore } from '../../src/stores/sqlite'
import {
  Clock,
  InProcessNetwork,
  accessBody,
  errorOf,
  hash,
  makeServer,
  nonce,
  type TestServer,
} from '../helpers'

/** A server on `store` with a shared clock. */
function serverOn(
  store: SqliteStore,
  clock: Clock,
  keys: Record<string, unknown> = {}
): TestServer {
  const server = makeServer({ store, now: clock.now, keys: { env: false, ...keys } })
  server.clock.ms = clock.ms
  return server
}

/** A client with an account and a session on `server`. */
async function session(server: TestServer, clock: Clock) {
  const client = new BetterAuthClient({ network: new InProcessNetwork(server), now: clock.now })
  await client.createAccount(hash(NodeSigningKey.generate().publicKeyText))
  await client.createSession()
  return client
}

describe('keys in a durable store', () => {
  it('survive a restart: same response and access keys, old tokens still verify', async () => {
    const clock = new Clock()
    const path = ':memory:'
    const store = new SqliteStore({ path, now: clock.now, sweepIntervalMs: 0 })
    const first = serverOn(store, clock)
    const client = await session(first, clock)
    const firstKeys = await first.auth.keys()
    // A second server on the same store (a restart, or another instance).
    const second = serverOn(store, clock)
    const secondKeys = await second.auth.keys()
    expect(secondKeys.responseIdentity).toBe(firstKeys.responseIdentity)
    expect(secondKeys.accessIdentity).toBe(firstKeys.accessIdentity)
    const token = await client.accessToken()
    await expect(second.auth.verifyToken(token)).resolves.toMatchObject({
      identity: await client.identity(),
    })
    await store.close()
  })

  it('keys from the options or the environment win over the store', async () => {
    const clock = new Clock()
    const store = new SqliteStore({ path: ':memory:', now: clock.now, sweepIntervalMs: 0 })
    const response = NodeSigningKey.generate()
    const fromOptions = serverOn(store, clock, { response: response.toPem() })
    const stored = serverOn(store, clock)
    const a = await fromOptions.auth.keys()
    const b = await stored.auth.keys()
    expect(a.responseIdentity).toBe(response.publicKeyText)
    expect(b.responseIdentity).not.toBe(response.publicKeyText)
    expect(a.accessIdentity).toBe(b.accessIdentity)
    const env = makeServer({
      store,
      keys: { env: { BETTER_AUTH_ACCESS_KEY: NodeSigningKey.generate().toPem() } },
    })
    expect((await env.auth.keys()).accessIdentity).not.toBe(b.accessIdentity)
    expect((await env.auth.keys()).responseIdentity).toBe(b.responseIdentity)
    await store.close()
  })

  it('are sealed with a secret, and cannot be loaded without it', async () => {
    const store = new SqliteStore({ path: ':memory:', sweepIntervalMs: 0 })
    const sealed = makeServer({ store, keys: { env: false, secret: 'correct horse' } })
    const keys = await sealed.auth.keys()
    const rows = store.db.prepare(`SELECT private_key FROM ${store.tables.keys}`).pluck().all()
    expect(rows).toHaveLength(2)
    for (const row of rows as string[]) {
      expect(row.startsWith('sealed:v1:')).toBe(true)
      expect(row).not.toContain('PRIVATE KEY')
    }
    const without = makeServer({ store, keys: { env: false } })
    await expect(without.auth.ready()).rejects.toThrow(/BETTER_AUTH_KEY_SECRET/)
    const wrong = makeServer({ store, keys: { env: { BETTER_AUTH_KEY_SECRET: 'wrong' } } })
    await expect(wrong.auth.ready()).rejects.toThrow(/wrong BETTER_AUTH_KEY_SECRET/)
    const right = makeServer({ store, keys: { env: { BETTER_AUTH_KEY_SECRET: 'correct horse' } } })
    expect((await right.auth.keys()).accessIdentity).toBe(keys.accessIdentity)
    await store.close()
  })

  it('an unreachable key store fails requests with 503, and the server recovers', async () => {
    const inner = new SqliteStore({ path: ':memory:', sweepIntervalMs: 0 })
    let down = true
    const flaky: KeyStore = {
      initKey: (kind, key) =>
        down ? Promise.reject(new Error('ECONNREFUSED')) : inner.keys.initKey(kind, key),
      listKeys: (kind, now) => inner.keys.listKeys(kind, now),
      rotateKey: (kind, key, at) => inner.keys.rotateKey(kind, key, at),
      retireKey: (kind, key, at) => inner.keys.retireKey(kind, key, at),
    }
    const server = makeServer({
      store: {
        ...inner,
        accounts: inner.accounts,
        challenges: inner.challenges,
        refreshKeys: inner.refreshKeys,
        accessNonces: inner.accessNonces,
        keys: flaky,
      },
    })
    const failed = await server.auth.handle('responseKey', '')
    expect([failed.status, errorOf(failed).code]).toEqual([503, 'BA602'])
    down = false
    const ok = await server.auth.handle('responseKey', '')
    expect(ok.status).toBe(200)
    expect(ok.body).toBe((await inner.keys.listKeys('response', Date.now()))[0]?.publicKey)
    await inner.close()
  })
})

describe('access-key rotation on a shared store', () => {
  async function pair() {
    const clock = new Clock()
    const store = new SqliteStore({ path: ':memory:', now: clock.now, sweepIntervalMs: 0 })
    const a = serverOn(store, clock, { reloadIntervalMs: 0 })
    const b = serverOn(store, clock, { reloadIntervalMs: 0 })
    const keysA = await a.auth.keys()
    const keysB = await b.auth.keys()
    return { clock, store, a, b, keysA, keysB }
  }

  it('new tokens use the new key; every instance verifies both until the old key retires', async () => {
    const { clock, store, a, b, keysA, keysB } = await pair()
    const old = keysA.accessIdentity
    const before = await session(a, clock)
    const rotated = await keysA.rotateAccessKey(undefined, { retireAfterMs: 60_000 })
    expect(keysA.accessIdentity).toBe(rotated)
    // B has not reloaded yet: it still signs with the old key...
    expect(keysB.accessIdentity).toBe(old)
    const after = await session(a, clock)
    expect(decodeToken(await after.accessToken()).serverIdentity).toBe(rotated)
    // ...but verifies a token of the new key at once: an unknown key makes it reload.
    await expect(b.auth.verifyToken(await after.accessToken())).resolves.toBeDefined()
    expect(keysB.accessIdentity).toBe(rotated)
    // The old token verifies on both while the old key retires.
    for (const s of [a, b]) {
      await expect(s.auth.verifyToken(await before.accessToken())).resolves.toBeDefined()
    }
    expect(keysA.publishedAccessKeys()).toEqual([
      { publicKey: rotated },
      { publicKey: old, retireAt: new Date(clock.ms + 60_000).toISOString() },
    ])
    clock.advance(61)
    for (const s of [a, b]) {
      await expect(s.auth.verifyToken(await before.accessToken())).rejects.toMatchObject({
        code: 'BA202',
      })
      await expect(s.auth.verifyToken(await after.accessToken())).resolves.toBeDefined()
    }
    await store.close()
  })

  it('after rotateAccessKey resolves this instance signs with the new key, even when a reload was under way', async () => {
    const inner = new SqliteStore({ path: ':memory:', sweepIntervalMs: 0 })
    // A key store whose listing is slow: a reload begun before the rotation commits ends after
    // it (the first listing once `committed` is set returns only when the rotation is stored).
    let committed: Promise<void> | undefined
    let commit = (): void => undefined
    const slow: KeyStore = {
      initKey: (kind, key) => inner.keys.initKey(kind, key),
      listKeys: async (kind, now) => {
        const waitFor = committed
        committed = undefined
        const list = await inner.keys.listKeys(kind, now)
        await waitFor
        return list
      },
      rotateKey: async (kind, key, retireAt) => {
        await inner.keys.rotateKey(kind, key, retireAt)
        commit()
      },
      retireKey: (kind, key, retireAt) => inner.keys.retireKey(kind, key, retireAt),
    }
    const keys = await ServerKeys.load({ env: false, store: slow, reloadIntervalMs: 0 })
    const old = keys.accessIdentity
    committed = new Promise(resolve => (commit = resolve))
    const pending = keys.reload()
    const rotated = await keys.rotateAccessKey()
    await pending
    expect(rotated).not.toBe(old)
    expect(keys.accessIdentity).toBe(rotated)
    keys.close()
    await inner.close()
  })

  it('a retired key is refused at once by every instance after they reload', async () => {
    const { clock, store, a, b, keysA, keysB } = await pair()
    const before = await session(a, clock)
    const old = keysA.accessIdentity
    await keysA.rotateAccessKey()
    await keysB.reload()
    expect(await keysA.retireAccessKey(old)).toBe(true)
    await expect(a.auth.verifyToken(await before.accessToken())).rejects.toMatchObject({
      code: 'BA202',
    })
    await keysB.reload()
    await expect(b.auth.verifyToken(await before.accessToken())).rejects.toMatchObject({
      code: 'BA202',
    })
    expect(await keysA.retireAccessKey(keysA.accessIdentity)).toBe(false)
    await store.close()
  })
})

describe('published access keys (/key/access)', () => {
  it('answers a signed envelope echoing the nonce, listing the current key first', async () => {
    const server = makeServer()
    const keys = await server.auth.keys()
    const previous = keys.accessIdentity
    await keys.rotateAccessKey(undefined, { retireAfterMs: 1000 })
    const n = nonce()
    const result = await server.auth.handle(
      'accessKeys',
      JSON.stringify({ payload: { access: { nonce: n } } })
    )
    expect(result.status).toBe(200)
    const envelope = parseEnvelope(result.body)
    expect(envelope.payload).toEqual({
      access: { nonce: n, serverIdentity: keys.responseIdentity },
      response: {
        accessKeys: [
          { publicKey: keys.accessIdentity },
          { publicKey: previous, retireAt: new Date(server.clock.ms + 1000).toISOString() },
        ],
      },
    })
    // Signed in the key-list context, never as an application reply would be.
    const verify = (bytes: Buffer) =>
      server.auth.verifier.verify(bytes, envelope.signature as string, keys.responseIdentity)
    expect(await verify(accessKeysSigningInput(envelope.text))).toBe(true)
    expect(await verify(Buffer.from(envelope.text))).toBe(false)
  })

  it('picks a nonce itself for an empty body, and refuses a malformed one with 400', async () => {
    const server = makeServer()
    const plain = await server.auth.handle('accessKeys', '')
    expect(plain.status).toBe(200)
    expect(parseEnvelope(plain.body).payload.access).toMatchObject({
      nonce: expect.stringMatching(/^0A/),
    })
    const bad = await server.auth.handle('accessKeys', '{"payload":{"access":{"nonce":"x"}}}')
    expect([bad.status, errorOf(bad).code]).toEqual([400, 'BA101'])
  })

  it('answers as the OpenAPI document describes', async () => {
    const server = makeServer()
    await (await server.auth.keys()).rotateAccessKey(undefined, { retireAfterMs: 1000 })
    const document = openApiDocument(server.auth.routes()) as {
      paths: Record<string, Record<string, { operationId: string }>>
      components: Record<string, unknown>
    }
    expect(Object.keys(document.paths['/key/access'] ?? {}).sort()).toEqual(['get', 'post'])
    const ajv = new Ajv2020({ strict: false, formats: { 'date-time': true } })
    const validate = ajv.compile({ ...ACCESS_KEYS_RESPONSE, components: document.components })
    const reply = JSON.parse((await server.auth.handle('accessKeys', '')).body) as {
      payload: { response: { accessKeys: { publicKey: string }[] } }
    }
    expect(validate(reply)).toBe(true)
    reply.payload.response.accessKeys[0] = { publicKey: 'not a key' }
    expect(validate(reply)).toBe(false)
  })

  it('is in the route table at /key/access, answering GET and POST, unsigned', () => {
    const route = makeServer()
      .auth.routes()
      .find(r => r.endpoint === 'accessKeys')
    expect(route).toMatchObject({ path: '/key/access', methods: ['GET', 'POST'], signed: false })
  })
})

describe('RemoteAccessKeys (a resource server without the access key)', () => {
  /** An auth server, and a fetch that reaches its access-keys endpoint in process. */
  function authServer() {
    const auth = makeServer()
    let fetches = 0
    const fetcher = (async (_url: string, init?: { body?: string }) => {
      fetches++
      const result = await auth.auth.handle('accessKeys', String(init?.body ?? ''))
      return new Response(result.body, { status: result.status })
    }) as unknown as typeof fetch
    return { auth, fetcher, fetches: () => fetches }
  }

  async function resource(
    auth: TestServer,
    fetcher: typeof fetch,
    options: Partial<ConstructorParameters<typeof RemoteAccessKeys>[0]> = {},
    response: SigningKey = NodeSigningKey.generate()
  ) {
    const source = new RemoteAccessKeys({
      url: 'http://auth.test/key/access',
      responseKey: await auth.auth.responsePublicKey(),
      fetch: fetcher,
      now: auth.clock.now,
      ...options,
    })
    const server = makeServer({
      now: auth.clock.now,
      keys: { env: false, response, accessKeySource: source },
    })
    server.clock.ms = auth.clock.ms
    return { server, source }
  }

  async function rawSession(auth: TestServer) {
    const client = await session(auth, auth.clock)
    return client
  }

  it('verifies access requests with the published keys, fetching on first use only', async () => {
    const { auth, fetcher, fetches } = authServer()
    const { server } = await resource(auth, fetcher)
    const client = await rawSession(auth)
    const token = await client.accessToken()
    await expect(server.auth.verifyToken(token)).resolves.toMatchObject({
      identity: await client.identity(),
    })
    expect(fetches()).toBe(1)
    await server.auth.verifyToken(token)
    const other = await rawSession(auth)
    await server.auth.verifyToken(await other.accessToken())
    expect(fetches()).toBe(1)
  })

  it('follows a rotation: a token of an unknown key makes it fetch again', async () => {
    const { auth, fetcher, fetches } = authServer()
    const { server } = await resource(auth, fetcher, { cooldownMs: 0 })
    const first = await rawSession(auth)
    await server.auth.verifyToken(await first.accessToken())
    await (await auth.auth.keys()).rotateAccessKey()
    const second = await rawSession(auth)
    await expect(server.auth.verifyToken(await second.accessToken())).resolves.toBeDefined()
    expect(fetches()).toBe(2)
  })

  it('refetches at most once per cooldown for unknown keys', async () => {
    const { auth, fetcher, fetches } = authServer()
    const { server } = await resource(auth, fetcher, { cooldownMs: 5000 })
    const stranger = makeServer()
    const foreign = await rawSession(stranger)
    for (let i = 0; i < 5; i++) {
      await expect(server.auth.verifyToken(await foreign.accessToken())).rejects.toMatchObject({
        code: 'BA202',
      })
    }
    expect(fetches()).toBe(1)
    auth.clock.advance(6)
    await expect(server.auth.verifyToken(await foreign.accessToken())).rejects.toMatchObject({
      code: 'BA202',
    })
    expect(fetches()).toBe(2)
  })

  it('honours published retirement times', async () => {
    const { auth, fetcher } = authServer()
    const { server } = await resource(auth, fetcher)
    const before = await rawSession(auth)
    await (await auth.auth.keys()).rotateAccessKey(undefined, { retireAfterMs: 10_000 })
    const after = await rawSession(auth)
    await expect(server.auth.verifyToken(await after.accessToken())).resolves.toBeDefined()
    await expect(server.auth.verifyToken(await before.accessToken())).resolves.toBeDefined()
    auth.clock.advance(11)
    await expect(server.auth.verifyToken(await before.accessToken())).rejects.toMatchObject({
      code: 'BA202',
    })
  })

  it('trusts nothing from a list not signed by the pinned key, or with a stale nonce', async () => {
    const { auth, fetcher } = authServer()
    const client = await rawSession(auth)
    const token = await client.accessToken()
    const errors: unknown[] = []
    const wrongPin = await resource(auth, fetcher, {
      responseKey: NodeSigningKey.generate().publicKeyText,
      onError: e => errors.push(e),
    })
    await expect(wrongPin.server.auth.verifyToken(token)).rejects.toMatchObject({ code: 'BA202' })
    expect(errors[0]).toMatchObject({ code: 'BA204' })

    // A replayed (recorded) reply carries another nonce.
    const recorded = (await auth.auth.handle('accessKeys', '')).body
    const replaying = (async () => new Response(recorded)) as unknown as typeof fetch
    const replayed = await resource(auth, replaying, { onError: e => errors.push(e) })
    await expect(replayed.server.auth.verifyToken(token)).rejects.toMatchObject({ code: 'BA202' })
    expect(errors[1]).toMatchObject({ code: 'BA203' })
  })

  it('keeps the known keys when the auth server cannot be reached', async () => {
    const { auth, fetcher } = authServer()
    let up = true
    const flaky = (async (url: string, init?: { body?: string }) => {
      if (!up) throw new TypeError('fetch failed')
      return fetcher(url, init as RequestInit)
    }) as unknown as typeof fetch
    const { server, source } = await resource(auth, flaky, { cooldownMs: 0, maxAgeMs: 1000 })
    const client = await rawSession(auth)
    await server.auth.verifyToken(await client.accessToken())
    up = false
    auth.clock.advance(5)
    await source.refresh()
    await expect(server.auth.verifyToken(await client.accessToken())).resolves.toBeDefined()
    await expect(source.ready()).rejects.toThrow('fetch failed')
  })

  it('serves access requests end to end, and refuses a request not signed by the token key', async () => {
    const { auth, fetcher } = authServer()
    // The resource server shares the auth server's response key, so clients pin one key.
    const responseKey = (await auth.auth.keys()).responseKey
    const { server } = await resource(auth, fetcher, {}, responseKey)
    const toAuth = new InProcessNetwork(auth)
    const toResource = new InProcessNetwork(server)
    const network: Network = {
      send: (path, body) => (path === '/foo/bar' ? toResource : toAuth).send(path, body),
    }
    const client = new BetterAuthClient({ network, now: auth.clock.now })
    await client.createAccount(hash(NodeSigningKey.generate().publicKeyText))
    await client.createSession()
    expect(await client.accessRequest('/foo/bar', { foo: 'a', bar: 'b' })).toEqual({
      wasFoo: 'a',
      wasBar: 'b',
    })
    const body = accessBody(await client.accessToken(), NodeSigningKey.generate(), {
      at: auth.clock.ms,
    })
    const refused = await server.access(body)
    expect([refused.status, errorOf(refused).code]).toEqual([401, 'BA201'])
  })
})
