/**
 * The server core's options, their defaults (each written once, here) and their validation: the
 * constructor resolves them once, so nothing else repeats a default or checks a value again.
 */
import { isEcdsaPlacement, type EcdsaPlacement } from '../crypto/node'
import type { Hasher, Noncer, Verifier } from '../crypto/types'
import type { ParseLimits } from '../messages/envelope'
import type { AccessToken, TokenLimits } from '../messages/token'
import type { ServerStore } from '../stores/types'
import type { AuditListener } from './events'
import type { ServerKeyOptions, ServerKeys } from './keys'
import type { MetricsRecorder } from './observe'
import type { RateLimitOptions, RateRule } from './ratelimit'
import type { Paths } from './routes'

/** Why the attributes callback is called, and with what. */
export type AttributesContext<Attributes> =
  /** A new session. */
  | { operation: 'createSession' }
  /**
   * A refresh, with `refreshAttributes: true`: `previous` are the attributes of the token being
   * refreshed (read-only), e.g. to keep what the application does not recompute.
   */
  | { operation: 'refreshSession'; previous: Attributes }

/**
 * Token attributes, chosen by the application: for a new session, and with `refreshAttributes`
 * at every refresh. Throwing refuses the session or the refresh.
 */
export type AttributesCallback<Attributes> = (
  identity: string,
  device: string,
  context: AttributesContext<Attributes>
) => Attributes | Promise<Attributes>

/** Checks that an identity derives from its creation keys (the default: BLAKE3 of the three). */
export type IdentityVerifier = (
  identity: string,
  publicKey: string,
  rotationHash: string,
  recoveryHash: string
) => boolean | Promise<boolean>

/** A pino-compatible logger (any object with these methods). */
export interface Logger {
  error(object: object, message?: string): void
  warn(object: object, message?: string): void
  info(object: object, message?: string): void
  debug(object: object, message?: string): void
}

export interface Lifetimes {
  /** Access token lifetime, seconds. @default 900 (15 min) */
  accessToken?: number
  /** Refresh window from session creation, seconds. @default 43200 (12 h) */
  refresh?: number
  /** Session challenge lifetime, seconds. @default 60 */
  challenge?: number
  /** How old an access request's timestamp may be, seconds. @default 30 */
  accessWindow?: number
  /** How far in the future a request timestamp or token issuedAt may be, seconds. @default 5 */
  clockSkew?: number
}

export interface Limits extends ParseLimits, TokenLimits {}

export interface BetterAuthOptions<Attributes = unknown> {
  /** Where state lives. @default a new MemoryStore */
  store?: ServerStore
  /** Server keys; see ServerKeyOptions. @default from the environment, else generated */
  keys?: ServerKeyOptions | ServerKeys
  /** Token attributes for a new session (and at refresh with `refreshAttributes`). @default () => ({}) */
  attributes?: AttributesCallback<Attributes>
  /**
   * Call `attributes` again at every refresh (`context.previous` holds the refreshed token's
   * attributes), so a role the application revoked leaves the token at its next refresh (within
   * the access token lifetime, 15 min by default) rather than at the end of the refresh window
   * (12 h). Cost: one call of the callback per refresh — one refresh per session per access-token
   * lifetime; if it reads a database, that is one read per refresh. A callback that throws refuses
   * the refresh (the access key is not spent). With `false` a token keeps the attributes chosen at
   * createSession through every refresh. @default false
   */
  refreshAttributes?: boolean
  /**
   * How long an access check with `checkRevocation` may use what it read of a device's state
   * (active, suspended, sessions ended), ms; a route's `checkRevocation: { cacheMs }` overrides it.
   * This is the bound within which a revocation, suspension or ended session made on any instance
   * sharing the store is enforced at access on every instance (the instance that made it enforces
   * it at once). 0 reads the store on every check. @default 2000
   */
  revocationCacheMs?: number
  lifetimes?: Lifetimes
  limits?: Limits
  /** Paths of the protocol endpoints (relative to an adapter's prefix). */
  paths?: Partial<Paths>
  /** Put error context (never secrets) in error bodies. @default false */
  debug?: boolean
  logger?: Logger
  /**
   * When a body parser consumed a request before the adapter without keeping its bytes (no
   * `express.json({ verify: auth.verify })`, no Nest `rawBody: true`), verify the parsed body
   * re-serialized (logged once as a warning). `false` refuses such requests: 415 `BA606`, with a
   * message saying how to keep the raw body. @default true
   */
  allowReserializedBody?: boolean
  /** Pluggable identity scheme. @default identity = hash(publicKey + rotationHash + recoveryHash) */
  identityVerifier?: IdentityVerifier
  /**
   * Crypto implementations. @default BLAKE3, ECDSA P-256 on node:crypto placed by `ecdsa`
   * (`ThreadpoolP256Verifier`), random nonces
   */
  crypto?: {
    hasher?: Hasher
    verifier?: Verifier
    noncer?: Noncer
    /**
     * Where the server's ECDSA runs (its signatures, and its verifications unless `verifier` is
     * given): `'auto'` on the event loop while it has room (no hand-over: less CPU and latency
     * per request under light load) and on libuv's threadpool while it is busy (less CPU per
     * request under saturation, and a second core); `'inline'` or `'threadpool'` always. See
     * EcdsaPlacement and docs/performance.md. @default 'auto'
     */
    ecdsa?: EcdsaPlacement
  }
  /** gzip level of issued tokens (any level decodes everywhere). @default 1 */
  tokenCompressionLevel?: number
  /** How many verified tokens to remember, so each token's signature is checked once. @default 10000 */
  tokenCacheSize?: number
  /**
   * Rate limits per client IP and identity, and backoff after failed session attempts
   * (see RateLimitOptions for the defaults); `false` disables rate limiting.
   */
  rateLimit?: RateLimitOptions | false
  /** Receives audit events (see AuditEvent). Also: `auth.onEvent(listener)`. */
  onEvent?: AuditListener
  /**
   * Also emit an `access.granted` audit event for every access request accepted (one per
   * protected request: high volume). @default false
   */
  auditAccessGranted?: boolean
  /**
   * Records requests, access checks, rate-limit refusals, store errors, latencies and cache use:
   * `createMetrics()` (prom-client), or any `MetricsRecorder`. A recorder that throws never fails
   * a request (the first failure is logged). @default none
   */
  metrics?: MetricsRecorder
  /**
   * OpenTelemetry spans of operations and access checks (see `instrumentOpenTelemetry`). By
   * default a server bridges its tracing channels to OpenTelemetry, once per process, when
   * `@opentelemetry/api` is installed and a tracer provider was registered before the server was
   * created; `false` never does. @default true
   */
  openTelemetry?: boolean
  /** Clock in ms since the epoch, for tests. @default Date.now */
  now?: () => number
  /**
   * The authority (`host[:port]`) clients sign header-form access requests for
   * (docs/http-binding.md §2.5), e.g. `api.example.com` behind a proxy. A route's `authority`
   * option overrides it. @default the request's `Host`
   */
  authority?: string
}

