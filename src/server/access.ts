/**
 * Access-request verification for protected routes: token, token lifetime, request signature,
 * timestamp window, route rate limits, optional revocation check, nonce reservation.
 */
import { LRUCache } from 'lru-cache'
import {
  checkRequestTime,
  readHeaderAccess,
  type HeaderAccessLimits,
  type HeadersInput,
  type RequestTarget,
} from '../binding'
import { encodeSignature } from '../codec/cesr'
import { formatTimestamp } from '../codec/timestamp'
import { NodeP256Verifier, ThreadpoolP256Verifier, sha256, sha256Base64 } from '../crypto/node'
import type { Verifier } from '../crypto/types'
import {
  CredentialsRequiredError,
  ExpiredTokenError,
  FutureRequestError,
  FutureTokenError,
  InvalidSignatureError,
  ReplayError,
  StaleRequestError,
  toBetterAuthError,
} from '../errors'
import { lacksCredentials, parseEnvelope, verifySigned } from '../messages/envelope'
import { readAccessRequest } from '../messages/requests'
import type { ServerStore } from '../stores/types'
import type { EventBus, RequestTrace } from './events'
import type {
  AccessCheckOptions,
  AccessPrincipal,
  Lifetimes,
  RequestContext,
  ResolvedLimits,
} from './options'
import { UNKNOWN_IP, consume, type RateLimiter } from './ratelimit'
import type { SessionGate } from './session-gate'
import type { TokenService } from './tokens'

/** A route rule's counters. */
interface RouteLimiters {
  ip?: ReturnType<RateLimiter['limiter']>
  identity?: ReturnType<RateLimiter['limiter']>
}

/** A header-form access request as an adapter hands it to the core. */
export interface HeaderAccessRequest<Request = unknown> {
  /** The method as received. */
  method: string
  /**
   * The absolute request URL (`http://<Host><path>?<query>`; the scheme is not covered), or its
   * covered parts (`serverTarget(host, req.url)`).
   */
  url: string | URL | RequestTarget
  /**
   * The request's headers with every field line kept (node's `req.headersDistinct`, a fetch
   * `Headers`), so a duplicated field is refused rather than silently merged.
   */
  headers: HeadersInput
  /** The body bytes exactly as received (checked against `Content-Digest`). */
  body?: Uint8Array
  /** What the application's parser made of the body: the principal's `request`. */
  parsed?: Request
}

/** What access verification needs of the core. */
export interface AccessDependencies<Attributes> {
  store: ServerStore
  verifier: Verifier
  tokens: TokenService<Attributes>
  events: EventBus
  rateLimiter: RateLimiter | undefined
  limits: Readonly<ResolvedLimits>
  ms: Readonly<Required<Lifetimes>>
  now: () => number
  /** The authority header-form requests are signed for, unless a route says otherwise. */
  authority: string | undefined
  headerLimits?: HeaderAccessLimits
  /** The revocation check (`checkRevocation`) and its cache. */
  sessions: SessionGate
}

export class AccessVerifier<Attributes = unknown> {
  /** Route limiters by rule value (bounded: rules are written in code, not sent by clients). */
  private readonly routeLimiters = new LRUCache<string, RouteLimiters>({ max: 10_000 })
  /** The same, by rule object: a shortcut for options built once. */
  private readonly routeLimitersByOptions = new WeakMap<object, RouteLimiters>()

  private lastCreated = NaN
  private lastCreatedText = ''

  constructor(private readonly d: AccessDependencies<Attributes>) {}

  /** A token text the token service has verified before (made once, not per request). */
  private readonly knownToken = (text: string): boolean => this.d.tokens.known(text)

  /** Verifies an access request; reports a refusal as an audit event (see `BetterAuthServer.verifyAccess`). */
  async verify<Request = unknown>(
    body: string | Uint8Array,
    context: RequestContext = {},
    options: AccessCheckOptions = {},
    trace: RequestTrace = {}
  ): Promise<AccessPrincipal<Attributes, Request>> {
    try {
      return await this.check<Request>(body, context, options, trace)
    } catch (error) {
      let e = toBetterAuthError(error)
      // Only a message the core could not read can be "no credentials"; the check runs on the
      // failure path only, so a valid request is parsed once.
      if (e.code === 'BA101' && lacksCredentials(body, this.d.limits)) {
        e = new CredentialsRequiredError({ cause: e })
      }
      throw this.refused(e, trace, context, options)
    }
  }

  /**
   * Verifies a header-form access request (docs/http-binding.md §2.6): the fields, the token as
   * in the body form, the request signature with the token's key, the time window, the route's
   * rate limits and revocation check, and the nonce, reserved in the same time-lock as the body
   * form's. Refusals are reported as in the body form.
   */
  async verifyHeaders<Request = unknown>(
    request: HeaderAccessRequest<Request>,
    context: RequestContext = {},
    options: AccessCheckOptions = {},
    trace: RequestTrace = {}
  ): Promise<AccessPrincipal<Attributes, Request>> {
    try {
      return await this.checkHeaders<Request>(request, context, options, trace)
    } catch (error) {
      throw this.refused(toBetterAuthError(error), trace, context, options)
    }
  }

  /** Reports a refusal as an audit event (not a missing credential on optional routes). */
  private refused(
    e: ReturnType<typeof toBetterAuthError>,
    trace: RequestTrace,
    context: RequestContext,
    options: AccessCheckOptions
  ): Error {
    if (e.code !== 'BA404' || options.credentialsRequired !== false) {
      const type = e.code === 'BA601' ? 'rate.limited' : 'access.denied'
      this.d.events.emit(type, 'access', trace, context, e)
    }
    return e
  }

