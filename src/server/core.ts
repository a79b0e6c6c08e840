/**
 * The framework-neutral server core: the ten protocol operations, access-request verification,
 * token issuing and signed responses. Adapters only move bytes in and out of `handle`.
 */
import { LRUCache } from 'lru-cache'
import { formatTimestamp } from '../codec/timestamp'
import { Blake3Hasher } from '../crypto/blake3'
import { ThreadpoolP256Verifier } from '../crypto/node'
import { RandomNoncer } from '../crypto/nonce'
import type { Hasher, Noncer, Verifier } from '../crypto/types'
import {
  BetterAuthError,
  ConflictError,
  CredentialsRequiredError,
  ERROR_CODES,
  ExpiredTokenError,
  FutureRequestError,
  FutureTokenError,
  InvalidChallengeError,
  InvalidDeviceError,
  InvalidHashError,
  InvalidIdentityError,
  InvalidMessageError,
  InvalidSignatureError,
  MismatchedIdentitiesError,
  RateLimitedError,
  ReplayError,
  StaleRequestError,
  StorageUnavailableError,
  UnknownAccountError,
  UnknownServerKeyError,
  toBetterAuthError,
} from '../errors'
import {
  accessKeysSigningInput,
  lacksCredentials,
  parseEnvelope,
  verifySigned,
  type Envelope,
  type ParseLimits,
} from '../messages/envelope'
import {
  readAccessKeysRequest,
  readAccessRequest,
  readChangeRecoveryKey,
  readCreateAccount,
  readCreateSession,
  readDeleteAccount,
  readLinkDevice,
  readRecoverAccount,
  readRefreshSession,
  readRequestSession,
  readRotateDevice,
  readUnlinkDevice,
} from '../messages/requests'
import {
  decodeToken,
  encodeToken,
  serializeClaims,
  type AccessToken,
  type AccessTokenClaims,
  type TokenLimits,
} from '../messages/token'
import { MemoryStore } from '../stores/memory'
import type { RotateResult, RotationEffect, ServerStore } from '../stores/types'
import type { AuditEvent, AuditEventType, AuditListener, RequestTrace } from './events'
import { ServerKeys, type ServerKeyOptions } from './keys'
import {
  RateLimiter,
  UNKNOWN_IP,
  consume,
  identityAtIp,
  type RateLimitOptions,
  type RateRule,
} from './ratelimit'
import {
  DEFAULT_PATHS,
  OPERATIONS,
  routeTable,
  type Endpoint,
  type Operation,
  type Paths,
  type RouteInfo,
} from './routes'

/** Token attributes for a new session, chosen by the application. */
export type AttributesCallback<Attributes> = (
  identity: string,
  device: string
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
  /** Token attributes for a new session. @default () => ({}) */
  attributes?: AttributesCallback<Attributes>
  lifetimes?: Lifetimes
  limits?: Limits
  /** Paths of the protocol endpoints (relative to an adapter's prefix). */
  paths?: Partial<Paths>
  /** Put error context (never secrets) in error bodies. @default false */
  debug?: boolean
  logger?: Logger
  /** Pluggable identity scheme. @default identity = hash(publicKey + rotationHash + recoveryHash) */
  identityVerifier?: IdentityVerifier
  /**
   * Crypto implementations. @default BLAKE3, ECDSA P-256 verified on libuv's threadpool
   * (`ThreadpoolP256Verifier`; `NodeP256Verifier` verifies on the event loop), random nonces
   */
  crypto?: { hasher?: Hasher; verifier?: Verifier; noncer?: Noncer }
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
  /** Clock in ms since the epoch, for tests. @default Date.now */
  now?: () => number
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
   * Refuse tokens of devices that are no longer active (unlinked, recovered away, deleted),
   * at the cost of a store read, cached for `cacheMs`. Tokens are stateless otherwise: they
   * stay valid until they expire. @default false
   */
  checkRevocation?: boolean | { cacheMs?: number }
  /**
   * Rate limits of this route, per client IP and per identity. Counters are keyed by `name`, so
   * instances sharing a Redis backend share them; routes left unnamed share counters with the
   * other unnamed routes of the same rules.
   */
  rateLimit?: { ip?: RateRule; identity?: RateRule; name?: string }
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
  /** The application data of the request (`payload.request`). */
  request: Request
}

/** A route rule's counters. */
interface RouteLimiters {
  ip?: ReturnType<RateLimiter['limiter']>
  identity?: ReturnType<RateLimiter['limiter']>
}

/** What an operation learns of its request as it runs, for events and limits. */
interface OperationTrace extends RequestTrace {
  /** The client IP, when the adapter knows it. */
  ip?: string | undefined
}

// The charset keeps clients that read other types as Latin-1 (older Dart http) on UTF-8.
const JSON_HEADERS = Object.freeze({ 'content-type': 'application/json; charset=utf-8' })