/** Per-route options of an access check. */
export interface AccessCheckOptions {
  /**
   * Whether the route requires an access request. A body without one is refused with 401 BA404
   * either way; with `false` the refusal is not reported as an audit event, because the adapter
   * lets such requests through without a principal (optional access), and their replies are not
   * signed. A body with a bad access request is always refused. @default true
   */
  credentialsRequired?: boolean
  /**
   * Refuse tokens of devices that are no longer active (unlinked, revoked, recovered away,
   * deleted) — 401 BA301 — and, on a store with administration, tokens of a suspended identity
   * (403 BA307) or issued at or before their identity's or device's sessions were ended (401
   * BA401). Costs a store read per (identity, device), cached for `cacheMs` (default: the core's
   * `revocationCacheMs`, 2 s): a change made on any instance is enforced on this one within that
   * bound. Tokens are stateless otherwise: they stay valid until they expire. @default false
   */
  checkRevocation?: boolean | { cacheMs?: number }
  /**
   * Rate limits of this route, per client IP and per identity. Counters are keyed by `name`, so
   * instances sharing a Redis backend share them; routes left unnamed share counters with the
   * other unnamed routes of the same rules.
   */
  rateLimit?: { ip?: RateRule; identity?: RateRule; name?: string }
  /**
   * Which forms of the access request the route takes: `'headers'` (HTTP Message Signatures,
   * docs/http-binding.md), `'body'` (the classic signed envelope), or `'any'`: the header form
   * when the request carries it (`Authorization: BetterAuth …` or a `ba` signature), the body
   * form otherwise. @default 'any'
   */
  binding?: 'headers' | 'body' | 'any'
  /** The authority header-form requests are signed for (see `BetterAuthOptions.authority`). */
  authority?: string
  /**
   * The route's label in metrics and traces: its pattern (`/users/:id`) or a name, never a path
   * with ids in it. @default `rateLimit.name`, else `access`
   */
  route?: string
}

/** What an adapter knows about the HTTP request besides its body. */
export interface RequestContext {
  /** The client's IP address as the adapter determined it (proxies honoured only if trusted). */
  ip?: string
  /** The request path, for logs and events. */
  path?: string
}

/** What an adapter sends back. */
export interface HandlerResult {
  status: number
  headers: Record<string, string>
  body: string
}

