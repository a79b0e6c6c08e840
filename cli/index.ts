#!/usr/bin/env node
/**
 * The command line: `npx better-auth-protocol <command>`.
 *
 *   --version           the package version; `<command> --help`: the command's options
 *   keygen              print a new P-256 signing key (PEM or JWK) for BETTER_AUTH_*_KEY
 *   migrate             create or upgrade the tables of the database
 *   keys                list the server keys kept in the database (public parts)
 *   rotate-access-key   make a new access key current; the previous one retires later
 *   retire-access-key   stop accepting a previous access key now
 *   admin …             show an identity, revoke a device, end sessions, suspend, reinstate,
 *                       delete (see ./admin)
 *   serve               run the auth server (protocol endpoints, /key/response, /key/access,
 *                       /healthz, /readyz); SIGTERM or SIGINT shut it down gracefully
 *
 * The database and Redis come from --database / --redis or BETTER_AUTH_DATABASE /
 * BETTER_AUTH_REDIS; sealed keys need BETTER_AUTH_KEY_SECRET.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { availableParallelism } from 'node:os'
import { dirname, join } from 'node:path'
import { parseArgs } from 'node:util'
import {
  DEFAULT_METRICS_PATH,
  DEFAULT_SHUTDOWN_TIMEOUT_MS,
  createServer,
  gracefulShutdown,
} from '../adapters/node'
import { clientIp } from '../adapters/shared/ip'
import { NodeSigningKey, isEcdsaPlacement } from '../src/crypto/node'
import { createBetterAuth } from '../src/server/core'
import { createMetrics } from '../src/server/metrics'
import { lineLogger } from '../src/server/health'
import { DEFAULT_RETIRE_AFTER_MS, ServerKeys } from '../src/server/keys'
import { rateLimitFromEnv } from '../src/server/ratelimit'
import type { ServerStore } from '../src/stores/types'
import {
  createStore,
  migrateDatabase,
  parseDatabaseUrl,
  redact,
  type ConfiguredStore,
} from '../src/stores/url'
import { announceListening, clusterMetrics, isWorker, runPrimary, workerShutdown } from './cluster'
import { ADMIN_USAGE, runAdmin } from './admin'
import { bearerAuthorize } from '../src/server/admin-bearer'
import type { AuditListener } from '../src/server/events'

const NAME = 'better-auth-protocol'

const DATABASE_OPTION = `  --database URL      memory: | sqlite:PATH | postgres://…  (BETTER_AUTH_DATABASE,
                      default sqlite:./better-auth.db)`

/** Each command's usage (`<command> --help`). */
const COMMANDS: Record<string, { summary: string; usage: string }> = {
  keygen: {
    summary: 'print a new P-256 signing key (a response or access key)',
    usage: `usage: ${NAME} keygen [--format pem|jwk] [--out FILE] [--json]

Print a new P-256 signing key (for BETTER_AUTH_RESPONSE_KEY or BETTER_AUTH_ACCESS_KEY) on
stdout; its public key goes to stderr.

  --format pem|jwk    the private key's form (default pem)
  --out FILE          write it to a new file (mode 0600) instead; never overwrites
  --json              print {"privateKey", "publicKey"} (with --out: {"file", "publicKey"})
`,
  },
  migrate: {
    summary: 'create or upgrade the tables (SQLite, PostgreSQL); idempotent',
    usage: `usage: ${NAME} migrate [--database URL]

Create or upgrade the tables of a SQLite or PostgreSQL database. Idempotent.

${DATABASE_OPTION}
`,
  },
  keys: {
    summary: 'list the server keys kept in the database (public parts)',
    usage: `usage: ${NAME} keys [--database URL] [--json]

List the server keys kept in an existing database (public parts): the response key clients pin,
and the access keys. Creates the keys in a migrated database that has none, never the database:
a database or key table that does not exist is an error (run migrate first).

${DATABASE_OPTION}
  --json              print {"response", "access": [{"publicKey", "state", "retireAt"}]}
`,
  },
  'rotate-access-key': {
    summary: 'make a new access key current; the previous one retires later',
    usage: `usage: ${NAME} rotate-access-key [--database URL] [--retire-after SECONDS]

Store a new current access key. Running servers switch within seconds; the previous key keeps
verifying for SECONDS (default 43205: every token it signed can still refresh).

${DATABASE_OPTION}
`,
  },
  'retire-access-key': {
    summary: 'stop accepting a previous access key now',
    usage: `usage: ${NAME} retire-access-key PUBLIC_KEY [--database URL]

Stop accepting tokens of a previous access key (every running server within 5 s).

${DATABASE_OPTION}
`,
  },
  admin: {
    summary: 'show an identity; revoke a device, end sessions, suspend, reinstate, delete',
    usage: ADMIN_USAGE,
  },
  serve: {
    summary: 'run the auth server',
    usage: `usage: ${NAME} serve [options]

Run the auth server: the protocol endpoints, /key/response and /key/access, GET /healthz
(liveness) and GET /readyz (readiness: 503 when a store does not answer). SIGTERM or SIGINT:
stop accepting, finish the requests in flight, exit 0.

  --port N            (PORT, default 8080)
  --host ADDRESS      (HOST, default 127.0.0.1)
${DATABASE_OPTION}
  --redis URL         redis://…[?prefix=P] | redis+cluster://host:port,…  (BETTER_AUTH_REDIS)
  --prefix PATH       serve the protocol endpoints under PATH, e.g. /auth
  --openapi           serve the OpenAPI document at <prefix>/openapi.json
  --trust-proxy N     believe N proxies' X-Forwarded-For for the client IP (or true: all)
  --cors ORIGINS      comma-separated allowed origins (or *): answer preflights, allow them
  --log-level LEVEL   error | warn | info (one line per request) | debug  (default info)
  --metrics           serve GET /metrics (Prometheus text format; needs prom-client installed)
  --metrics-port N    serve /metrics on this port only (same host), not on the API's
  --workers N|auto    run N processes on the one port (node:cluster; auto: one per CPU),
                      sharing the database's state and keys: needs sqlite:PATH or
                      postgres://… (BETTER_AUTH_WORKERS, default 1: one process). /metrics
                      then sums every worker's; rate limits are counted across them
  --ecdsa PLACEMENT   where ECDSA runs: auto (inline while the event loop has room,
                      on the threadpool while it is busy), inline, or threadpool
                      (BETTER_AUTH_ECDSA, default auto)
  --admin-token TOKEN serve the admin endpoints under /admin to requests carrying
                      Authorization: Bearer TOKEN (16+ characters; prefer
                      BETTER_AUTH_ADMIN_TOKEN: a command line is visible to other users)
`,
  },
}