/** The default logger: errors only, one line each (a full stack only where `err` is given). */
const consoleLogger: Logger = {
  error: (object, message) => {
    const { err, ...fields } = object as { err?: unknown }
    console.error(`${message ?? 'better-auth error'} ${safeJson(fields)}`)
    if (err instanceof Error && err.stack !== undefined) console.error(err.stack)
  },
  warn: () => undefined,
  info: () => undefined,
  debug: () => undefined,
}

/** JSON of log fields; never throws (a cycle or a BigInt becomes a placeholder). */
function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? ''
  } catch {
    return '"[unserializable]"'
  }
}

/** The message of an error's cause, for a one-line log. */
function causeText(cause: unknown): string | undefined {
  if (cause === undefined) return undefined
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code
    return typeof code === 'string'
      ? `${cause.name} ${code}: ${cause.message}`
      : `${cause.name}: ${cause.message}`
  }
  return String(cause)
}

/** Converts store failures that are not ours into 503s (fail closed). */
function guardStore(store: ServerStore): ServerStore {
  const wrap = <T extends object>(target: T): T =>
    new Proxy(target, {
      get(object, property, receiver) {
        const value = Reflect.get(object, property, receiver) as unknown
        if (typeof value !== 'function') return value
        return async (...args: unknown[]) => {
          try {
            return await (value as (...a: unknown[]) => unknown).apply(object, args)
          } catch (error) {
            if (error instanceof BetterAuthError) throw error
            throw new StorageUnavailableError({ cause: error })
          }
        }
      },
    })
  return {
    accounts: wrap(store.accounts),
    challenges: wrap(store.challenges),
    refreshKeys: wrap(store.refreshKeys),
    accessNonces: wrap(store.accessNonces),
    close: () => store.close?.() ?? Promise.resolve(),
  }
}

/** Marks the server cores of every copy of this package (its CommonJS and ES module builds). */
const SERVER_BRAND = Symbol.for('better-auth-protocol.BetterAuthServer')

export class BetterAuthServer<Attributes = unknown> {
  /**
   * `instanceof BetterAuthServer` also holds for a core made by the other build of this package
   * (an application that both imports and requires it loads two copies), by its brand.
   */
  static [Symbol.hasInstance](value: unknown): boolean {
    if (Function.prototype[Symbol.hasInstance].call(this, value)) return true
    return (
      this === BetterAuthServer &&
      typeof value === 'object' &&
      value !== null &&
      SERVER_BRAND in value
    )
  }

  readonly store: ServerStore
  readonly paths: Readonly<Paths>
  readonly hasher: Hasher
  readonly verifier: Verifier
  readonly noncer: Noncer
  readonly debug: boolean
  readonly logger: Logger
  readonly limits: Readonly<Limits>
  readonly now: () => number
  /** Lifetimes in milliseconds. */
  readonly ms: Readonly<Required<Lifetimes>>

  private readonly rawStore: ServerStore
  private readonly attributes: AttributesCallback<Attributes>
  private readonly identityVerifier: IdentityVerifier
  private readonly compressionLevel: number
  // Typed by its two methods: an LRUCache field would make the class invariant in Attributes.
  private readonly tokenCache: {
    get(text: string): AccessToken<Attributes> | undefined
    set(text: string, token: AccessToken<Attributes>): unknown
  }
  private readonly keysSource: () => Promise<ServerKeys>
  private keysPromise: Promise<ServerKeys>
  private keysFailed = false
  private loadedKeys: ServerKeys | undefined
  private readonly rateLimiter: RateLimiter | undefined
  private readonly listeners: AuditListener[] = []
  /** Causes of 5xx answers already logged in full. */
  private readonly loggedCauses = new Set<string>()
  /** Route limiters by rule value (bounded: rules are written in code, not sent by clients). */
  private readonly routeLimiters = new LRUCache<string, RouteLimiters>({ max: 10_000 })
  /** The same, by rule object: a shortcut for options built once. */
  private readonly routeLimitersByOptions = new WeakMap<object, RouteLimiters>()
  private readonly revocationCache = new LRUCache<string, { active: boolean; until: number }>({
    max: 10_000,
  })

