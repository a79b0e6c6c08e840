/**
 * The server core's front: `BetterAuthServer` wires the modules that do the work — options
 * (`./options`), tokens (`./tokens`), signed replies (`./responses`), access checks (`./access`),
 * operations (`./operations`, run by `./dispatch`), events (`./events`), HTTP errors (`./http`)
 * and keys (`./key-loader`). Adapters only move bytes in and out of `handle`.
 */
import { Blake3Hasher } from '../crypto/blake3'
import { ThreadpoolP256Verifier, ecdsaScheduler } from '../crypto/node'
import { RandomNoncer } from '../crypto/nonce'
import type { Hasher, Noncer, Verifier } from '../crypto/types'
import type { AccessToken, AccessTokenClaims } from '../messages/token'
import { MemoryStore } from '../stores/memory'
import type { ServerStore } from '../stores/types'
import { AccessVerifier, type HeaderAccessRequest } from './access'
import { AdminApi } from './admin'
import { OperationRunner } from './dispatch'
import { EventBus, type AuditListener, type RequestTrace } from './events'
import { HeaderReplySigner } from './header-replies'
import { ErrorResponder, consoleLogger, jsonHeaders } from './http'
import { KeyLoader } from './key-loader'
import type { ServerKeys } from './keys'
import { Observer, type MetricsRecorder } from './observe'
import { autoInstrumentOpenTelemetry } from './opentelemetry'
import { OPERATIONS, type OperationServices, type OperationTrace } from './operations'
import {
  resolveEcdsaPlacement,
  resolveNumbers,
  type AccessCheckOptions,
  type AccessPrincipal,
  type AttributesCallback,
  type BetterAuthOptions,
  type HandlerResult,
  type Lifetimes,
  type Logger,
  type RequestContext,
  type ResolvedLimits,
} from './options'
import { RateLimiter } from './ratelimit'
import { ResponseSigner } from './responses'
import {
  DEFAULT_PATHS,
  routeTable,
  type Endpoint,
  type Operation,
  type Paths,
  type RouteInfo,
} from './routes'
import { SessionGate } from './session-gate'
import { guardStore } from './store-guard'
import { TokenService } from './tokens'