/** A verified access request: who made it, and what they asked. */
export interface AccessPrincipal<Attributes = unknown, Request = unknown> {
  identity: string
  device: string
  attributes: Attributes
  /** The decoded, verified access token. */
  token: AccessToken<Attributes>
  /** The request nonce; the reply must echo it. */
  nonce: string
  /** The request timestamp as sent. */
  timestamp: string
  /**
   * The application data of the request: `payload.request` in the body form; in the header form,
   * the body as the application's parser produced it (`undefined` without one).
   */
  request: Request
  /** Which form the request came in. Absent means `'body'`. */
  binding?: 'headers' | 'body'
  /** The header form's raw request signature (r ‖ s): a signed reply is bound to it. */
  requestSignature?: Uint8Array
}

/** The largest request body accepted unless `limits.maxBodyBytes` says otherwise (64 KiB). */
export const DEFAULT_BODY_LIMIT = 64 * 1024

/** Default lifetimes, in seconds. */
export const DEFAULT_LIFETIMES: Readonly<Required<Lifetimes>> = Object.freeze({
  accessToken: 900,
  refresh: 43_200,
  challenge: 60,
  accessWindow: 30,
  clockSkew: 5,
})

/** The default gzip level of issued tokens. */
export const DEFAULT_TOKEN_COMPRESSION_LEVEL = 1
/** How many verified tokens are remembered by default. */
export const DEFAULT_TOKEN_CACHE_SIZE = 10_000
/** How long a revocation check may use what it read, by default (ms): see `revocationCacheMs`. */
export const DEFAULT_REVOCATION_CACHE_MS = 2000

/** Where the server's ECDSA runs unless `crypto.ecdsa` says otherwise. */
export const DEFAULT_ECDSA_PLACEMENT: EcdsaPlacement = 'auto'

/** `crypto.ecdsa`, validated (a `TypeError` otherwise) and with its default. */
export function resolveEcdsaPlacement(value: unknown): EcdsaPlacement {
  if (value === undefined) return DEFAULT_ECDSA_PLACEMENT
  if (!isEcdsaPlacement(value)) {
    throw new TypeError(`crypto.ecdsa must be 'auto', 'threadpool' or 'inline'`)
  }
  return value
}

/** Limits with the body limit filled in (the other limits keep their parsers' defaults). */
export type ResolvedLimits = Limits & { maxBodyBytes: number }

/** The numeric options, validated and with their defaults. */
export interface ResolvedNumbers {
  limits: Readonly<ResolvedLimits>
  /** Lifetimes in milliseconds. */
  ms: Readonly<Required<Lifetimes>>
  compressionLevel: number
  tokenCacheSize: number
  /** `revocationCacheMs`, validated. */
  revocationCacheMs: number
}

/** A number option must be finite and in range; a `TypeError` names the option otherwise. */
function checked(
  name: string,
  value: number | undefined,
  fallback: number,
  { min = 0, max = Number.MAX_SAFE_INTEGER, integer = false } = {}
): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || Number.isNaN(value) || value < min || value > max) {
    throw new TypeError(`${name} must be a number from ${min} to ${max}, not ${String(value)}`)
  }
  if (integer && !Number.isInteger(value)) {
    throw new TypeError(`${name} must be a whole number, not ${String(value)}`)
  }
  return value
}

/** Validates the numeric options and fills in their defaults; throws a `TypeError` naming a bad one. */
export function resolveNumbers(
  options: Pick<
    BetterAuthOptions,
    'lifetimes' | 'limits' | 'tokenCompressionLevel' | 'tokenCacheSize' | 'revocationCacheMs'
  >
): ResolvedNumbers {
  const lifetimes = options.lifetimes ?? {}
  const ms = {} as Required<Lifetimes>
  for (const key of Object.keys(DEFAULT_LIFETIMES) as (keyof Lifetimes)[]) {
    const seconds = checked(`lifetimes.${key}`, lifetimes[key], DEFAULT_LIFETIMES[key], {
      max: 10 * 365 * 86_400,
    })
    ms[key] = seconds * 1000
  }
  const limits = options.limits ?? {}
  for (const key of ['maxDepth', 'maxTokenLength', 'maxTokenBytes'] as const) {
    checked(`limits.${key}`, limits[key], 1, { min: 1, integer: true })
  }
  const maxBodyBytes = checked('limits.maxBodyBytes', limits.maxBodyBytes, DEFAULT_BODY_LIMIT, {
    min: 1,
    integer: true,
  })
  return {
    limits: Object.freeze({ ...limits, maxBodyBytes }),
    ms: Object.freeze(ms),
    compressionLevel: checked(
      'tokenCompressionLevel',
      options.tokenCompressionLevel,
      DEFAULT_TOKEN_COMPRESSION_LEVEL,
      { min: -1, max: 9, integer: true }
    ),
    tokenCacheSize: checked('tokenCacheSize', options.tokenCacheSize, DEFAULT_TOKEN_CACHE_SIZE, {
      max: 10_000_000,
      integer: true,
    }),
    revocationCacheMs: checked(
      'revocationCacheMs',
      options.revocationCacheMs,
      DEFAULT_REVOCATION_CACHE_MS,
      { max: 3_600_000 }
    ),
  }
}