const ENVIRONMENT = `environment:
  BETTER_AUTH_DATABASE   memory: | sqlite:PATH | postgres://…[?schema=NAME]  (default sqlite:./better-auth.db)
  BETTER_AUTH_REDIS      redis://…[?prefix=PREFIX] | redis+cluster://host:port,host:port  (challenges and nonces in Redis)
  BETTER_AUTH_RATE_LIMIT on | off  (default on; off only for conformance runs)
  BETTER_AUTH_RESPONSE_KEY(_FILE), BETTER_AUTH_ACCESS_KEY(_FILE)  keys instead of the database's
  BETTER_AUTH_KEY_SECRET seals the private keys kept in the database
  BETTER_AUTH_LOG_LEVEL  error | warn | info | debug  (serve; default info)
  BETTER_AUTH_READY_TIMEOUT_MS     deadline of the /readyz checks (default 1500)
  BETTER_AUTH_SHUTDOWN_TIMEOUT_MS  connections still open this long after SIGTERM are cut (default 10000)
  BETTER_AUTH_ADMIN_TOKEN          serve: the bearer token of the admin endpoints (off without it)
`

const USAGE = `usage: ${NAME} <command> [options]
       ${NAME} <command> --help
       ${NAME} --version

commands:
${Object.entries(COMMANDS)
  .map(([name, { summary }]) => `  ${name.padEnd(19)} ${summary}`)
  .join('\n')}

${ENVIRONMENT}`

