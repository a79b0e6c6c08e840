/**
 * Liveness and readiness, for load balancers and orchestrators, and a one-line console logger
 * for servers that run unattended.
 *
 * - liveness (`/healthz`): the process answers. Always 200 `{"status":"ok"}`; it touches nothing.
 * - readiness (`/readyz`): every store answers a cheap read, and the server keys are loaded, all
 *   within a short deadline. 200 `{"status":"ready","checks":{…}}`, else 503 with the protocol's
 *   error body (BA602) and which check failed. It never waits past the deadline: a frozen
 *   database answers "timeout", not a hanging probe.
 *
 * Framework-free: `healthRoutes(auth).answer(method, path)` gives the `{ status, headers, body }`
 * of a health path (undefined for any other path), for any adapter to send.
 */
import { StorageUnavailableError } from '../errors'
import type { BetterAuthServer, HandlerResult, Logger } from './core'
import { JSON_CONTENT_TYPE } from './http'

/** What one readiness check found. */
export type CheckState = 'ok' | 'unavailable' | 'timeout'

/** The readiness of a server: ready when every check is `ok`. */
export interface Readiness {
  ready: boolean
  checks: Record<string, CheckState>
}

/** What readiness needs of a core: its store and its keys. */
export type HealthTarget = Pick<BetterAuthServer<unknown>, 'store' | 'keys'>

export interface ReadinessOptions {
  /** How long the checks may take together, ms. @default 1500 */
  timeoutMs?: number
}

export interface HealthOptions extends ReadinessOptions {
  /** The liveness path, or false for none. @default '/healthz' */
  healthPath?: string | false
  /** The readiness path, or false for none. @default '/readyz' */
  readyPath?: string | false
  /** Where readiness changes are logged (warn when it is lost, info when it is back). */
  logger?: Pick<Logger, 'warn' | 'info'>
}

export const DEFAULT_READINESS_TIMEOUT_MS = 1500

/** An identity no account has (not a valid identity either): a read that finds nothing. */
const PROBE = 'better-auth-readiness-probe'

const HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-type': JSON_CONTENT_TYPE,
  'cache-control': 'no-store',
})

/**
 * Runs the readiness checks: `accounts` (a read of an identity that does not exist),
 * `challenges` (a peek at a challenge that does not exist) and `keys` (the server keys loaded).
 * Each is `ok`, `unavailable` (it failed) or `timeout` (no answer within `timeoutMs`); the
 * promise resolves by the deadline whatever the stores do, and never rejects.
 */
export async function readiness(
  auth: HealthTarget,
  options: ReadinessOptions = {}
): Promise<Readiness> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_READINESS_TIMEOUT_MS
  const probes: Record<string, () => Promise<unknown>> = {
    accounts: () => auth.store.accounts.hasIdentity(PROBE),
    challenges: () => auth.store.challenges.peek(PROBE),
    keys: () => auth.keys(),
  }
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<'timeout'>(resolve => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs)
    timer.unref?.()
  })
  try {
    const names = Object.keys(probes)
    const states = await Promise.all(
      names.map(name => {
        const settled = Promise.resolve()
          .then(probes[name])
          .then(
            (): CheckState => 'ok',
            (): CheckState => 'unavailable'
          )
        return Promise.race([settled, deadline])
      })
    )
    const checks: Record<string, CheckState> = {}
    names.forEach((name, i) => (checks[name] = states[i] as CheckState))
    return { ready: states.every(state => state === 'ok'), checks }
  } finally {
    clearTimeout(timer)
  }
}

/** The health paths of a server, answered without a framework. */
export class HealthRoutes {
  /** The liveness path, if served. */
  readonly healthPath: string | undefined
  /** The readiness path, if served. */
  readonly readyPath: string | undefined

  private readonly timeoutMs: number
  private readonly logger: Pick<Logger, 'warn' | 'info'> | undefined
  /** The checks running now: concurrent probes share them instead of piling up on a frozen store. */
  private running: Promise<Readiness> | undefined
  private wasReady = true

  constructor(
    private readonly auth: HealthTarget,
    options: HealthOptions = {}
  ) {
    this.healthPath = pathOption(options.healthPath, '/healthz')
    this.readyPath = pathOption(options.readyPath, '/readyz')
    this.timeoutMs = options.timeoutMs ?? DEFAULT_READINESS_TIMEOUT_MS
    this.logger = options.logger
  }

  /** The served paths. */
  get paths(): string[] {
    return [this.healthPath, this.readyPath].filter((p): p is string => p !== undefined)
  }

  /**
   * The answer to `method path` (GET or HEAD) if it is a health path, else undefined. For HEAD,
   * send the status and headers without the body.
   */
  answer(method: string, path: string): Promise<HandlerResult> | undefined {
    if (method !== 'GET' && method !== 'HEAD') return undefined
    if (path === this.healthPath) return Promise.resolve(this.liveness())
    if (path === this.readyPath) return this.readiness()
    return undefined
  }