  constructor(options: BetterAuthOptions<Attributes> = {}) {
    Object.defineProperty(this, SERVER_BRAND, { value: true })
    this.rawStore = options.store ?? new MemoryStore()
    this.store = guardStore(this.rawStore)
    this.paths = Object.freeze({ ...DEFAULT_PATHS, ...options.paths })
    this.hasher = options.crypto?.hasher ?? new Blake3Hasher()
    this.verifier = options.crypto?.verifier ?? new ThreadpoolP256Verifier()
    this.noncer = options.crypto?.noncer ?? new RandomNoncer()
    this.debug = options.debug ?? false
    this.logger = options.logger ?? consoleLogger
    this.limits = Object.freeze({ ...options.limits })
    this.now = options.now ?? Date.now
    const l = options.lifetimes ?? {}
    this.ms = Object.freeze({
      accessToken: (l.accessToken ?? 900) * 1000,
      refresh: (l.refresh ?? 43200) * 1000,
      challenge: (l.challenge ?? 60) * 1000,
      accessWindow: (l.accessWindow ?? 30) * 1000,
      clockSkew: (l.clockSkew ?? 5) * 1000,
    })
    this.attributes = options.attributes ?? (() => ({}) as Attributes)
    this.identityVerifier =
      options.identityVerifier ??
      ((identity, publicKey, rotationHash, recoveryHash) =>
        this.hasher.sum(publicKey + rotationHash + recoveryHash) === identity)
    this.compressionLevel = options.tokenCompressionLevel ?? 1
    // Two entries a token: by its text and by its signed content.
    this.tokenCache = new LRUCache({ max: 2 * Math.max(1, options.tokenCacheSize ?? 10_000) })
    this.rateLimiter =
      options.rateLimit === false ? undefined : new RateLimiter(options.rateLimit, OPERATIONS)
    if (options.onEvent !== undefined) this.listeners.push(options.onEvent)
    const keys = options.keys
    // A durable store keeps the keys (unless the options or the environment give them).
    const keyDefaults = {
      store: this.rawStore.keys,
      now: this.now,
      retireAfterMs: this.ms.refresh + this.ms.clockSkew,
      onWarning: (message: string) =>
        this.logger.warn({ code: 'BETTER_AUTH_UNSEALED_KEYS' }, message),
    }
    this.keysSource = () =>
      keys instanceof ServerKeys
        ? Promise.resolve(keys)
        : ServerKeys.load({ ...keyDefaults, ...keys })
    this.keysPromise = this.loadKeys()
  }

  /** Loads the keys; after a failed load (e.g. the key store was unreachable) the next use tries again. */
  private loadKeys(): Promise<ServerKeys> {
    const loading = this.keysSource().then(
      loaded => (this.loadedKeys = loaded),
      error => {
        this.keysFailed = true
        throw error
      }
    )
    loading.catch(() => undefined)
    return loading
  }

  private currentKeys(): Promise<ServerKeys> {
    if (this.keysFailed) {
      this.keysFailed = false
      this.keysPromise = this.loadKeys()
    }
    return this.keysPromise
  }

  /** Resolves when the keys are loaded; rejects if they cannot be. */
  async ready(): Promise<void> {
    await this.currentKeys()
  }

  /** The server's keys (response key, access keys). */
  keys(): Promise<ServerKeys> {
    return this.currentKeys()
  }

  /** The response public key (`1AAI…`): the server's identity. */
  async responsePublicKey(): Promise<string> {
    return (await this.currentKeys()).responseIdentity
  }

  /** The route table (paths as configured) under an optional prefix. */
  routes(prefix = ''): RouteInfo[] {
    return routeTable(this.paths, prefix)
  }

  async close(): Promise<void> {
    this.loadedKeys?.close()
    await this.rawStore.close?.()
  }

  // ---------------------------------------------------------------- entry point

  /**
   * Runs one endpoint on a raw request body and returns the HTTP answer. Never throws: every
   * failure becomes an error body with its code and status.
   */
  async handle(
    endpoint: Endpoint,
    body: string | Uint8Array,
    context: RequestContext = {}
  ): Promise<HandlerResult> {
    try {
      if (endpoint === 'responseKey') {
        return {
          status: 200,
          headers: { 'content-type': 'text/plain; charset=utf-8' },
          body: await this.responsePublicKey(),
        }
      }
      if (endpoint === 'accessKeys') {
        return { status: 200, headers: { ...JSON_HEADERS }, body: await this.accessKeys(body) }
      }
      const reply = await this.run(endpoint, body, context)
      return { status: 200, headers: { ...JSON_HEADERS }, body: reply }
    } catch (error) {
      return this.errorResult(error, { endpoint, ...context })
    }
  }

  /**
   * Runs an operation; returns the signed response text or throws a BetterAuthError.
   * Applies rate limits and emits an audit event either way.
   */
  async run(
    operation: Operation,
    body: string | Uint8Array,
    context: RequestContext = {}
  ): Promise<string> {
    const trace: OperationTrace = { ip: context.ip }
    try {
      await this.rateLimiter?.checkIp(operation, context.ip)
      const reply = await this.dispatch(operation, parseEnvelope(body, this.limits), trace)
      if (operation === 'createSession' && trace.identity !== undefined) {
        // The session exists already: a limiter failure here must not turn it into an error.
        await this.rateLimiter
          ?.recordSuccess(identityAtIp(trace.identity, context.ip))
          .catch((error: unknown) => this.logger.warn({ err: error }, 'rate limiter unavailable'))
      }
      this.emit(SUCCESS_EVENTS[operation], operation, trace, context)
      return reply
    } catch (error) {
      const e = toBetterAuthError(error)
      if (
        operation === 'createSession' &&
        trace.identity !== undefined &&
        (e.code === 'BA201' || e.code === 'BA301')
      ) {
        await this.rateLimiter
          ?.recordFailure(identityAtIp(trace.identity, context.ip))
          .catch(() => undefined)
      }
      this.emit(
        e.code === 'BA601' ? 'rate.limited' : 'request.rejected',
        operation,
        trace,
        context,
        e
      )
      throw e
    }
  }

