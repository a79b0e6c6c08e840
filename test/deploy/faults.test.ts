/**
 * Faults: PostgreSQL or Redis unreachable (cut by a TCP proxy between the store and the real
 * service). Requests fail closed with 503 BA602, nothing is half-written (a connection lost in
 * the middle of a transaction leaves the database as it was), and service resumes by itself
 * when the dependency returns.
 */
import type { Server } from 'node:http'
import { Pool } from 'pg'
import { NodeSigningKey } from '../../src'
import { combineStores } from '../../src/stores/combine'
import { PostgresStore } from '../../src/stores/postgres'
import { RedisEphemeralStore } from '../../src/stores/redis'
import { createConformanceApp } from '../../examples/express-conformance'
import { TestAccount, TestDevice, accessBody, hash, linkContainer, nonce, signed } from '../helpers'
import { POSTGRES_URL, REDIS_URL, dropSchema, uniqueName } from '../stores/services'
import { FaultProxy } from './proxy'
import { post } from './processes'

const PORT = 18230
const url = `http://127.0.0.1:${PORT}`
const schema = uniqueName('faults')
const prefix = `${uniqueName('faults')}:`
const pgProxy = new FaultProxy(
  { host: '127.0.0.1', port: Number(new URL(POSTGRES_URL).port || 5432) },
  18231
)
const redisProxy = new FaultProxy(
  { host: '127.0.0.1', port: Number(new URL(REDIS_URL).port || 6379) },
  18232
)
const direct = new Pool({ connectionString: POSTGRES_URL, max: 2 })
const poolErrors: unknown[] = []
let server: Server
let store: ReturnType<typeof combineStores>
let durable: PostgresStore

// The server logs every 5xx with console.error: collect them instead of printing them.
const logged = jest.spyOn(console, 'error').mockImplementation(() => undefined)

beforeAll(async () => {
  await pgProxy.start()
  await redisProxy.start()
  durable = new PostgresStore({
    connectionString: pgProxy.url(POSTGRES_URL),
    schema,
    poolConfig: { connectionTimeoutMillis: 1000 },
    onError: error => poolErrors.push(error),
  })
  await durable.migrate()
  const ephemeral = new RedisEphemeralStore({
    url: redisProxy.url(REDIS_URL),
    prefix,
    // ioredis leaves the timeout timers of commands it failed while disconnected running;
    // a short one lets the test process exit promptly.
    redisOptions: { commandTimeout: 500 },
  })
  // A new prefix has no epoch markers yet, and would refuse requests signed before its first
  // reservation (BA607): start from a deliberate clear, as a deployment that was never wiped.
  await ephemeral.clear()
  store = combineStores(durable, ephemeral)
  const { app, auth } = createConformanceApp({ store })
  await auth.ready()
  server = await new Promise(resolve => {
    const s = app.listen(PORT, '127.0.0.1', () => resolve(s))
  })
})

afterAll(async () => {
  logged.mockRestore()
  server.closeAllConnections()
  await new Promise(resolve => server.close(resolve))
  await store.close?.()
  await pgProxy.close()
  await redisProxy.close()
  await direct.end()
  await dropSchema(schema)
  const redis = new RedisEphemeralStore({ url: REDIS_URL, prefix })
  await redis.clear()
  await redis.close()
})

afterEach(() => {
  pgProxy.restore()
  redisProxy.restore()
})

/** Retries `check` until it passes (service resuming by itself), for at most 10 s. */
async function eventually(check: () => Promise<void>): Promise<void> {
  const until = Date.now() + 10_000
  for (;;) {
    try {
      await check()
      return
    } catch (error) {
      if (Date.now() > until) throw error
      await new Promise(resolve => setTimeout(resolve, 100))
    }
  }
}

async function expect503(path: string, body: string): Promise<void> {
  const reply = await post(`${url}${path}`, body)
  expect([reply.status, reply.json.error?.code]).toEqual([503, 'BA602'])
  expect(reply.json.payload).toBeUndefined()
}

async function expectOk(path: string, body: string) {
  const reply = await post(`${url}${path}`, body)
  if (reply.status !== 200)
    throw new Error(`${path}: HTTP ${reply.status} ${JSON.stringify(reply.json)}`)
  return reply.json.payload as { response: Record<string, never> }
}

const T = (name: string) => `"${schema}"."better_auth_${name}"`

/** The account as PostgreSQL holds it, read around the proxy. */
async function stored(identity: string) {
  const recovery = await direct.query(
    `SELECT recovery_hash FROM ${T('identities')} WHERE identity = $1`,
    [identity]
  )
  const devices = await direct.query(
    `SELECT device, public_key, rotation_hash FROM ${T('devices')} WHERE identity = $1 ORDER BY device`,
    [identity]
  )
  return {
    recoveryHash: recovery.rows[0]?.recovery_hash as string | undefined,
    devices: devices.rows,
  }
}

const sessionRequest = (identity: string) =>
  JSON.stringify({
    payload: { access: { nonce: nonce() }, request: { authentication: { identity } } },
  })