const DEFAULT_DATABASE = 'sqlite:./better-auth.db'
const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const
type LogLevel = (typeof LOG_LEVELS)[number]

export interface CliIo {
  out(text: string): void
  err(text: string): void
  env: Record<string, string | undefined>
  /** Receives the audit events of `admin` commands (none are printed). */
  onEvent?: AuditListener
}

const processIo: CliIo = {
  out: text => process.stdout.write(text),
  err: text => process.stderr.write(text),
  env: process.env,
}

/** A mistake in the command line or its configuration: exit code 2, a hint, no usage text. */
class UsageError extends Error {}

/** The package's version, from its package.json (sources: ../, build: ../../). */
export function packageVersion(): string {
  let dir = typeof __dirname === 'string' ? __dirname : process.cwd()
  for (let i = 0; i < 5; i++) {
    const file = join(dir, 'package.json')
    if (existsSync(file)) {
      const manifest = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string }
      if (manifest.name === NAME && manifest.version !== undefined) return manifest.version
    }
    dir = dirname(dir)
  }
  return 'unknown'
}

/** `--help` / `-h`, on every command. */
const HELP = { type: 'boolean', short: 'h' } as const

function help(command: string, io: CliIo): number {
  io.out(COMMANDS[command]?.usage ?? USAGE)
  return 0
}

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
      case 'admin':
        return await runAdmin(rest, io)
      case 'serve':
        return await serve(rest, io)
      case '--version':
      case '-v':
      case 'version':
        io.out(`${packageVersion()}\n`)
        return 0
      case undefined:
        io.err(USAGE)
        return 2
      case 'help':
      case '--help':
      case '-h':
        if (rest[0] !== undefined && COMMANDS[rest[0]] !== undefined) return help(rest[0], io)
        io.out(USAGE)
        return 0
      default:
        throw new UsageError(`unknown command: ${command}`)
    }
  } catch (error) {
    if (
      error instanceof UsageError ||
      (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
    ) {
      const known = command !== undefined && COMMANDS[command] !== undefined
      const hint = known ? `${NAME} ${command} --help` : `${NAME} --help`
      io.err(`error: ${firstLine((error as Error).message)}\nsee '${hint}'\n`)
      return 2
    }
    io.err(`error: ${describe(error)}\n`)
    return 1
  }
}

function firstLine(text: string): string {
  return text.split('\n')[0] as string
}

function describe(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error)
  const cause = (error as { cause?: unknown }).cause
  return cause instanceof Error ? `${message} (${cause.message})` : message
}

/** The database URL of the command line or the environment, checked: a bad one is a usage error. */
function databaseOf(value: string | undefined, io: CliIo): string {
  const url = value ?? (io.env.BETTER_AUTH_DATABASE?.trim() || DEFAULT_DATABASE)
  try {
    parseDatabaseUrl(url)
  } catch (error) {
    throw new UsageError(
      `${value === undefined ? 'BETTER_AUTH_DATABASE' : '--database'}: ${(error as Error).message}`
    )
  }
  return url
}

function keygen(args: string[], io: CliIo): number {
  const { values } = parseArgs({
    args,
    options: {
      format: { type: 'string', default: 'pem' },
      out: { type: 'string' },
      json: { type: 'boolean' },
      help: HELP,
    },
  })
  if (values.help === true) return help('keygen', io)
  if (values.format !== 'pem' && values.format !== 'jwk') {
    throw new UsageError('--format must be pem or jwk')
  }
  const key = NodeSigningKey.generate()
  const text = values.format === 'pem' ? key.toPem() : `${JSON.stringify(key.toJwk())}\n`
  if (values.out !== undefined) {
    writeFileSync(values.out, text, { mode: 0o600, flag: 'wx' })
    if (values.json === true) {
      io.out(`${JSON.stringify({ file: values.out, publicKey: key.publicKeyText })}\n`)
      return 0
    }
    io.err(`wrote ${values.out}\n`)
  } else if (values.json === true) {
    const privateKey = values.format === 'pem' ? key.toPem() : key.toJwk()
    io.out(`${JSON.stringify({ privateKey, publicKey: key.publicKeyText })}\n`)
    return 0
  } else {
    io.out(text)
  }
  io.err(`public key: ${key.publicKeyText}\n`)
  return 0
}