  private dispatch(
    operation: Operation,
    envelope: Envelope,
    trace: OperationTrace
  ): Promise<string> {
    switch (operation) {
      case 'createAccount':
        return this.createAccount(envelope, trace)
      case 'deleteAccount':
        return this.deleteAccount(envelope, trace)
      case 'recoverAccount':
        return this.recoverAccount(envelope, trace)
      case 'linkDevice':
        return this.linkDevice(envelope, trace)
      case 'unlinkDevice':
        return this.unlinkDevice(envelope, trace)
      case 'rotateDevice':
        return this.rotateDevice(envelope, trace)
      case 'requestSession':
        return this.requestSession(envelope, trace)
      case 'createSession':
        return this.createSession(envelope, trace)
      case 'refreshSession':
        return this.refreshSession(envelope, trace)
      case 'changeRecoveryKey':
        return this.changeRecoveryKey(envelope, trace)
      default:
        throw new TypeError(`unknown operation: ${String(operation)}`)
    }
  }

  // ---------------------------------------------------------------- events

  /** Subscribes to audit events; returns a function that unsubscribes. */
  onEvent(listener: AuditListener): () => void {
    this.listeners.push(listener)
    return () => {
      const i = this.listeners.indexOf(listener)
      if (i >= 0) this.listeners.splice(i, 1)
    }
  }

  private emit(
    type: AuditEventType,
    route: string,
    trace: RequestTrace,
    context: RequestContext,
    error?: BetterAuthError
  ): void {
    if (this.listeners.length === 0) return
    const event: AuditEvent = {
      type,
      time: formatTimestamp(this.now()),
      route: context.path ?? route,
    }
    if (trace.identity !== undefined) event.identity = trace.identity
    if (trace.device !== undefined) event.device = trace.device
    if (trace.targetDevice !== undefined) event.targetDevice = trace.targetDevice
    if (error !== undefined) {
      event.code = error.code
      event.reason = ERROR_CODES[error.code].title
    }
    if (context.ip !== undefined) event.ip = context.ip
    for (const listener of this.listeners) {
      try {
        listener(event)
      } catch (listenerError) {
        this.logger.error({ err: listenerError }, 'audit event listener failed')
      }
    }
  }

  /** Names the identity (and device) a message concerns, for its audit event. */
  private seen(trace: OperationTrace, identity: string, device?: string): void {
    trace.identity = identity
    if (device !== undefined) trace.device = device
  }

  /**
   * Applies the per-identity rate limit of `operation`. Called only once a signature by a key of
   * the identity has verified: limits consumed before that would let anyone who knows an identity
   * (no key of it) block its owner's recovery or login. Until then only per-IP limits apply.
   */
  private async limitIdentity(operation: Operation, identity: string): Promise<void> {
    await this.rateLimiter?.checkIdentity(operation, identity)
  }

  /** The HTTP answer for an error; logs it (5xx as errors, the rest at debug level). */
  errorResult(error: unknown, context: Record<string, unknown> = {}): HandlerResult {
    const e = toBetterAuthError(error)
    const headers: Record<string, string> = { ...JSON_HEADERS }
    if (e instanceof RateLimitedError) headers['retry-after'] = String(e.retryAfter)
    if (e.status === 401) headers['www-authenticate'] = `BetterAuth error="${e.code}"`
    if (e.status >= 500) {
      // One line per failure with its code and cause; the full error (stack included) only the
      // first time a cause is seen, so an outage logs one trace, not one per request.
      const cause = causeText(e.cause)
      const log: Record<string, unknown> = { ...context, code: e.code, status: e.status }
      if (e.context !== undefined) log.context = e.context
      if (cause !== undefined) log.cause = cause
      const seen = `${e.code} ${cause ?? ''}`
      if (!this.loggedCauses.has(seen)) {
        if (this.loggedCauses.size >= 1000) this.loggedCauses.clear()
        this.loggedCauses.add(seen)
        log.err = e.cause ?? e
      }
      this.logger.error(log, e.message)
    } else {
      const log = { ...context, code: e.code, status: e.status, context: e.context, err: e.cause }
      this.logger.debug(log, e.message)
    }
    return { status: e.status, headers, body: JSON.stringify(e.toBody(this.debug)) }
  }

  /** A signed response envelope echoing `nonce`, with `response` as its application data. */
  async respond(nonce: string, response: unknown): Promise<string> {
    const keys = this.loadedKeys ?? (await this.currentKeys())
    const json = JSON.stringify(response ?? {}) as string | undefined
    if (json === undefined) throw new TypeError('the response data has no JSON form')
    const payload =
      `{"access":{"nonce":${JSON.stringify(nonce)},"serverIdentity":"${keys.responseIdentity}"},` +
      `"response":${json}}`
    const signature = await keys.responseKey.sign(Buffer.from(payload))
    return `{"payload":${payload},"signature":"${signature}"}`
  }

