#!/usr/bin/env node
/**
 * The command line: `npx better-auth-protocol <command>`.
 *
 *   keygen              print a new P-256 signing key (PEM or JWK) for BETTER_AUTH_*_KEY
 *   migrate             create or upgrade the tables of the database
 *   keys                list the server keys kept in the database (public parts)
 *   rotate-access-key   make a new access key current; the previous one retires later
 *   retire-access-key   stop accepting a previous access key now
 *   serve               run the auth server (protocol endpoints, /key/response, /key/access,
 *                       /healthz, /readyz); SIGTERM or SIGINT shut it down gracefully
 *
 * The database and Redis come from --database / --redis or BETTER_AUTH_DATABASE /
 * BETTER_AUTH_REDIS; sealed keys need BETTER_AUTH_KEY_SECRET.
 */
import { writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { createServer, gracefulShutdown } from '../adapters/node'
import { NodeSigningKey } from './crypto/node'
import { createBetterAuth } from './server/core'
import { lineLogger } from './server/health'
import { DEFAULT_RETIRE_AFTER_MS, ServerKeys } from './server/keys'
import { rateLimitFromEnv } from './server/ratelimit'
import type { ServerStore } from './stores/types'
import { createStore, migrateDatabase, parseDatabaseUrl, redact } from './stores/url'

const USAGE = `usage: better-auth-protocol <command> [options]

commands:
  keygen [--format pem|jwk] [--out FILE]
      Print a new P-256 signing key (a response or access key). Its public key goes to stderr.
  migrate [--database URL]
      Create or upgrade the tables (SQLite, PostgreSQL). Idempotent.
  keys [--database URL]
      List the server keys kept in the database, creating them if there are none.
  rotate-access-key [--database URL] [--retire-after SECONDS]
      Store a new current access key. Running servers switch within seconds; the previous key
      keeps verifying for SECONDS (default 43205: every token it signed can still refresh).
  retire-access-key PUBLIC_KEY [--database URL]
      Stop accepting tokens of a previous access key (every running server within 5 s).
  serve [--port 8080] [--host 127.0.0.1] [--database URL] [--redis URL]
      Run the auth server: the protocol endpoints, /key/response and /key/access, and
      GET /healthz (liveness) and GET /readyz (readiness: 503 when a store does not answer).
      SIGTERM or SIGINT: stop accepting, finish the requests in flight, exit 0.

environment:
  BETTER_AUTH_DATABASE   memory: | sqlite:PATH | postgres://…[?schema=NAME]  (default sqlite:./better-auth.db)
  BETTER_AUTH_REDIS      redis://…[?prefix=PREFIX] | redis+cluster://host:port,host:port  (challenges and nonces in Redis)
  BETTER_AUTH_RATE_LIMIT on | off  (default on; off only for conformance runs)
  BETTER_AUTH_RESPONSE_KEY(_FILE), BETTER_AUTH_ACCESS_KEY(_FILE)  keys instead of the database's
  BETTER_AUTH_KEY_SECRET seals the private keys kept in the database
  BETTER_AUTH_READY_TIMEOUT_MS     deadline of the /readyz checks (default 1500)
  BETTER_AUTH_SHUTDOWN_TIMEOUT_MS  connections still open this long after SIGTERM are cut (default 10000)
`

const DEFAULT_DATABASE = 'sqlite:./better-auth.db'

export interface CliIo {
  out(text: string): void
  err(text: string): void
  env: Record<string, string | undefined>
}

const processIo: CliIo = {
  out: text => process.stdout.write(text),
  err: text => process.stderr.write(text),
  env: process.env,
}

class UsageError extends Error {}

/** Runs a command; resolves to the exit code (serve resolves once the server listens). */
export async function runCli(argv: string[], io: CliIo = processIo): Promise<number> {
  const [command, ...rest] = argv
  try {
    switch (command) {
      case 'keygen':
        return keygen(rest, io)
      case 'migrate':
        return await migrate(rest, io)
      case 'keys':
        return await listKeys(rest, io)
      case 'rotate-access-key':
        return await rotateAccessKey(rest, io)
      case 'retire-access-key':
        return await retireAccessKey(rest, io)
      case 'serve':
        return await serve(rest, io)
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        io.out(USAGE)
        return command === undefined ? 2 : 0
      default:
        throw new UsageError(`unknown command: ${command}`)
    }
  } catch (error) {
    if (
      error instanceof UsageError ||
      (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
    ) {
      io.err(`${(error as Error).message}\n\n${USAGE}`)
      return 2
    }
    io.err(`error: ${describe(error)}\n`)
    return 1
  }
}

function describe(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error)
  const cause = (error as { cause?: unknown }).cause
  return cause instanceof Error ? `${message} (${cause.message})` : message
}

function databaseOf(value: string | undefined, io: CliIo): string {
  return value ?? (io.env.BETTER_AUTH_DATABASE?.trim() || DEFAULT_DATABASE)
}

function keygen(args: string[], io: CliIo): number {
  const { values } = parseArgs({
    args,
    options: { format: { type: 'string', default: 'pem' }, out: { type: 'string' } },
  })
  if (values.format !== 'pem' && values.format !== 'jwk') {
    throw new UsageError('--format must be pem or jwk')
  }
  const key = NodeSigningKey.generate()
  const text = values.format === 'pem' ? key.toPem() : `${JSON.stringify(key.toJwk())}\n`
  if (values.out !== undefined) {
    writeFileSync(values.out, text, { mode: 0o600, flag: 'wx' })
    io.err(`wrote ${values.out}\n`)
  } else {
    io.out(text)
  }
  io.err(`public key: ${key.publicKeyText}\n`)
  return 0
}

async function migrate(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args, options: { database: { type: 'string' } } })
  const url = databaseOf(values.database, io)
  if (parseDatabaseUrl(url).kind === 'memory') {
    throw new UsageError('migrate needs a sqlite: or postgres:// database')
  }
  const steps = await migrateDatabase(url)
  io.out(`${redact(url)}: ${steps === 0 ? 'up to date' : `applied ${steps} migration(s)`}\n`)
  return 0
}