async function migrate(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { database: { type: 'string' }, help: HELP },
  })
  if (values.help === true) return help('migrate', io)
  const url = databaseOf(values.database, io)
  if (parseDatabaseUrl(url).kind === 'memory') {
    throw new UsageError('migrate needs a sqlite: or postgres:// database')
  }
  const steps = await migrateDatabase(url)
  io.out(`${redact(url)}: ${steps === 0 ? 'up to date' : `applied ${steps} migration(s)`}\n`)
  return 0
}

/**
 * The database's store and the server keys kept in it. With `existing`, the database and its key
 * table must exist already: nothing is created but the keys of a migrated database without any.
 */
async function withStoredKeys<T>(
  database: string | undefined,
  io: CliIo,
  work: (keys: ServerKeys, store: ServerStore) => Promise<T>,
  existing = false
): Promise<T> {
  const url = databaseOf(database, io)
  if (parseDatabaseUrl(url).kind === 'memory') {
    throw new UsageError('this database keeps no keys: use sqlite: or postgres://')
  }
  const store = await createStore({ database: url, ...(existing ? { existing: true } : {}) })
  let keys: ServerKeys | undefined
  try {
    if (store.keys === undefined) {
      throw new UsageError('this database keeps no keys: use sqlite: or postgres://')
    }
    if (existing) {
      await store.keys.listKeys('response', Date.now()).catch((error: unknown) => {
        throw new Error(
          `${redact(url)} has no key table (run '${NAME} migrate' first, or check --database)`,
          { cause: error }
        )
      })
    }
    keys = await ServerKeys.load({ store: store.keys, env: io.env, reloadIntervalMs: 0 })
    return await work(keys, store)
  } finally {
    keys?.close()
    await store.close?.()
  }
}

async function listKeys(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { database: { type: 'string' }, json: { type: 'boolean' }, help: HELP },
  })
  if (values.help === true) return help('keys', io)
  return withStoredKeys(
    values.database,
    io,
    async keys => {
      const access = keys.publishedAccessKeys().map(key => ({
        publicKey: key.publicKey,
        state: key.publicKey === keys.accessIdentity ? 'current' : 'retiring',
        ...(key.retireAt === undefined ? {} : { retireAt: key.retireAt }),
      }))
      if (values.json === true) {
        io.out(`${JSON.stringify({ response: keys.responseIdentity, access })}\n`)
        return 0
      }
      io.out(`response ${keys.responseIdentity}\n`)
      for (const key of access) {
        const until = key.retireAt === undefined ? '' : ` until ${key.retireAt}`
        io.out(`access   ${key.publicKey} ${key.state}${until}\n`)
      }
      return 0
    },
    true
  )
}

async function rotateAccessKey(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { database: { type: 'string' }, 'retire-after': { type: 'string' }, help: HELP },
  })
  if (values.help === true) return help('rotate-access-key', io)
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
    options: { database: { type: 'string' }, help: HELP },
  })
  if (values.help === true) return help('retire-access-key', io)
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

/** `--trust-proxy`: a number of proxies, or true / false. */
function trustProxyOf(text: string | undefined): boolean | number {
  if (text === undefined || text === 'false') return false
  if (text === 'true') return true
  if (!/^\d+$/.test(text)) throw new UsageError('--trust-proxy: a number of proxies, or true')
  return Number(text)
}