  // ---------------------------------------------------------------- accounts

  private isPoint = (publicKey: string): boolean => this.verifier.isValidPublicKey(publicKey)

  private checkDevice(device: string, publicKey: string, rotationHash: string): void {
    if (this.hasher.sum(publicKey + rotationHash) !== device) throw new InvalidDeviceError()
  }

  private async createAccount(envelope: Envelope, trace: OperationTrace): Promise<string> {
    const { nonce, authentication: a } = readCreateAccount(envelope, this.isPoint)
    this.seen(trace, a.identity, a.device)
    await verifySigned(this.verifier, envelope, a.publicKey)
    await this.limitIdentity('createAccount', a.identity)
    if (!(await this.identityVerifier(a.identity, a.publicKey, a.rotationHash, a.recoveryHash))) {
      throw new InvalidIdentityError()
    }
    this.checkDevice(a.device, a.publicKey, a.rotationHash)
    if (!(await this.store.accounts.createAccount(a))) throw new ConflictError('identity')
    return this.respond(nonce, {})
  }

  private async rotateWith(
    operation: Operation,
    envelope: Envelope,
    trace: OperationTrace,
    a: { identity: string; device: string; publicKey: string; rotationHash: string },
    effect: RotationEffect,
    /** Further checks of the message, after its signature and before the rotation. */
    check?: () => Promise<void>
  ): Promise<void> {
    this.seen(trace, a.identity, a.device)
    await verifySigned(this.verifier, envelope, a.publicKey)
    await this.limitIdentity(operation, a.identity)
    await check?.()
    const result = await this.store.accounts.rotate(
      a.identity,
      a.device,
      this.hasher.sum(a.publicKey),
      { publicKey: a.publicKey, rotationHash: a.rotationHash },
      effect
    )
    throwForRotation(result)
  }

  private async deleteAccount(envelope: Envelope, trace: OperationTrace): Promise<string> {
    const { nonce, authentication } = readDeleteAccount(envelope, this.isPoint)
    await this.rotateWith('deleteAccount', envelope, trace, authentication, {
      kind: 'deleteIdentity',
    })
    return this.respond(nonce, {})
  }

  private async recoverAccount(envelope: Envelope, trace: OperationTrace): Promise<string> {
    const { nonce, authentication: a } = readRecoverAccount(envelope, this.isPoint)
    this.seen(trace, a.identity, a.device)
    await verifySigned(this.verifier, envelope, a.recoveryKey)
    const recoveryKeyHash = this.hasher.sum(a.recoveryKey)
    // A recovery that keeps the same recovery hash could be replayed, revoking every device each
    // time: the new hash must commit to a new recovery key.
    if (a.recoveryHash === recoveryKeyHash) {
      throw new InvalidMessageError(
        'payload.request.authentication.recoveryHash',
        'must commit to a new recovery key'
      )
    }
    this.checkDevice(a.device, a.publicKey, a.rotationHash)
    await this.limitIdentity('recoverAccount', a.identity)
    const result = await this.store.accounts.recover(a.identity, recoveryKeyHash, a.recoveryHash, {
      device: a.device,
      publicKey: a.publicKey,
      rotationHash: a.rotationHash,
    })
    if (result === 'unknown-identity') throw new UnknownAccountError('identity')
    if (result === 'hash-mismatch') throw new InvalidHashError('recovery')
    return this.respond(nonce, {})
  }

  private async changeRecoveryKey(envelope: Envelope, trace: OperationTrace): Promise<string> {
    const { nonce, authentication: a } = readChangeRecoveryKey(envelope, this.isPoint)
    await this.rotateWith('changeRecoveryKey', envelope, trace, a, {
      kind: 'changeRecoveryHash',
      recoveryHash: a.recoveryHash,
    })
    return this.respond(nonce, {})
  }

  // ---------------------------------------------------------------- devices

  private async linkDevice(envelope: Envelope, trace: OperationTrace): Promise<string> {
    const { nonce, authentication, link } = readLinkDevice(envelope, this.isPoint)
    const linked = link.authentication
    trace.targetDevice = linked.device
    const { device, publicKey, rotationHash } = linked
    await this.rotateWith(
      'linkDevice',
      envelope,
      trace,
      authentication,
      { kind: 'linkDevice', device, publicKey, rotationHash },
      async () => {
        await verifySigned(
          this.verifier,
          link,
          publicKey,
          'link container',
          'payload.request.link.signature'
        )
        if (linked.identity !== authentication.identity) throw new MismatchedIdentitiesError()
        this.checkDevice(device, publicKey, rotationHash)
      }
    )
    return this.respond(nonce, {})
  }

