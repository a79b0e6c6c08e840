/**
 * A deployment with real storage: auth servers that share PostgreSQL (accounts, keys) and Redis
 * (challenges, nonces), and a resource server that verifies access requests with the access
 * keys the auth server publishes, without holding the access key.
 *
 *   BETTER_AUTH_DATABASE=postgres://localhost/app BETTER_AUTH_REDIS=redis://localhost \
 *     PORT=8080 npx tsx examples/deployment-listen.ts auth
 *   AUTH_URL=http://127.0.0.1:8080 BETTER_AUTH_RESPONSE_KEY_FILE=response.pem \
 *     BETTER_AUTH_REDIS=redis://localhost PORT=8081 npx tsx examples/deployment-listen.ts resource
 *
 * The resource server signs its replies with the auth server's response key (the same
 * `BETTER_AUTH_RESPONSE_KEY`), so clients pin a single key.
 *
 * Both answer `GET /healthz` (liveness) and `GET /readyz` (readiness: 503 when PostgreSQL or
 * Redis does not answer within 1.5 s) for the load balancer, and shut down gracefully on
 * SIGTERM or SIGINT (requests in flight are answered, connections cut after
 * `BETTER_AUTH_SHUTDOWN_TIMEOUT_MS`, 10 s by default).
 */
import express from 'express'
import type { Pool } from 'pg'
import type { Redis } from 'ioredis'
import {
  MemoryAccountStore,
  RemoteAccessKeys,
  combineStores,
  createStoreFromEnv,
  type ServerStore,
} from 'better-auth-protocol'
import { PostgresStore } from 'better-auth-protocol/stores/postgres'
import { RedisEphemeralStore } from 'better-auth-protocol/stores/redis'
import { betterAuth } from 'better-auth-protocol/express'
import { healthHandler } from 'better-auth-protocol/node'

/** The auth server: state and keys from BETTER_AUTH_DATABASE and BETTER_AUTH_REDIS. */
export async function authServer(env = process.env) {
  const store = await createStoreFromEnv(env)
  // With Redis, rate limits are shared by every instance too.
  const auth = betterAuth({
    store,
    rateLimit: store.redis === undefined ? {} : { redis: store.redis },
  })
  const app = express()
  app.use(auth.express()) // the protocol, /key/response and /key/access
  app.use(healthHandler(auth.core)) // GET /healthz and /readyz for the load balancer
  return { app, auth }
}

/** The same store from clients the application already has (typed options). */
export function storeFromClients(pool: Pool, redis: Redis): ServerStore {
  return combineStores(
    new PostgresStore({ pool, schema: 'auth' }),
    new RedisEphemeralStore({ client: redis, prefix: 'auth:' })
  )
}

/** A resource server: verifies access requests with the keys the auth server publishes. */
export async function resourceServer(authUrl: string, authResponseKey: string, redis: Redis) {
  const accessKeys = new RemoteAccessKeys({
    url: `${authUrl}/key/access`,
    responseKey: authResponseKey, // pinned: the key list must be signed by it
  })
  const auth = betterAuth({
    // Only access nonces are used here; Redis makes replay protection hold across instances.
    store: combineStores(
      { accounts: new MemoryAccountStore() },
      new RedisEphemeralStore({ client: redis, prefix: 'resource:' })
    ),
    keys: { accessKeySource: accessKeys },
    rateLimit: { redis },
  })
  await accessKeys.ready() // fails fast if the auth server cannot be reached
  const app = express()
  app.use(healthHandler(auth.core)) // GET /healthz and /readyz for the load balancer
  app.post('/foo/bar', auth.requireAccess<{ foo: number }>(), (req, res) => {
    res.json({ identity: auth.principal(req).identity, echo: req.body })
  })
  return { app, auth }
}