/** `--cors`: the allowed origins (`*` for any), each `scheme://host[:port]`. */
function corsOf(text: string | undefined): Set<string> | undefined {
  if (text === undefined) return undefined
  const origins = new Set(
    text
      .split(',')
      .map(origin => origin.trim().replace(/\/+$/, ''))
      .filter(origin => origin !== '')
  )
  if (origins.size === 0) throw new UsageError('--cors: a comma-separated list of origins, or *')
  for (const origin of origins) {
    if (origin !== '*' && !/^https?:\/\/[^/\s?#]+$/.test(origin)) {
      throw new UsageError(`--cors: ${origin} is not an origin (e.g. https://app.example.com)`)
    }
  }
  return origins
}

type Listener = (req: IncomingMessage, res: ServerResponse) => void

/** The request listener writing one line per answered request: method, path, status, time, IP. */
function withRequestLog(
  listener: Listener,
  write: (line: string) => void,
  trustProxy: boolean | number
): Listener {
  return (req, res) => {
    const started = process.hrtime.bigint()
    res.once('finish', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6
      const url = req.url ?? '/'
      const query = url.indexOf('?')
      // The path only: a query string may hold what does not belong in a log.
      const path = (query === -1 ? url : url.slice(0, query)).replace(/[^\x21-\x7e]/g, '?')
      const ip = clientIp(req.socket.remoteAddress, req.headers['x-forwarded-for'], trustProxy)
      write(
        `${new Date().toISOString()} info ${req.method ?? '-'} ${path} ${res.statusCode} ` +
          `${ms.toFixed(1)}ms ${ip ?? '-'}`
      )
    })
    listener(req, res)
  }
}