export type { HeaderAccessRequest } from './access'
export type {
  AccessCheckOptions,
  AccessPrincipal,
  AttributesCallback,
  BetterAuthOptions,
  HandlerResult,
  IdentityVerifier,
  Lifetimes,
  Limits,
  Logger,
  RequestContext,
} from './options'

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
  /** See `BetterAuthOptions.allowReserializedBody`. */
  readonly allowReserializedBody: boolean
  /** The limits, validated, with the body limit filled in. */
  readonly limits: Readonly<ResolvedLimits>
  readonly now: () => number
  /** Lifetimes in milliseconds. */
  readonly ms: Readonly<Required<Lifetimes>>
  /** The `metrics` option: what `metricsHandler` serves. */
  readonly metrics: MetricsRecorder | undefined
  /** Administration of identities, devices and sessions (see `AdminApi`; needs an admin store). */
  readonly admin: AdminApi

  private readonly rawStore: ServerStore
  private readonly keyLoader: KeyLoader
  private readonly tokens: TokenService<Attributes>
  private readonly signer: ResponseSigner
  private readonly access: AccessVerifier<Attributes>
  private readonly runner: OperationRunner
  private readonly events: EventBus
  private readonly errors: ErrorResponder
  private readonly observer: Observer
  private readonly auditAccessGranted: boolean
  private readonly replies: HeaderReplySigner

  /** Validates every option (a `TypeError` names a bad one) and wires the core's modules. */
  constructor(options: BetterAuthOptions<Attributes> = {}) {
    Object.defineProperty(this, SERVER_BRAND, { value: true })
    const numbers = resolveNumbers(options)
    this.rawStore = options.store ?? new MemoryStore()
    this.store = guardStore(this.rawStore, store => this.observer.storeError(store))
    this.paths = Object.freeze({ ...DEFAULT_PATHS, ...options.paths })
    this.hasher = options.crypto?.hasher ?? new Blake3Hasher()
    const scheduler = ecdsaScheduler(resolveEcdsaPlacement(options.crypto?.ecdsa))
    this.replies = new HeaderReplySigner(scheduler)
    this.verifier = options.crypto?.verifier ?? new ThreadpoolP256Verifier({ scheduler })
    this.noncer = options.crypto?.noncer ?? new RandomNoncer()
    this.debug = options.debug ?? false
    this.logger = options.logger ?? consoleLogger()
    this.allowReserializedBody = options.allowReserializedBody ?? true
    this.limits = numbers.limits
    this.now = options.now ?? Date.now
    this.ms = numbers.ms
    this.metrics = options.metrics
    this.auditAccessGranted = options.auditAccessGranted ?? false
    this.observer = new Observer(this.metrics, this.logger, new Set<string>(OPERATIONS))
    if (options.openTelemetry !== false) autoInstrumentOpenTelemetry()
    this.errors = new ErrorResponder(this.logger, this.debug)
    this.events = new EventBus(this.now, error =>
      this.logger.error({ err: error }, 'audit event listener failed')
    )
    if (options.onEvent !== undefined) this.events.subscribe(options.onEvent)
    // A durable store keeps the keys (unless the options or the environment give them).
    this.keyLoader = KeyLoader.of(options.keys, {
      store: this.rawStore.keys,
      now: this.now,
      retireAfterMs: this.ms.refresh + this.ms.clockSkew,
      onWarning: (message: string) =>
        this.logger.warn({ code: 'BETTER_AUTH_UNSEALED_KEYS' }, message),
    })
    this.tokens = new TokenService<Attributes>(
      this.keyLoader,
      this.hasher,
      this.verifier,
      this.limits,
      numbers.compressionLevel,
      numbers.tokenCacheSize,
      scheduler,
      this.observer.recording ? this.observer : undefined
    )
    this.signer = new ResponseSigner(this.keyLoader, this.noncer, this.limits, scheduler)
    const rateLimiter = options.rateLimit === false ? undefined : new RateLimiter(options.rateLimit)
    const sessions = new SessionGate(this.store, this.logger, numbers.revocationCacheMs, options)
    this.admin = new AdminApi({ gate: sessions, events: this.events, now: this.now })
    this.access = new AccessVerifier<Attributes>({
      sessions,
      store: this.store,
      verifier: this.verifier,
      tokens: this.tokens,
      events: this.events,
      rateLimiter,
      limits: this.limits,
      ms: this.ms,
      now: this.now,
      authority: options.authority,
    })
    const attributes: AttributesCallback<Attributes> =
      options.attributes ?? (() => ({}) as Attributes)
    const services: OperationServices = {
      sessions,
      store: this.store,
      hasher: this.hasher,
      verifier: this.verifier,
      noncer: this.noncer,
      ms: this.ms,
      now: this.now,
      isPoint: publicKey => this.verifier.isValidPublicKey(publicKey),
      identityVerifier:
        options.identityVerifier ??
        ((identity, publicKey, rotationHash, recoveryHash) =>
          this.hasher.sum(publicKey + rotationHash + recoveryHash) === identity),
      attributes,
      issueToken: claims =>
        this.issueToken(claims as Omit<AccessTokenClaims<Attributes>, 'serverIdentity'>),
      verifyToken: text => this.tokens.verify(text),
      respond: (nonce, response) => this.signer.respond(nonce, response),
      checkBackoff: async key => rateLimiter?.checkBackoff(key),
    }
    this.runner = new OperationRunner(services, this.events, rateLimiter, this.limits, this.logger)
  }

  // ---------------------------------------------------------------- keys and lifecycle

  /** Resolves when the keys are loaded; rejects if they cannot be. */
  async ready(): Promise<void> {
    await this.keyLoader.current()
  }

  /** The server's keys (response key, access keys). */
  keys(): Promise<ServerKeys> {
    return this.keyLoader.current()
  }

  /** The response public key (`1AAI…`): the server's identity. */
  async responsePublicKey(): Promise<string> {
    return (await this.keyLoader.current()).responseIdentity
  }

  /** The route table (paths as configured) under an optional prefix. */
  routes(prefix = ''): RouteInfo[] {
    return routeTable(this.paths, prefix)
  }

  async close(): Promise<void> {
    this.keyLoader.loaded?.close()
    await this.rawStore.close?.()
  }

  // ---------------------------------------------------------------- entry points

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
      const reply =
        endpoint === 'accessKeys'
          ? await this.accessKeys(body)
          : await this.run(endpoint, body, context)
      return { status: 200, headers: jsonHeaders(), body: reply }
    } catch (error) {
      return this.errorResult(error, { endpoint, ...context })
    }
  }

  /**
   * Runs an operation; returns the signed response text or throws a BetterAuthError.
   * Applies rate limits and emits an audit event either way.
   */
  run(
    operation: Operation,
    body: string | Uint8Array,
    context: RequestContext = {}
  ): Promise<string> {
    const trace: OperationTrace = { ip: context.ip }
    return this.observer.operation(operation, trace, () =>
      this.runner.run(operation, body, context, trace)
    )
  }

  /**
   * Verifies an access request (token, token lifetime, request signature, timestamp window) and
   * reserves its nonce. Throws a BetterAuthError; on success the caller answers with
   * `respond(principal.nonce, …)`.
   */
  verifyAccess<Request = unknown>(
    body: string | Uint8Array,
    context: RequestContext = {},
    options: AccessCheckOptions = {}
  ): Promise<AccessPrincipal<Attributes, Request>> {
    const trace: RequestTrace = {}
    return this.observer.access(options.route ?? options.rateLimit?.name, trace, async () =>
      this.granted(await this.access.verify<Request>(body, context, options, trace), context)
    )
  }

  /**
   * Verifies a header-form access request (HTTP Message Signatures, docs/http-binding.md):
   * `{ method, url, headers, body, parsed }` with the URL absolute (its authority is checked
   * unless the core's or the route's `authority` option says which to expect), the headers with
   * every field line kept (node's `req.headersDistinct`), the body bytes as received, and what
   * the application parsed of them (the principal's `request`). The same token checks, window,
   * route limits, revocation check, events and error codes as `verifyAccess`; the nonce is
   * reserved in the same time-lock, so a nonce used in either form is used. On success answer
   * with `signHeaderResponse` and `principal.requestSignature`.
   */
  verifyHeaderAccess<Request = unknown>(
    request: HeaderAccessRequest<Request>,
    context: RequestContext = {},
    options: AccessCheckOptions = {}
  ): Promise<AccessPrincipal<Attributes, Request>> {
    const trace: RequestTrace = {}
    return this.observer.access(options.route ?? options.rateLimit?.name, trace, async () =>
      this.granted(
        await this.access.verifyHeaders<Request>(request, context, options, trace),
        context
      )
    )
  }

  /** Emits `access.granted` when asked to (`auditAccessGranted`); returns the principal. */
  private granted<P extends { identity: string; device: string }>(
    principal: P,
    context: RequestContext
  ): P {
    if (this.auditAccessGranted) {
      const trace = { identity: principal.identity, device: principal.device }
      this.events.emit('access.granted', 'access', trace, context)
    }
    return principal
  }

  /**
   * The headers that sign a reply to a header-form request with the response key (lower-case:
   * `signature-input`, `signature`, and `content-digest` with a body). `body` is the reply exactly
   * as it will be sent; `requestSignature` is the principal's.
   */
  async signHeaderResponse(reply: {
    status: number
    headers?: Record<string, string | string[] | undefined>
    body?: Uint8Array
    requestSignature: Uint8Array
  }): Promise<Record<string, string>> {
    const keys = this.keyLoader.loaded ?? (await this.keyLoader.current())
    return this.replies.sign(reply, keys.responseKey, keys.responseIdentity, this.now())
  }

  // ---------------------------------------------------------------- tokens and replies

  /** Decodes a token and checks that a trusted access key signed it (not its lifetime). */
  verifyToken(text: string): Promise<AccessToken<Attributes>> {
    return this.tokens.verify(text)
  }

  /**
   * A canonical id of a token: the hash of its signed JSON, the same for every encoding of it.
   * Anything kept per token (a cache, a deny list) is keyed by this, never by the token text.
   */
  tokenId(token: AccessToken<Attributes> | string): string {
    return this.tokens.id(token)
  }

  /** Signs and encodes a new token with the current access key. */
  issueToken(claims: Omit<AccessTokenClaims<Attributes>, 'serverIdentity'>): Promise<string> {
    return this.tokens.issue(claims)
  }

  /** A signed response envelope echoing `nonce`, with `response` as its application data. */
  respond(nonce: string, response: unknown): Promise<string> {
    return this.signer.respond(nonce, response)
  }

  /**
   * The access verification keys, in a response envelope signed by the response key in the
   * key-list signing context (not as an application reply), so resource servers can trust them
   * (RemoteAccessKeys). A body `{"payload":{"access":{"nonce":N}}}`
   * makes the reply echo N (freshness); without a body the server picks the nonce.
   */
  accessKeys(body: string | Uint8Array = ''): Promise<string> {
    return this.signer.accessKeys(body)
  }

  // ---------------------------------------------------------------- events and errors

  /** Subscribes to audit events; returns a function that unsubscribes. */
  onEvent(listener: AuditListener): () => void {
    return this.events.subscribe(listener)
  }

  /** The HTTP answer for an error; logs it (5xx as errors, the rest at debug level). */
  errorResult(error: unknown, context: Record<string, unknown> = {}): HandlerResult {
    return this.errors.result(error, context)
  }
}

/** Creates a server core. */
export function createBetterAuth<Attributes = unknown>(
  options: BetterAuthOptions<Attributes> = {}
): BetterAuthServer<Attributes> {
  return new BetterAuthServer(options)
}
