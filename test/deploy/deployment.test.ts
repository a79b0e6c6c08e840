/**
 * examples/deployment.ts (quoted in the README) runs: an auth server on PostgreSQL and Redis, a
 * resource server verifying with the published access keys, and a client using both.
 */
import type { Server } from 'node:http'
import { Redis } from 'ioredis'
import { Blake3Hasher, FetchNetwork, NodeSigningKey, type Network } from '../../src'
import { RedisEphemeralStore } from '../../src/stores/redis'
import { authServer, resourceServer } from '../../examples/deployment'
import { POSTGRES_URL, REDIS_URL, dropSchema, uniqueName } from '../stores/services'
import { accessBody, makeClient, makeServer } from '../helpers'
import { clientOn, post } from './processes'

const schema = uniqueName('deploy')
const prefix = `${uniqueName('deploy')}:`
const responseKey = NodeSigningKey.generate()
const servers: Server[] = []
let redis: Redis
let closeAll: () => Promise<void>

function listen(
  app: { listen: (port: number, host: string, cb: () => void) => Server },
  port: number
) {
  return new Promise<string>(resolve => {
    servers.push(app.listen(port, '127.0.0.1', () => resolve(`http://127.0.0.1:${port}`)))
  })
}

beforeAll(async () => {
  // Both servers sign replies with one response key, so the client pins one key.
  process.env.BETTER_AUTH_RESPONSE_KEY = responseKey.toPem()
  // A new prefix has no epoch markers yet (BA607 for requests signed before its first
  // reservation): start from a deliberate clear.
  const fresh = new RedisEphemeralStore({ url: REDIS_URL, prefix })
  await fresh.clear()
  await fresh.close()
  const auth = await authServer({
    BETTER_AUTH_DATABASE: `${POSTGRES_URL}?schema=${schema}`,
    BETTER_AUTH_REDIS: `${REDIS_URL}?prefix=${encodeURIComponent(prefix)}`,
  })
  const authUrl = await listen(auth.app, 18260)
  // The resource server's keys land under this run's prefix too (ioredis keyPrefix).
  redis = new Redis(REDIS_URL, { keyPrefix: prefix })
  // The resource server's store too starts from a deliberate clear (epoch markers at 0).
  await new RedisEphemeralStore({ client: redis, prefix: 'resource:' }).clear()
  const resource = await resourceServer(authUrl, responseKey.publicKeyText, redis)
  const resourceUrl = await listen(resource.app, 18261)
  delete process.env.BETTER_AUTH_RESPONSE_KEY
  closeAll = async () => {
    await Promise.all(servers.map(s => new Promise(resolve => s.close(resolve))))
    await auth.auth.close()
    await resource.auth.close()
  }
  Object.assign(urls, { auth: authUrl, resource: resourceUrl })
})

const urls = { auth: '', resource: '' }

afterAll(async () => {
  await closeAll?.()
  await dropSchema(schema)
  const cleanup = new RedisEphemeralStore({ url: REDIS_URL, prefix })
  await cleanup.clear()
  await cleanup.close()
  await redis?.quit()
})

it('a client signs in at the auth server and is served by the resource server', async () => {
  const toAuth = new FetchNetwork(urls.auth)
  const toResource = new FetchNetwork(urls.resource)
  const network: Network = {
    send: (path, body) => (path === '/foo/bar' ? toResource : toAuth).send(path, body),
  }
  const client = clientOn(network)
  await client.createAccount(new Blake3Hasher().sum(NodeSigningKey.generate().publicKeyText))
  await client.createSession()
  expect(await client.responseKey()).toBe(responseKey.publicKeyText)
  const reply = await client.accessRequest<{ identity: string; echo: unknown }>('/foo/bar', {
    foo: 1,
  })
  expect(reply).toEqual({ identity: await client.identity(), echo: { foo: 1 } })
  // A token of another auth server (a key the auth server does not publish) is refused.
  const stranger = makeServer()
  const other = makeClient(stranger)
  await other.createAccount(new Blake3Hasher().sum(NodeSigningKey.generate().publicKeyText))
  await other.createSession()
  const foreign = await post(
    `${urls.resource}/foo/bar`,
    accessBody(await other.accessToken(), NodeSigningKey.generate())
  )
  expect([foreign.status, foreign.json.error?.code]).toEqual([401, 'BA202'])
})