async function serve(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      port: { type: 'string', default: io.env.PORT ?? '8080' },
      host: { type: 'string', default: io.env.HOST ?? '127.0.0.1' },
      database: { type: 'string' },
      redis: { type: 'string' },
      prefix: { type: 'string' },
      openapi: { type: 'boolean' },
      'trust-proxy': { type: 'string' },
      cors: { type: 'string' },
      metrics: { type: 'boolean' },
      'metrics-port': { type: 'string' },
      'admin-token': { type: 'string' },
      'log-level': { type: 'string', default: io.env.BETTER_AUTH_LOG_LEVEL?.trim() || 'info' },
      workers: { type: 'string', default: io.env.BETTER_AUTH_WORKERS?.trim() || '1' },
      ecdsa: { type: 'string', default: io.env.BETTER_AUTH_ECDSA?.trim() || 'auto' },
      help: HELP,
    },
  })
  if (values.help === true) return help('serve', io)
  const workers = workersOf(values.workers)
  const port = Number(values.port)
  if (!/^\d+$/.test(values.port) || !Number.isInteger(port) || port > 65535) {
    throw new UsageError('--port: 0–65535')
  }
  const level = values['log-level'] as LogLevel
  if (!LOG_LEVELS.includes(level)) throw new UsageError(`--log-level: ${LOG_LEVELS.join(' | ')}`)
  const prefix = values.prefix
  if (prefix !== undefined && !/^\/[\w\-./~]*$/.test(prefix)) {
    throw new UsageError('--prefix: a path, e.g. /auth')
  }
  const trustProxy = trustProxyOf(values['trust-proxy'])
  const ecdsa = values.ecdsa
  if (!isEcdsaPlacement(ecdsa)) {
    throw new UsageError('--ecdsa: auto | threadpool | inline')
  }
  const metricsPort = values['metrics-port']
  if (metricsPort !== undefined && (!/^\d+$/.test(metricsPort) || Number(metricsPort) > 65535)) {
    throw new UsageError('--metrics-port: 0–65535')
  }
  const metrics = values.metrics === true || metricsPort !== undefined
  // Before the store opens: without prom-client, nothing is left to close.
  const recorder = metrics ? createMetrics() : undefined
  const cors = corsOf(values.cors)
  const adminAuthorize = adminTokenOf(values['admin-token'], io.env)
  const readyTimeoutMs = millisecondsOf(io.env, 'BETTER_AUTH_READY_TIMEOUT_MS')
  const shutdownTimeoutMs = millisecondsOf(io.env, 'BETTER_AUTH_SHUTDOWN_TIMEOUT_MS')
  const database = databaseOf(values.database, io)
  const redis = values.redis ?? io.env.BETTER_AUTH_REDIS
  // A worker of `--workers N` (this command line, forked by its primary) serves as one process
  // would, and tags its log lines with its pid.
  const worker = isWorker()
  const write = worker
    ? (line: string): void => io.err(`${line} pid=${process.pid}\n`)
    : (line: string): void => io.err(`${line}\n`)
  // One line per failure (no stack traces): an outage is one short line per refused request.
  const logger = lineLogger({ level, write })
  if (workers > 1 && !worker) {
    sharedDatabase(database, workers)
    // The store is prepared once, before the workers open it together: its tables, and the
    // server keys every worker then loads from it.
    const store = await openStore(database, redis)
    try {
      if (store.keys !== undefined) {
        const keys = await ServerKeys.load({
          store: store.keys,
          env: io.env,
          reloadIntervalMs: 0,
          onWarning: () => undefined, // each worker reports it
        })
        keys.close()
      }
    } finally {
      await store.close?.()
    }
    const shared = await runPrimary({
      workers,
      script: __filename,
      args: ['serve', ...args],
      env: io.env,
      deadlineMs: shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS,
      logger,
      // Without Redis, the primary counts the workers' rate limits.
      rateLimits: rateLimitFromEnv(io.env) !== false && redis === undefined,
      ...(metrics
        ? {
            metrics: {
              host: values.host,
              path: DEFAULT_METRICS_PATH,
              ...(metricsPort === undefined ? {} : { port: Number(metricsPort) }),
            },
          }
        : {}),
    })
    const base = `http://${values.host}:${shared.port}`
    io.out(`better-auth server on ${base}${prefix ?? ''} (${workers} workers)\n`)
    io.out(`response key: ${shared.responseKey}\n`)
    if (values.openapi === true) io.out(`openapi: ${base}${prefix ?? ''}/openapi.json\n`)
    if (adminAuthorize !== undefined) io.out(`admin: ${base}/admin\n`)
    if (metrics) {
      const at =
        shared.metricsPort === undefined ? base : `http://${values.host}:${shared.metricsPort}`
      io.out(`metrics: ${at}/metrics\n`)
    }
    return 0
  }
  const store = await openStore(database, redis)
  // With Redis, rate limits are shared by every instance using it; the workers of one machine
  // without Redis count them in their primary.
  // BETTER_AUTH_RATE_LIMIT=off turns them off (the conformance server's setting); on by default.
  const rateLimit = rateLimitFromEnv(io.env, store.redis)
  const auth = createBetterAuth({
    store,
    keys: { env: io.env },
    logger,
    crypto: { ecdsa },
    rateLimit:
      worker && rateLimit !== false && store.redis === undefined
        ? { ...rateLimit, cluster: true }
        : rateLimit,
    ...(recorder === undefined ? {} : { metrics: worker ? clusterMetrics(recorder) : recorder }),
  })
  const server = createServer(auth, {
    health: { timeoutMs: readyTimeoutMs },
    trustProxy,
    ...(cors === undefined ? {} : { cors: cors.has('*') ? '*' : [...cors] }),
    ...(prefix === undefined ? {} : { prefix }),
    ...(values.openapi === true ? { openapi: true } : {}),
    ...(adminAuthorize === undefined ? {} : { admin: { authorize: adminAuthorize } }),
    // A worker never listens on the metrics port: its primary does.
    ...(metrics && !(worker && metricsPort !== undefined)
      ? { metrics: metricsPort === undefined ? true : { port: Number(metricsPort) } }
      : {}),
  })
  // The request log wraps the standalone server's own listener.
  let listener: Listener = server.listener
  if (LOG_LEVELS.indexOf(level) >= LOG_LEVELS.indexOf('info')) {
    listener = withRequestLog(listener, write, trustProxy)
  }
  if (listener !== server.listener) {
    server.server.removeListener('request', server.listener)
    server.server.on('request', listener)
  }
  let address
  try {
    await auth.ready()
    address = await server.listen(port, values.host)
  } catch (error) {
    await auth.close() // closes the store: nothing is left open when start-up fails
    throw error
  }
  if (worker) {
    // The primary prints the address once all listen, and tells the workers when to stop.
    announceListening(address.port, await auth.responsePublicKey())
    const shutdown = gracefulShutdown(server.server, {
      deadlineMs: shutdownTimeoutMs,
      onClose: () => auth.close(),
      signals: [],
    })
    workerShutdown(shutdown, server.server, logger)
    return 0
  }
  const base = `http://${values.host}:${address.port}`
  io.out(`better-auth server on ${base}${prefix ?? ''}\n`)
  io.out(`response key: ${await auth.responsePublicKey()}\n`)
  if (values.openapi === true) io.out(`openapi: ${base}${prefix ?? ''}/openapi.json\n`)
  if (adminAuthorize !== undefined) io.out(`admin: ${base}/admin\n`)
  const metricsAddress = server.metricsListener?.server.address()
  if (metrics) {
    const at =
      metricsAddress !== undefined && metricsAddress !== null && typeof metricsAddress === 'object'
        ? `http://${values.host}:${metricsAddress.port}`
        : base
    io.out(`metrics: ${at}/metrics\n`)
  }
  // SIGTERM / SIGINT: stop accepting, answer what is in flight, cut the rest at the deadline,
  // close the store, exit 0.
  gracefulShutdown(server.server, {
    deadlineMs: shutdownTimeoutMs,
    onClose: () => auth.close(),
    logger,
  })
  return 0
}