  private async checkHeaders<Request>(
    request: HeaderAccessRequest<Request>,
    context: RequestContext,
    options: AccessCheckOptions,
    trace: RequestTrace
  ): Promise<AccessPrincipal<Attributes, Request>> {
    const { ms } = this.d
    const limiters = this.routeLimitersFor(options)
    if (limiters?.ip !== undefined) await consume(limiters.ip, context.ip ?? UNKNOWN_IP)
    const authority = options.authority ?? this.d.authority
    const access = readHeaderAccess(
      {
        method: request.method,
        url: request.url,
        headers: request.headers,
        // Every key present (undefined when absent): one object shape, no spreads to copy.
        body: request.body,
        expectedAuthority: authority,
        sha256,
        sha256Base64,
        knownToken: this.knownToken,
      },
      this.d.headerLimits
    )
    const token = await this.d.tokens.verify(access.token)
    trace.identity = token.identity
    trace.device = token.device
    const now = this.d.now()
    if (token.issuedAtMs > now + ms.clockSkew) throw new FutureTokenError()
    if (now > token.expiryMs) throw new ExpiredTokenError('access')
    if (access.keyid !== undefined && access.keyid !== token.publicKey) {
      throw new InvalidSignatureError('request', {
        context: { reason: 'keyid is not the token key' },
      })
    }
    // verifyHeaderAccess of src/binding; node:crypto's verifiers take the raw signature as is.
    const base = Buffer.from(access.signatureBase)
    const verifier = this.d.verifier
    const valid =
      verifier instanceof ThreadpoolP256Verifier || verifier instanceof NodeP256Verifier
        ? await verifier.verifyRaw(base, access.signature, token.publicKey)
        : await verifier.verify(base, encodeSignature(access.signature), token.publicKey)
    if (!valid) throw new InvalidSignatureError('request')
    checkRequestTime(access.created, now, {
      accessWindowMs: ms.accessWindow,
      clockSkewMs: ms.clockSkew,
    })
    if (limiters?.identity !== undefined) await consume(limiters.identity, token.identity)
    if (options.checkRevocation) await this.d.sessions.access(token, options.checkRevocation, now)
    await this.reserve(access.nonce, access.created)
    return {
      identity: token.identity,
      device: token.device,
      attributes: token.attributes,
      token,
      nonce: access.nonce,
      timestamp: this.createdText(access.created),
      request: request.parsed as Request,
      binding: 'headers',
      requestSignature: access.signature,
    }
  }

  /** The RFC 3339 text of a header-form `created` (whole seconds: the last one is kept). */
  private createdText(created: number): string {
    if (created !== this.lastCreated) {
      this.lastCreatedText = formatTimestamp(created)
      this.lastCreated = created
    }
    return this.lastCreatedText
  }

  /**
   * Reserves a request nonce, whichever form it came in (one time-lock for both). A request may
   * have been accepted from its timestamp less the skew: a store that lost its state since then
   * refuses it (BA607) rather than accept it a second time.
   */
  private async reserve(nonce: string, timestamp: number): Promise<void> {
    const { ms } = this.d
    const lock = ms.accessWindow + 2 * ms.clockSkew
    if (!(await this.d.store.accessNonces.reserve(nonce, lock, timestamp - ms.clockSkew))) {
      throw new ReplayError('request nonce')
    }
  }

  private async check<Request>(
    body: string | Uint8Array,
    context: RequestContext,
    options: AccessCheckOptions,
    trace: RequestTrace
  ): Promise<AccessPrincipal<Attributes, Request>> {
    const { ms } = this.d
    const limiters = this.routeLimitersFor(options)
    if (limiters?.ip !== undefined) await consume(limiters.ip, context.ip ?? UNKNOWN_IP)
    const envelope = parseEnvelope(body, this.d.limits)
    const fields = readAccessRequest<Request>(envelope)
    const token = await this.d.tokens.verify(fields.token)
    trace.identity = token.identity
    trace.device = token.device
    const now = this.d.now()
    if (token.issuedAtMs > now + ms.clockSkew) throw new FutureTokenError()
    if (now > token.expiryMs) throw new ExpiredTokenError('access')
    await verifySigned(this.d.verifier, envelope, token.publicKey)
    const t = fields.timestamp.ms
    if (t < now - ms.accessWindow) throw new StaleRequestError()
    if (t > now + ms.clockSkew) throw new FutureRequestError()
    if (limiters?.identity !== undefined) await consume(limiters.identity, token.identity)
    if (options.checkRevocation) await this.d.sessions.access(token, options.checkRevocation, now)
    await this.reserve(fields.nonce, t)
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
    const rateLimiter = this.d.rateLimiter
    if (rule === undefined || rateLimiter === undefined) return undefined
    const byObject = this.routeLimitersByOptions.get(rule)
    if (byObject !== undefined) return byObject
    const limits = JSON.stringify([rule.ip ?? null, rule.identity ?? null])
    const key = `${rule.name ?? ''}\u0000${limits}`
    let limiters = this.routeLimiters.get(key)
    if (limiters === undefined) {
      const id = rule.name ?? `rules:${limits}`
      limiters = {}
      if (rule.ip !== undefined) limiters.ip = rateLimiter.limiter(`route:${id}:ip`, rule.ip)
      if (rule.identity !== undefined) {
        limiters.identity = rateLimiter.limiter(`route:${id}:id`, rule.identity)
      }
      this.routeLimiters.set(key, limiters)
    }
    this.routeLimitersByOptions.set(rule, limiters)
    return limiters
  }
}
