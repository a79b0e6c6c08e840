/**
 * Rate limiting of the protocol endpoints (per client IP and per identity) and exponential
 * backoff after failed session attempts, on rate-limiter-flexible: in memory by default, or in
 * Redis (pass an ioredis or node-redis client) so limits hold across instances.
 */
import {
  RateLimiterCluster,
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
  type RateLimiterAbstract,
} from 'rate-limiter-flexible'
import { RateLimitedError, StorageUnavailableError } from '../errors'
import { OPERATION_DEFINITIONS, OPERATIONS, type Operation } from './operations'
import { UNKNOWN_IP } from './rate-keys'
import type { Endpoint } from './routes'

export { UNKNOWN_IP, identityAtIp } from './rate-keys'

/** At most `points` requests per `duration` seconds. */
export interface RateRule {
  points: number
  duration: number
}

export type RateRules = Partial<Record<Operation | 'default', RateRule | false>>

export interface BackoffOptions {
  /** Failed session attempts per identity tolerated before backing off. @default 5 */
  threshold?: number
  /** First block, in seconds; doubles with each further failure. @default 1 */
  baseSeconds?: number
  /** Longest block, in seconds. @default 900 */
  maxSeconds?: number
  /** How long failures are remembered, in seconds. @default 900 */
  windowSeconds?: number
}

export interface RateLimitOptions {
  /** A Redis client (ioredis, or node-redis v4+) to share limits across instances. */
  redis?: unknown
  /**
   * In a node:cluster worker without Redis: keep the counts in the primary process
   * (rate-limiter-flexible's `RateLimiterCluster`; the primary must have created a
   * `RateLimiterClusterMaster` before forking), so limits hold across the workers of one
   * machine rather than each worker counting alone. One IPC round trip per check.
   * @default false
   */
  cluster?: boolean
  /** Key prefix in the backend. @default 'better-auth:rl' */
  keyPrefix?: string
  /** Limits per client IP and endpoint (merged over the defaults; `false` disables one). */
  ip?: RateRules
  /** Limits per identity and endpoint (merged over the defaults). */
  identity?: RateRules
  /** Backoff after failed session attempts per identity; `false` disables it. */
  backoff?: BackoffOptions | false
}

/** Per-IP limits: 300 a minute, unless an operation's definition says otherwise. */
export const DEFAULT_IP_RULES: Readonly<RateRules> = Object.freeze({
  default: { points: 300, duration: 60 },
  ...rulesOf('ip'),
})

/**
 * Per-identity limits. They are consumed only after a signature by a key of the identity has
 * verified (requestSession, which is unsigned, counts the identity per client IP), so they bound
 * what an identity's own keys can do — e.g. how many refresh-lock entries one identity can add
 * (20 a minute) — and no one else can use them up.
 */
export const DEFAULT_IDENTITY_RULES: Readonly<RateRules> = Object.freeze({
  default: false,
  ...rulesOf('identity'),
})

/** The default rules the operation definitions give, per client IP or per identity. */
function rulesOf(kind: 'ip' | 'identity'): RateRules {
  const rules: RateRules = {}
  for (const operation of OPERATIONS) {
    const rule = OPERATION_DEFINITIONS[operation].rateLimit[kind]
    if (rule !== undefined) rules[operation] = rule
  }
  return rules
}

type Limiters = Partial<Record<Operation, RateLimiterAbstract>>

/** Applies the configured limits; throws RateLimitedError (429) when one is exceeded. */
export class RateLimiter {
  private readonly byIp: Limiters = {}
  private readonly byIdentity: Limiters = {}
  private readonly failures: RateLimiterAbstract | undefined
  private readonly blocked: RateLimiterAbstract | undefined
  private readonly backoff: Required<BackoffOptions> | undefined
  private readonly make: (prefix: string, rule: RateRule) => RateLimiterAbstract

  constructor(options: RateLimitOptions = {}, operations: readonly Operation[] = OPERATIONS) {
    const prefix = options.keyPrefix ?? 'better-auth:rl'
    const redis = options.redis
    const cluster = options.cluster === true && redis === undefined
    if (cluster && typeof process.send !== 'function') {
      throw new TypeError('rate limits: `cluster` needs a node:cluster worker')
    }
    this.make = (name, rule) =>
      redis === undefined
        ? cluster
          ? new RateLimiterCluster({
              points: rule.points,
              duration: rule.duration,
              keyPrefix: `${prefix}:${name}`,
              timeoutMs: 3000,
            })
          : new RateLimiterMemory({
              points: rule.points,
              duration: rule.duration,
              keyPrefix: `${prefix}:${name}`,
            })
        : new RateLimiterRedis({
            storeClient: redis,
            points: rule.points,
            duration: rule.duration,
            keyPrefix: `${prefix}:${name}`,
            rejectIfRedisNotReady: true,
          })
    const ipRules = { ...DEFAULT_IP_RULES, ...options.ip }
    const identityRules = { ...DEFAULT_IDENTITY_RULES, ...options.identity }
    for (const operation of operations) {
      const ip = ipRules[operation] ?? ipRules.default
      if (ip) this.byIp[operation] = this.make(`ip:${operation}`, ip)
      const identity = identityRules[operation] ?? identityRules.default
      if (identity) this.byIdentity[operation] = this.make(`id:${operation}`, identity)
    }
    if (options.backoff !== false) {
      this.backoff = {
        threshold: options.backoff?.threshold ?? 5,
        baseSeconds: options.backoff?.baseSeconds ?? 1,
        maxSeconds: options.backoff?.maxSeconds ?? 900,
        windowSeconds: options.backoff?.windowSeconds ?? 900,
      }
      this.failures = this.make('fail', { points: 1_000_000, duration: this.backoff.windowSeconds })
      this.blocked = this.make('block', { points: 1, duration: this.backoff.maxSeconds })
    }
  }