  private async unlinkDevice(envelope: Envelope, trace: OperationTrace): Promise<string> {
    const { nonce, authentication, link } = readUnlinkDevice(envelope, this.isPoint)
    trace.targetDevice = link.device
    await this.rotateWith('unlinkDevice', envelope, trace, authentication, {
      kind: 'revokeDevice',
      device: link.device,
    })
    return this.respond(nonce, {})
  }

  private async rotateDevice(envelope: Envelope, trace: OperationTrace): Promise<string> {
    const { nonce, authentication } = readRotateDevice(envelope, this.isPoint)
    await this.rotateWith('rotateDevice', envelope, trace, authentication, { kind: 'none' })
    return this.respond(nonce, {})
  }

  // ---------------------------------------------------------------- sessions

  private async requestSession(envelope: Envelope, trace: OperationTrace): Promise<string> {
    const { nonce, identity } = readRequestSession(envelope)
    this.seen(trace, identity)
    // Unsigned: the identity's limit and backoff count per client IP, so that no one elsewhere
    // can use them up.
    const local = identityAtIp(identity, trace.ip)
    await this.rateLimiter?.checkBackoff(local)
    await this.limitIdentity('requestSession', local)
    if (!(await this.store.accounts.hasIdentity(identity)))
      throw new UnknownAccountError('identity')
    const challenge = this.noncer.generate128()
    await this.store.challenges.create(challenge, identity, this.ms.challenge)
    return this.respond(nonce, { authentication: { nonce: challenge } })
  }

  private async createSession(envelope: Envelope, trace: OperationTrace): Promise<string> {
    const { nonce, access, authentication } = readCreateSession(envelope, this.isPoint)
    trace.device = authentication.device
    const identity = await this.store.challenges.peek(authentication.nonce)
    if (identity === undefined) throw new InvalidChallengeError()
    this.seen(trace, identity)
    await this.rateLimiter?.checkBackoff(identityAtIp(identity, trace.ip))
    const key = await this.store.accounts.getDeviceKey(identity, authentication.device)
    if (key === undefined) throw new UnknownAccountError('device')
    await verifySigned(this.verifier, envelope, key.publicKey)
    await this.limitIdentity('createSession', identity)
    const attributes = await this.attributes(identity, authentication.device)
    // Consume only now, so a rejected message leaves the challenge usable; the atomic
    // consume lets exactly one of several concurrent valid answers through.
    if ((await this.store.challenges.consume(authentication.nonce)) !== identity) {
      throw new InvalidChallengeError()
    }
    const now = this.now()
    const token = await this.issueToken({
      device: authentication.device,
      identity,
      publicKey: access.publicKey,
      rotationHash: access.rotationHash,
      issuedAt: formatTimestamp(now),
      expiry: formatTimestamp(now + this.ms.accessToken),
      refreshExpiry: formatTimestamp(now + this.ms.refresh),
      attributes,
    })
    return this.respond(nonce, { access: { token } })
  }

  private async refreshSession(envelope: Envelope, trace: OperationTrace): Promise<string> {
    const { nonce, access } = readRefreshSession(envelope, this.isPoint)
    await verifySigned(this.verifier, envelope, access.publicKey)
    const token = await this.verifyToken(access.token)
    this.seen(trace, token.identity, token.device)
    const keyHash = this.hasher.sum(access.publicKey)
    if (keyHash !== token.rotationHash) throw new InvalidHashError('rotation')
    // The signature is by the key the token commits to: the identity's own session.
    await this.limitIdentity('refreshSession', token.identity)
    if ((await this.store.accounts.getDeviceKey(token.identity, token.device)) === undefined) {
      throw new UnknownAccountError('device')
    }
    const now = this.now()
    if (now > token.refreshExpiryMs) throw new ExpiredTokenError('refresh')
    const lock = Math.max(1, token.refreshExpiryMs - now) + this.ms.clockSkew
    // The key could have been used from the token's issue (less the skew between instances): a
    // store that lost its state since then refuses (BA607) rather than allow a second refresh.
    const usableFrom = token.issuedAtMs - this.ms.clockSkew
    if (!(await this.store.refreshKeys.reserve(keyHash, lock, usableFrom))) {
      throw new ReplayError('access key')
    }
    const fresh = await this.issueToken({
      device: token.device,
      identity: token.identity,
      publicKey: access.publicKey,
      rotationHash: access.rotationHash,
      issuedAt: formatTimestamp(now),
      expiry: formatTimestamp(now + this.ms.accessToken),
      refreshExpiry: token.refreshExpiry,
      attributes: token.attributes,
    })
    return this.respond(nonce, { access: { token: fresh } })
  }