/** The database's store and the server keys kept in it. */
async function withStoredKeys<T>(
  database: string | undefined,
  io: CliIo,
  work: (keys: ServerKeys, store: ServerStore) => Promise<T>
): Promise<T> {
  const store = await createStore({ database: databaseOf(database, io) })
  if (store.keys === undefined) {
    await store.close?.()
    throw new UsageError('this database keeps no keys: use sqlite: or postgres://')
  }
  let keys: ServerKeys | undefined
  try {
    keys = await ServerKeys.load({ store: store.keys, env: io.env, reloadIntervalMs: 0 })
    return await work(keys, store)
  } finally {
    keys?.close()
    await store.close?.()
  }
}

async function listKeys(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args, options: { database: { type: 'string' } } })
  return withStoredKeys(values.database, io, async keys => {
    io.out(`response ${keys.responseIdentity}\n`)
    for (const key of keys.publishedAccessKeys()) {
      const state = key.publicKey === keys.accessIdentity ? 'current' : 'retiring'
      io.out(`access   ${key.publicKey} ${state}${key.retireAt ? ` until ${key.retireAt}` : ''}\n`)
    }
    return 0
  })
}

async function rotateAccessKey(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { database: { type: 'string' }, 'retire-after': { type: 'string' } },
  })
  const seconds =
    values['retire-after'] === undefined
      ? DEFAULT_RETIRE_AFTER_MS / 1000
      : Number(values['retire-after'])
  if (!Number.isFinite(seconds) || seconds < 0) {
    throw new UsageError('--retire-after must be a number of seconds')
  }
  return withStoredKeys(values.database, io, async keys => {
    if (!keys.accessKeyStored) {
      throw new UsageError('the access key comes from BETTER_AUTH_ACCESS_KEY: rotate it there')
    }
    const previous = keys.accessIdentity
    const next = await keys.rotateAccessKey(undefined, { retireAfterMs: seconds * 1000 })
    io.out(`access key ${next} is current; ${previous} retires in ${seconds} s\n`)
    return 0
  })
}

async function retireAccessKey(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { database: { type: 'string' } },
  })
  const publicKey = positionals[0]
  if (publicKey === undefined) throw new UsageError('retire-access-key needs a PUBLIC_KEY')
  return withStoredKeys(values.database, io, async keys => {
    if (publicKey === keys.accessIdentity) {
      throw new UsageError('that is the current access key: rotate-access-key first')
    }
    if (!(await keys.retireAccessKey(publicKey))) {
      io.err(`no retiring access key ${publicKey}\n`)
      return 1
    }
    io.out(`access key ${publicKey} retired\n`)
    return 0
  })
}

async function serve(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      port: { type: 'string', default: io.env.PORT ?? '8080' },
      host: { type: 'string', default: io.env.HOST ?? '127.0.0.1' },
      database: { type: 'string' },
      redis: { type: 'string' },
    },
  })
  const port = Number(values.port)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError('--port: 0–65535')
  const readyTimeoutMs = millisecondsOf(io.env, 'BETTER_AUTH_READY_TIMEOUT_MS')
  const shutdownTimeoutMs = millisecondsOf(io.env, 'BETTER_AUTH_SHUTDOWN_TIMEOUT_MS')
  const redis = values.redis ?? io.env.BETTER_AUTH_REDIS
  const store = await createStore({
    database: databaseOf(values.database, io),
    ...(redis === undefined ? {} : { redis }),
  })
  // One line per failure (no stack traces): an outage is one short line per refused request.
  const logger = lineLogger({ write: line => io.err(`${line}\n`) })
  // With Redis, rate limits are shared by every instance using it.
  const auth = createBetterAuth({
    store,
    keys: { env: io.env },
    logger,
    // BETTER_AUTH_RATE_LIMIT=off turns them off (the conformance server's setting); on by default.
    rateLimit: rateLimitFromEnv(io.env, store.redis),
  })
  const server = createServer(auth, {
    health: { timeoutMs: readyTimeoutMs },
  })
  let address
  try {
    await auth.ready()
    address = await server.listen(port, values.host)
  } catch (error) {
    await auth.close() // closes the store: nothing is left open when start-up fails
    throw error
  }
  io.out(`better-auth server on http://${values.host}:${address.port}\n`)
  io.out(`response key: ${await auth.responsePublicKey()}\n`)
  // SIGTERM / SIGINT: stop accepting, answer what is in flight, cut the rest at the deadline,
  // close the store, exit 0.
  gracefulShutdown(server.server, {
    deadlineMs: shutdownTimeoutMs,
    onClose: () => auth.close(),
    logger,
  })
  return 0
}

/** A duration in ms from the environment, or undefined for the default. */
function millisecondsOf(env: CliIo['env'], name: string): number | undefined {
  const text = env[name]?.trim()
  if (text === undefined || text === '') return undefined
  const value = Number(text)
  if (!Number.isFinite(value) || value < 0) throw new UsageError(`${name}: a number of ms`)
  return value
}

if (require.main === module) {
  runCli(process.argv.slice(2)).then(code => {
    if (code !== 0) process.exit(code)
  })
}