/**
 * `--admin-token` or BETTER_AUTH_ADMIN_TOKEN: the admin endpoints' authorization hook (a bearer
 * token compared in constant time), or undefined when neither is set (the endpoints are off).
 */
function adminTokenOf(
  option: string | undefined,
  env: CliIo['env']
): ReturnType<typeof bearerAuthorize> | undefined {
  const token = option ?? (env.BETTER_AUTH_ADMIN_TOKEN?.trim() || undefined)
  if (token === undefined) return undefined
  try {
    return bearerAuthorize(token)
  } catch (error) {
    const name = option === undefined ? 'BETTER_AUTH_ADMIN_TOKEN' : '--admin-token'
    throw new UsageError(`${name}: ${(error as Error).message.replace(/^admin token: /, '')}`)
  }
}

/** `--workers`: a number of processes, or `auto` (one per CPU). */
function workersOf(text: string): number {
  if (text === 'auto') return availableParallelism()
  const count = Number(text)
  if (!/^\d+$/.test(text) || count < 1 || count > 1024) {
    throw new UsageError('--workers: a number of processes (1 to 1024), or auto')
  }
  return count
}

/** Refuses a database that each process would keep for itself (memory:, sqlite::memory:). */
function sharedDatabase(url: string, workers: number): void {
  const db = parseDatabaseUrl(url)
  if (db.kind === 'memory' || (db.kind === 'sqlite' && db.path === ':memory:')) {
    throw new UsageError(
      `--workers ${workers} needs a database the workers share: ${redact(url)} keeps accounts, ` +
        'keys and nonces inside each process (use sqlite:PATH or postgres://…, or --workers 1)'
    )
  }
}

/** The store of `serve`; an unsupported or malformed Redis URL is a usage error. */
function openStore(database: string, redis: string | undefined): Promise<ConfiguredStore> {
  return createStore({ database, ...(redis === undefined ? {} : { redis }) }).catch(
    (error: unknown) => {
      throw error instanceof TypeError ? new UsageError(`--redis: ${error.message}`) : error
    }
  )
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
  runCli(process.argv.slice(2)).then(
    code => {
      if (code !== 0) process.exit(code)
    },
    (error: unknown) => {
      console.error(
        `better-auth-protocol: ${error instanceof Error ? error.message : String(error)}`
      )
      process.exit(1)
    }
  )
}