  /** Liveness: 200 `{"status":"ok"}`. */
  liveness(): HandlerResult {
    return { status: 200, headers: { ...HEADERS }, body: '{"status":"ok"}' }
  }

  /** Readiness: 200 `{"status":"ready",checks}` or 503 BA602 with the checks. */
  async readiness(): Promise<HandlerResult> {
    const result = await this.check()
    if (result.ready) {
      return {
        status: 200,
        headers: { ...HEADERS },
        body: JSON.stringify({ status: 'ready', checks: result.checks }),
      }
    }
    const failed = Object.keys(result.checks).filter(name => result.checks[name] !== 'ok')
    const error = new StorageUnavailableError().toBody().error
    return {
      status: 503,
      headers: { ...HEADERS },
      body: JSON.stringify({
        error: { ...error, message: `not ready: ${failed.join(', ')}` },
        checks: result.checks,
      }),
    }
  }

  private check(): Promise<Readiness> {
    if (this.running === undefined) {
      this.running = readiness(this.auth, { timeoutMs: this.timeoutMs }).then(result => {
        this.running = undefined
        this.report(result)
        return result
      })
    }
    return this.running
  }

  /** Logs a change of readiness once, not every probe of an outage. */
  private report(result: Readiness): void {
    if (result.ready === this.wasReady) return
    this.wasReady = result.ready
    const checks = result.checks
    if (result.ready) this.logger?.info({ checks }, 'ready again')
    else this.logger?.warn({ code: 'BA602', checks }, 'not ready')
  }
}

/** The health paths of `auth`: `/healthz` and `/readyz` unless the options say otherwise. */
export function healthRoutes(auth: HealthTarget, options: HealthOptions = {}): HealthRoutes {
  return new HealthRoutes(auth, options)
}

function pathOption(value: string | false | undefined, fallback: string): string | undefined {
  if (value === false) return undefined
  const path = value ?? fallback
  if (!path.startsWith('/')) throw new TypeError(`a path starts with "/": ${path}`)
  return path
}

// ------------------------------------------------------------------------------------- logging

type Level = 'error' | 'warn' | 'info' | 'debug'
const LEVELS: readonly Level[] = ['error', 'warn', 'info', 'debug']

export interface LineLoggerOptions {
  /** The most detailed level written. @default 'info' */
  level?: Level
  /** Where lines go. @default process.stderr */
  write?: (line: string) => void
}

/**
 * A logger that writes one line per event: `time level code message: cause (where)`, e.g.
 * `2024-05-01T12:00:00.000Z error BA602 storage unavailable: connect ECONNREFUSED 127.0.0.1:5432
 * (endpoint=/account/create)`. No stack traces, no request bodies, no error context: an outage
 * writes one short line per failed request. For `logger` in the core's options.
 */
export function lineLogger(options: LineLoggerOptions = {}): Logger {
  const limit = LEVELS.indexOf(options.level ?? 'info')
  const write = options.write ?? ((line: string) => void process.stderr.write(`${line}\n`))
  const at =
    (level: Level) =>
    (object: object, message?: string): void => {
      if (LEVELS.indexOf(level) > limit) return
      write(formatLine(level, object, message))
    }
  return { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') }
}

/** One log line: time, level, code, message, the cause's message, and where it happened. */
export function formatLine(level: string, object: object, message?: string): string {
  const fields = object as Record<string, unknown>
  const parts = [new Date().toISOString(), level]
  if (typeof fields.code === 'string') parts.push(fields.code)
  let text = message ?? ''
  const cause = causeText(fields.err)
  if (cause !== undefined && cause !== text) text = text === '' ? cause : `${text}: ${cause}`
  if (text !== '') parts.push(text)
  const where = ['endpoint', 'path', 'method']
    .filter(key => typeof fields[key] === 'string')
    .map(key => `${key}=${fields[key] as string}`)
  if (fields.checks !== undefined && typeof fields.checks === 'object') {
    const checks = fields.checks as Record<string, unknown>
    where.push(...Object.keys(checks).map(name => `${name}=${String(checks[name])}`))
  }
  if (where.length > 0) parts.push(`(${where.join(' ')})`)
  return parts.join(' ').replace(/[\r\n]+/g, ' ')
}

/** The innermost useful message of an error (the driver's, under our wrapper). */
function causeText(error: unknown): string | undefined {
  let current = error
  let text: string | undefined
  for (let depth = 0; depth < 5 && current !== undefined && current !== null; depth++) {
    if (typeof current !== 'object') return String(current)
    const e = current as { message?: unknown; code?: unknown; name?: unknown; cause?: unknown }
    const own =
      (typeof e.message === 'string' && e.message !== '' ? e.message : undefined) ??
      (typeof e.code === 'string' ? e.code : undefined) ??
      (typeof e.name === 'string' ? e.name : undefined)
    if (own !== undefined) text = own
    current = e.cause
  }
  return text
}