/** An account with a session token (and its key) made while everything is up. */
async function withSession() {
  const account = new TestAccount()
  await expectOk('/account/create', account.createAccountBody())
  const challenge = (
    (await expectOk('/session/request', sessionRequest(account.identity))).response as unknown as {
      authentication: { nonce: string }
    }
  ).authentication.nonce
  const key = NodeSigningKey.generate()
  const next = NodeSigningKey.generate()
  const created = await expectOk(
    '/session/create',
    signed(
      {
        access: { nonce: nonce() },
        request: {
          access: { publicKey: key.publicKeyText, rotationHash: hash(next.publicKeyText) },
          authentication: { device: account.first.device, nonce: challenge },
        },
      },
      account.first.current
    )
  )
  const token = (created.response as unknown as { access: { token: string } }).access.token
  return { account, token, key, next }
}

const refreshBody = (token: string, key: NodeSigningKey, next: NodeSigningKey) =>
  signed(
    {
      access: { nonce: nonce() },
      request: {
        access: {
          publicKey: next.publicKeyText,
          rotationHash: hash(NodeSigningKey.generate().publicKeyText),
          token,
        },
      },
    },
    next
  )

describe('PostgreSQL unreachable', () => {
  it('fails closed with 503 BA602, writes nothing, and resumes by itself', async () => {
    const { account, token, key, next } = await withSession()
    const fresh = new TestAccount()
    const rotate = signed(
      { access: { nonce: nonce() }, request: { authentication: account.first.rotating() } },
      account.first.next
    )
    const before = await stored(account.identity)

    pgProxy.cut()
    await expect503('/account/create', fresh.createAccountBody())
    await expect503('/session/request', sessionRequest(account.identity))
    await expect503('/device/rotate', rotate)
    await expect503('/session/refresh', refreshBody(token, key, next))
    // Access checks need no database: a valid access request is still served.
    expect((await post(`${url}/foo/bar`, accessBody(token, key))).status).toBe(200)
    expect(await stored(account.identity)).toEqual(before)
    expect((await stored(fresh.identity)).recoveryHash).toBeUndefined()

    pgProxy.restore()
    await eventually(async () => {
      await expectOk('/account/create', fresh.createAccountBody())
    })
    await expectOk('/device/rotate', rotate)
    await expectOk('/session/refresh', refreshBody(token, key, next))
    // The failures were logged as storage errors (with their cause, not sent to the client).
    expect(logged).toHaveBeenCalledWith(expect.stringMatching(/^storage unavailable .*"BA602"/))
  })

  it('a connection lost in the middle of a recovery leaves the account as it was', async () => {
    const { account } = await withSession()
    const before = await stored(account.identity)
    const device = new TestDevice()
    const recoverBody = () =>
      signed(
        {
          access: { nonce: nonce() },
          request: {
            authentication: {
              device: device.device,
              identity: account.identity,
              publicKey: device.current.publicKeyText,
              recoveryHash: hash('new recovery key'),
              recoveryKey: account.recovery.publicKeyText,
              rotationHash: device.rotationHash,
            },
          },
        },
        account.recovery
      )
    // The new device's key is only in the last statement (after the identity was updated and
    // the old devices deleted): the connection drops right there.
    const hit = pgProxy.cutOn(device.current.publicKeyText)
    await expect503('/account/recover', recoverBody())
    await hit
    pgProxy.restore()
    expect(await stored(account.identity)).toEqual(before)

    await eventually(async () => {
      await expectOk('/account/recover', recoverBody())
    })
    const after = await stored(account.identity)
    expect(after.recoveryHash).toBe(hash('new recovery key'))
    expect(after.devices.map(d => d.device)).toEqual([device.device])
  })

  it('a connection lost in the middle of a link leaves the rotation undone', async () => {
    const { account } = await withSession()
    const before = await stored(account.identity)
    const linked = new TestDevice()
    const container = linkContainer(linked, account.identity)
    const linkBody = () =>
      signed(
        {
          access: { nonce: nonce() },
          request: { authentication: account.first.rotating(), link: container },
        },
        account.first.next
      )
    // The rotation (compare-and-set) runs first; the insert of the new device is cut.
    const hit = pgProxy.cutOn(linked.current.publicKeyText)
    await expect503('/device/link', linkBody())
    await hit
    pgProxy.restore()
    expect(await stored(account.identity)).toEqual(before)
    // Nothing was spent: the same rotation links the device once the database is back.
    await eventually(async () => {
      await expectOk('/device/link', linkBody())
    })
    expect((await stored(account.identity)).devices).toHaveLength(2)
  })
})

describe('Redis unreachable', () => {
  it('fails closed with 503 BA602, writes nothing, and resumes by itself', async () => {
    const { account, token, key, next } = await withSession()
    const access = accessBody(token, key)
    const refresh = refreshBody(token, key, next)

    redisProxy.cut()
    await expect503('/session/request', sessionRequest(account.identity))
    await expect503('/foo/bar', access)
    await expect503('/session/refresh', refresh)
    // Accounts are in PostgreSQL: account operations go on.
    await expectOk('/account/create', new TestAccount().createAccountBody())

    redisProxy.restore()
    await eventually(async () => {
      await expectOk('/session/request', sessionRequest(account.identity))
    })
    // The refused access request and refresh were not recorded as used: they now succeed once.
    await expectOk('/foo/bar', access)
    await expectOk('/session/refresh', refresh)
    const replay = await post(`${url}/foo/bar`, access)
    expect([replay.status, replay.json.error?.code]).toEqual([401, 'BA304'])
  })
})