  /**
   * Counts a request from `ip` to `endpoint`. An unknown IP (an adapter that could not tell, a
   * fetch handler called without `context.ip`) is never a free pass: all such requests share one
   * bucket, `UNKNOWN_IP`.
   */
  async checkIp(endpoint: Endpoint, ip: string | undefined): Promise<void> {
    if (endpoint === 'responseKey' || endpoint === 'accessKeys') return
    await consume(this.byIp[endpoint], ip ?? UNKNOWN_IP)
  }

  /**
   * Counts a request for `key` to `operation`. The core calls it with the bare identity only
   * once a signature by a key of that identity has verified, so no one who merely knows an
   * identity can spend its budget; for an unsigned message (requestSession) the key is the
   * identity and the client IP together (`identityAtIp`).
   */
  async checkIdentity(operation: Operation, key: string): Promise<void> {
    await consume(this.byIdentity[operation], key)
  }

  /** Refuses while `key` (an identity at an IP, see `identityAtIp`) is backing off. */
  async checkBackoff(key: string): Promise<void> {
    if (this.blocked === undefined) return
    const state = await guard(this.blocked.get(key))
    if (state !== null && state.consumedPoints > 1 && state.msBeforeNext > 0) {
      throw new RateLimitedError(state.msBeforeNext / 1000, { context: { reason: 'backoff' } })
    }
  }

  /**
   * Records a failed session attempt for `key` (an identity at an IP: failures from one client
   * never block the identity's owner elsewhere); past the threshold, blocks it exponentially.
   */
  async recordFailure(key: string): Promise<void> {
    if (this.failures === undefined || this.blocked === undefined || this.backoff === undefined) {
      return
    }
    const { consumedPoints } = await guard(this.failures.penalty(key, 1))
    const excess = consumedPoints - this.backoff.threshold
    if (excess > 0) {
      const seconds = Math.min(
        this.backoff.maxSeconds,
        this.backoff.baseSeconds * 2 ** (excess - 1)
      )
      await guard(this.blocked.block(key, seconds))
    }
  }

  /** Forgets failures of `key` after a successful session. */
  async recordSuccess(key: string): Promise<void> {
    if (this.failures !== undefined) await guard(this.failures.delete(key))
  }

  /** A limiter for a protected route's own rule (used by access checks). */
  limiter(name: string, rule: RateRule): RateLimiterAbstract {
    return this.make(name, rule)
  }
}

/** Consumes a point; a refusal becomes RateLimitedError, a backend failure a 503. */
export async function consume(
  limiter: RateLimiterAbstract | undefined,
  key: string
): Promise<void> {
  if (limiter === undefined) return
  try {
    await limiter.consume(key)
  } catch (error) {
    if (error instanceof RateLimiterRes) throw new RateLimitedError(error.msBeforeNext / 1000)
    throw new StorageUnavailableError({ cause: error, context: { reason: 'rate limiter' } })
  }
}

async function guard<T>(promise: Promise<T>): Promise<T> {
  try {
    return await promise
  } catch (error) {
    throw new StorageUnavailableError({ cause: error, context: { reason: 'rate limiter' } })
  }
}

/**
 * Rate limiting as the environment asks: `BETTER_AUTH_RATE_LIMIT=off` (or `false`, `0`) turns it
 * off — the conformance server's setting (`make server`), never a default — and anything else
 * keeps the defaults, shared through `redis` when one is given.
 */
export function rateLimitFromEnv(
  env: Record<string, string | undefined> = process.env,
  redis?: unknown
): RateLimitOptions | false {
  const setting = (env.BETTER_AUTH_RATE_LIMIT ?? '').trim().toLowerCase()
  if (setting === 'off' || setting === 'false' || setting === '0') return false
  if (setting !== '' && setting !== 'on' && setting !== 'true' && setting !== '1') {
    throw new TypeError(`BETTER_AUTH_RATE_LIMIT must be on or off, not ${JSON.stringify(setting)}`)
  }
  return redis === undefined ? {} : { redis }
}