  /**
   * The access verification keys, in a response envelope signed by the response key in the
   * key-list signing context (not as an application reply), so resource servers can trust them
   * (RemoteAccessKeys). A body `{"payload":{"access":{"nonce":N}}}`
   * makes the reply echo N (freshness); without a body the server picks the nonce.
   */
  async accessKeys(body: string | Uint8Array = ''): Promise<string> {
    const size = typeof body === 'string' ? body.length : body.byteLength
    const nonce =
      size === 0
        ? this.noncer.generate128()
        : readAccessKeysRequest(parseEnvelope(body, this.limits))
    const keys = this.loadedKeys ?? (await this.currentKeys())
    // Signed in its own context (see ACCESS_KEYS_SIGNING_CONTEXT), never as an application reply:
    // a route that echoes caller data as `{"accessKeys":[…]}` must not yield a usable key list.
    const payload =
      `{"access":{"nonce":${JSON.stringify(nonce)},"serverIdentity":"${keys.responseIdentity}"},` +
      `"response":${JSON.stringify({ accessKeys: keys.publishedAccessKeys() })}}`
    const signature = await keys.responseKey.sign(accessKeysSigningInput(payload))
    return `{"payload":${payload},"signature":"${signature}"}`
  }

  /** Signs and encodes a new token with the current access key. */
  async issueToken(claims: Omit<AccessTokenClaims<Attributes>, 'serverIdentity'>): Promise<string> {
    const keys = this.loadedKeys ?? (await this.currentKeys())
    const json = serializeClaims({ serverIdentity: keys.accessIdentity, ...claims })
    const signature = await keys.accessKey.sign(Buffer.from(json))
    return encodeToken(signature, json, this.compressionLevel)
  }

  // ---------------------------------------------------------------- access

  /**
   * Decodes a token and checks that a trusted access key signed it (not its lifetime).
   *
   * Verified tokens are cached by their text (the fast path) and by their signed content. A token
   * text is malleable (other implementations compress differently, so any gzip level, header or
   * block layout decodes; an ECDSA signature has two valid forms): a variant of a token already
   * verified costs one decode, finds the cached token by its signed JSON, and is not cached under
   * its own text, so variants cost no further signature check and cannot flush the cache.
   */
  async verifyToken(text: string): Promise<AccessToken<Attributes>> {
    const keys = this.loadedKeys ?? (await this.currentKeys())
    const cached = this.tokenCache.get(text)
    if (cached !== undefined) {
      this.tokenCache.get(contentKey(cached.json)) // both entries stay recently used
      return this.trusted(keys, cached)
    }
    const token = decodeToken<Attributes>(text, this.limits)
    const known = this.tokenCache.get(contentKey(token.json))
    if (known !== undefined) return this.trusted(keys, known)
    await this.trusted(keys, token)
    const valid = await this.verifier.verify(
      Buffer.from(token.json),
      token.signature,
      token.serverIdentity
    )
    if (!valid) throw new InvalidSignatureError('token')
    // Cached tokens are shared by every request that presents them: make them read-only.
    deepFreeze(token)
    this.tokenCache.set(text, token)
    this.tokenCache.set(contentKey(token.json), token)
    return token
  }

  /**
   * A canonical id of a token: the hash of its signed JSON, the same for every encoding of it.
   * Anything kept per token (a cache, a deny list) is keyed by this, never by the token text.
   */
  tokenId(token: AccessToken<Attributes> | string): string {
    const json = typeof token === 'string' ? decodeToken(token, this.limits).json : token.json
    return this.hasher.sum(json)
  }

  /** The token, if a trusted access key signed it; an unknown key may be a rotation not seen yet. */
  private async trusted(
    keys: ServerKeys,
    token: AccessToken<Attributes>
  ): Promise<AccessToken<Attributes>> {
    if (!keys.isTrustedAccessKey(token.serverIdentity)) {
      if (!(await keys.resolveAccessKey(token.serverIdentity))) throw new UnknownServerKeyError()
    }
    return token
  }

  /**
   * Verifies an access request (token, token lifetime, request signature, timestamp window) and
   * reserves its nonce. Throws a BetterAuthError; on success the caller answers with
   * `respond(principal.nonce, …)`.
   */
  async verifyAccess<Request = unknown>(
    body: string | Uint8Array,
    context: RequestContext = {},
    options: AccessCheckOptions = {}
  ): Promise<AccessPrincipal<Attributes, Request>> {
    const trace: RequestTrace = {}
    try {
      return await this.checkAccess<Request>(body, context, options, trace)
    } catch (error) {
      let e = toBetterAuthError(error)
      // Only a message the core could not read can be "no credentials"; the check runs on the
      // failure path only, so a valid request is parsed once.
      if (e.code === 'BA101' && lacksCredentials(body, this.limits)) {
        e = new CredentialsRequiredError({ cause: e })
      }
      if (e.code !== 'BA404' || options.credentialsRequired !== false) {
        this.emit(
          e.code === 'BA601' ? 'rate.limited' : 'access.denied',
          'access',
          trace,
          context,
          e
        )
      }
      throw e
    }
  }

