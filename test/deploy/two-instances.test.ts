/**
 * Two server processes (the example server) sharing PostgreSQL, Redis and their keys (kept in
 * PostgreSQL): sessions move between them, replay protection holds across them, and rotations
 * are atomic across them.
 */
import { Pool } from 'pg'
import { Blake3Hasher, NodeSigningKey } from '../../src'
import { TestAccount, accessBody, nonce, signed } from '../helpers'
import { RedisEphemeralStore } from '../../src/stores/redis'
import { POSTGRES_URL, REDIS_URL, dropSchema, uniqueName } from '../stores/services'
import { SwitchNetwork, clientOn, post, startServer, type ServerProcess } from './processes'

const schema = uniqueName('two')
const prefix = `${uniqueName('two')}:`
const env = {
  BETTER_AUTH_DATABASE: `${POSTGRES_URL}?schema=${schema}`,
  BETTER_AUTH_REDIS: `${REDIS_URL}?prefix=${encodeURIComponent(prefix)}`,
}
let one: ServerProcess
let two: ServerProcess

beforeAll(async () => {
  // A new prefix has no epoch markers yet (it would refuse requests signed before its first
  // reservation, BA607): start from a deliberate clear.
  const fresh = new RedisEphemeralStore({ url: REDIS_URL, prefix })
  await fresh.clear()
  await fresh.close()
  // Both start at once: they must agree on one set of keys.
  ;[one, two] = await Promise.all([
    startServer('examples/server-listen.ts', 18220, env),
    startServer('examples/server-listen.ts', 18221, env),
  ])
}, 60_000)

afterAll(async () => {
  await Promise.all([one?.stop(), two?.stop()])
  await dropSchema(schema)
  const redis = new RedisEphemeralStore({ url: REDIS_URL, prefix })
  await redis.clear()
  await redis.close()
})

const text = async (url: string) => (await fetch(url, { method: 'POST' })).text()

it('both instances serve with the same keys', async () => {
  expect(await text(`${one.url}/key/response`)).toBe(await text(`${two.url}/key/response`))
  expect(await text(`${one.url}/key/access`)).toContain('accessKeys')
  const [a, b] = await Promise.all([text(`${one.url}/key/access`), text(`${two.url}/key/access`)])
  const keysOf = (body: string) =>
    (JSON.parse(body) as { payload: { response: unknown } }).payload.response
  expect(keysOf(a)).toEqual(keysOf(b))
})

it('a session created on one instance is refreshed and used on the other', async () => {
  const network = new SwitchNetwork(one.url)
  const client = clientOn(network)
  await client.createAccount(new Blake3Hasher().sum(NodeSigningKey.generate().publicKeyText))
  await client.createSession()
  network.to(two.url)
  await client.refreshSession()
  expect(await client.accessRequest('/foo/bar', { foo: 'x', bar: 'y' })).toEqual({
    wasFoo: 'x',
    wasBar: 'y',
  })
  network.to(one.url)
  await client.refreshSession()
  await client.rotateDevice()
  network.to(two.url)
  await client.createSession()
  await client.rotateDevice()
})

it('an access request accepted by one instance is refused as a replay by the other', async () => {
  const account = new TestAccount()
  expect((await post(`${one.url}/account/create`, account.createAccountBody())).status).toBe(200)
  const start = JSON.stringify({
    payload: {
      access: { nonce: nonce() },
      request: { authentication: { identity: account.identity } },
    },
  })
  const challenge = (
    (await post(`${two.url}/session/request`, start)).json.payload as {
      response: { authentication: { nonce: string } }
    }
  ).response.authentication.nonce
  const key = NodeSigningKey.generate()
  const create = signed(
    {
      access: { nonce: nonce() },
      request: {
        access: { publicKey: key.publicKeyText, rotationHash: new Blake3Hasher().sum('x') },
        authentication: { device: account.first.device, nonce: challenge },
      },
    },
    account.first.current
  )
  // The challenge was made on two; it is answered on one, and cannot be answered again on two.
  const created = await post(`${one.url}/session/create`, create)
  expect(created.status).toBe(200)
  const replayedChallenge = await post(`${two.url}/session/create`, create)
  expect([replayedChallenge.status, replayedChallenge.json.error?.code]).toEqual([401, 'BA303'])
  const token = (created.json.payload as { response: { access: { token: string } } }).response
    .access.token

  const body = accessBody(token, key)
  const accepted = await post(`${one.url}/foo/bar`, body)
  expect(accepted.status).toBe(200)
  const replay = await post(`${two.url}/foo/bar`, body)
  expect([replay.status, replay.json.error?.code]).toEqual([401, 'BA304'])
  const again = await post(`${one.url}/foo/bar`, body)
  expect([again.status, again.json.error?.code]).toEqual([401, 'BA304'])
  // The nonce was reserved in Redis (not in PostgreSQL's fallback table).
  const redis = new RedisEphemeralStore({ url: REDIS_URL, prefix })
  try {
    const nonceOf = (JSON.parse(body) as { payload: { access: { nonce: string } } }).payload.access
      .nonce
    expect(await redis.client.exists(redis.keyOf('nonce', nonceOf))).toBe(1)
  } finally {
    await redis.close()
  }
  const pg = new Pool({ connectionString: POSTGRES_URL, max: 1 })
  try {
    const { rows } = await pg.query(`SELECT COUNT(*) AS n FROM "${schema}".better_auth_time_locks`)
    expect(Number(rows[0].n)).toBe(0)
  } finally {
    await pg.end()
  }
})

it('of 50 concurrent rotations across both revealing the same key, exactly one succeeds', async () => {
  const account = new TestAccount()
  expect((await post(`${one.url}/account/create`, account.createAccountBody())).status).toBe(200)
  const device = account.first
  const bodies = Array.from({ length: 50 }, () =>
    signed(
      { access: { nonce: nonce() }, request: { authentication: device.rotating() } },
      device.next
    )
  )
  const results = await Promise.all(
    bodies.map((body, i) => post(`${i % 2 === 0 ? one.url : two.url}/device/rotate`, body))
  )
  const statuses = results.map(r => r.status)
  expect(statuses.filter(s => s === 200)).toHaveLength(1)
  expect(results.filter(r => r.status === 401 && r.json.error?.code === 'BA104')).toHaveLength(49)
  // The winner's rotation stands: the next one (revealing the key after) succeeds, on either.
  device.advance()
  const next = signed(
    { access: { nonce: nonce() }, request: { authentication: device.rotating() } },
    device.next
  )
  expect((await post(`${two.url}/device/rotate`, next)).status).toBe(200)
})