  private async checkAccess<Request>(
    body: string | Uint8Array,
    context: RequestContext,
    options: AccessCheckOptions,
    trace: RequestTrace
  ): Promise<AccessPrincipal<Attributes, Request>> {
    const limiters = this.routeLimitersFor(options)
    if (limiters?.ip !== undefined) await consume(limiters.ip, context.ip ?? UNKNOWN_IP)
    const envelope = parseEnvelope(body, this.limits)
    const fields = readAccessRequest<Request>(envelope)
    const token = await this.verifyToken(fields.token)
    trace.identity = token.identity
    trace.device = token.device
    const now = this.now()
    if (token.issuedAtMs > now + this.ms.clockSkew) throw new FutureTokenError()
    if (now > token.expiryMs) throw new ExpiredTokenError('access')
    await verifySigned(this.verifier, envelope, token.publicKey)
    const t = fields.timestamp.ms
    if (t < now - this.ms.accessWindow) throw new StaleRequestError()
    if (t > now + this.ms.clockSkew) throw new FutureRequestError()
    if (limiters?.identity !== undefined) await consume(limiters.identity, token.identity)
    if (options.checkRevocation) await this.ensureActive(token, options.checkRevocation, now)
    const lock = this.ms.accessWindow + 2 * this.ms.clockSkew
    // A request may have been accepted from its timestamp less the skew: a store that lost its
    // state since then refuses it (BA607) rather than accept it a second time.
    if (!(await this.store.accessNonces.reserve(fields.nonce, lock, t - this.ms.clockSkew))) {
      throw new ReplayError('request nonce')
    }
    return {
      identity: token.identity,
      device: token.device,
      attributes: token.attributes,
      token,
      nonce: fields.nonce,
      timestamp: fields.timestamp.text,
      request: fields.request,
    }
  }

  /**
   * The limiters of a route's rule. They are found by the rule's value (its name and limits), not
   * by the options object: options written inline (`verifyAccess(body, ctx, { rateLimit: … })`)
   * are a new object on every call, and must still share one set of counters.
   */
  private routeLimitersFor(options: AccessCheckOptions): RouteLimiters | undefined {
    const rule = options.rateLimit
    if (rule === undefined || this.rateLimiter === undefined) return undefined
    const byObject = this.routeLimitersByOptions.get(rule)
    if (byObject !== undefined) return byObject
    const limits = JSON.stringify([rule.ip ?? null, rule.identity ?? null])
    const key = `${rule.name ?? ''}\u0000${limits}`
    let limiters = this.routeLimiters.get(key)
    if (limiters === undefined) {
      const id = rule.name ?? `rules:${limits}`
      limiters = {}
      if (rule.ip !== undefined) limiters.ip = this.rateLimiter.limiter(`route:${id}:ip`, rule.ip)
      if (rule.identity !== undefined) {
        limiters.identity = this.rateLimiter.limiter(`route:${id}:id`, rule.identity)
      }
      this.routeLimiters.set(key, limiters)
    }
    this.routeLimitersByOptions.set(rule, limiters)
    return limiters
  }

  /** The revocation check: the token's device must still be active (cached briefly). */
  private async ensureActive(
    token: AccessToken<Attributes>,
    option: true | { cacheMs?: number },
    now: number
  ): Promise<void> {
    const cacheMs = option === true ? 5000 : (option.cacheMs ?? 5000)
    const key = `${token.identity}:${token.device}`
    const cached = this.revocationCache.get(key)
    let active: boolean
    if (cached !== undefined && cached.until > now) {
      active = cached.active
    } else {
      active = (await this.store.accounts.getDeviceKey(token.identity, token.device)) !== undefined
      if (cacheMs > 0) this.revocationCache.set(key, { active, until: now + cacheMs })
    }
    if (!active) throw new UnknownAccountError('device (revoked)')
  }
}

/**
 * The token cache's key for a token's signed content. A token text starts with its 88-character
 * signature and so never starts with `{`, while its JSON always does: the two kinds of key cannot
 * collide.
 */
const contentKey = (json: string): string => json

/** Freezes a JSON-like value and everything in it. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const child of Object.values(value)) deepFreeze(child)
  }
  return value
}

const SUCCESS_EVENTS: Record<Operation, AuditEventType> = {
  createAccount: 'account.created',
  deleteAccount: 'account.deleted',
  recoverAccount: 'account.recovered',
  linkDevice: 'device.linked',
  unlinkDevice: 'device.unlinked',
  rotateDevice: 'device.rotated',
  requestSession: 'session.requested',
  createSession: 'session.created',
  refreshSession: 'session.refreshed',
  changeRecoveryKey: 'recovery.changed',
}

function throwForRotation(result: RotateResult): void {
  switch (result) {
    case 'ok':
      return
    case 'unknown-device':
      throw new UnknownAccountError('device')
    case 'hash-mismatch':
      throw new InvalidHashError('rotation')
    case 'target-unknown':
      throw new UnknownAccountError('device to unlink')
    case 'target-exists':
      throw new ConflictError('device')
  }
}

/** Creates a server core. */
export function createBetterAuth<Attributes = unknown>(
  options: BetterAuthOptions<Attributes> = {}
): BetterAuthServer<Attributes> {
  return new BetterAuthServer(options)
}
