/**
 * What an operation is, as data: how its message is read, what it does, what it emits and how it
 * is limited, where it is mounted and how it is documented. Every table of the server (routes,
 * dispatch, events, rate rules, the OpenAPI document) derives from these definitions.
 */
import type { Hasher, Noncer, Verifier } from '../../crypto/types'
import type { Envelope } from '../../messages/envelope'
import type { PointCheck } from '../../messages/requests'
import type { AccessToken, AccessTokenClaims } from '../../messages/token'
import type { ServerStore } from '../../stores/types'
import type { AuditEventType, RequestTrace } from '../events'
import type { AttributesContext, IdentityVerifier, Lifetimes } from '../options'
import type { RateRule } from '../ratelimit'
import type { SessionGate } from '../session-gate'
import type { Json } from '../schema'

/** The protocol areas, each a module of `src/server/operations/`. */
export type OperationArea = 'accounts' | 'devices' | 'sessions'

/** What the core lends an operation: its store, crypto, clock and token service. */
export interface OperationServices {
  readonly store: ServerStore
  readonly hasher: Hasher
  readonly verifier: Verifier
  readonly noncer: Noncer
  /** Lifetimes in milliseconds. */
  readonly ms: Readonly<Required<Lifetimes>>
  readonly now: () => number
  /** Whether a public key is a valid curve point. */
  readonly isPoint: PointCheck
  readonly identityVerifier: IdentityVerifier
  /** What sessions check of the account's state (suspension, ended sessions), and record. */
  readonly sessions: SessionGate
  /** The application's token attributes: for a new session, and at refresh if asked. */
  attributes(identity: string, device: string, context: AttributesContext<unknown>): unknown
  issueToken(claims: Omit<AccessTokenClaims<unknown>, 'serverIdentity'>): Promise<string>
  verifyToken(text: string): Promise<AccessToken<unknown>>
  /** A signed reply echoing `nonce`. */
  respond(nonce: string, response: unknown): Promise<string>
  /** Refuses while a key (an identity at an IP) backs off after failed session attempts. */
  checkBackoff(key: string): Promise<void>
}

/** What an operation learns of its request as it runs, for events and limits. */
export interface OperationTrace extends RequestTrace {
  /** The client IP, when the adapter knows it. */
  ip?: string | undefined
}

/** One run of an operation. */
export interface OperationCall {
  readonly services: OperationServices
  readonly envelope: Envelope
  readonly trace: OperationTrace
  /**
   * Applies this operation's per-identity rate limit. Called only once a signature by a key of
   * the identity has verified: limits consumed before that would let anyone who knows an identity
   * (no key of it) block its owner's recovery or login. Until then only per-IP limits apply.
   */
  limitIdentity(key: string): Promise<void>
}

/** Default rate limits of an operation (`false`: none; absent: the `default` rule). */
export interface OperationRateRules {
  ip?: RateRule | false
  identity?: RateRule | false
}

/** The wire-level description of an operation. */
export interface OperationInfo {
  area: OperationArea
  /** The default HTTP path (relative to an adapter's prefix). */
  path: string
  /** One line for the route table and the OpenAPI document. */
  summary: string
  /** Whether the request is signed (requestSession is not). */
  signed: boolean
  /** The audit event of a success. */
  event: AuditEventType
  /** Default rate limits, per client IP and per identity. */
  rateLimit: OperationRateRules
  /** Failed session attempts count towards the identity's backoff (createSession). */
  backoff?: boolean
  /** May answer 409 (something already exists). */
  conflicts?: boolean
  /** May answer 403 BA307 (the identity is suspended). */
  suspendable?: boolean
  /** JSON Schemas of `payload.request` and `payload.response`. */
  schemas: { request: Json; response: Json }
}

/** An operation: its description, its message reader and its handler. */
export interface OperationDefinition extends OperationInfo {
  /** Reads and validates the message; throws a BetterAuthError naming the bad field. */
  read(envelope: Envelope, isPoint: PointCheck): unknown
  /** Reads the message, runs the operation, and returns the signed reply. */
  run(call: OperationCall): Promise<string>
}

/** An operation whose handler is typed by what its reader returns. */
export function defineOperation<Request>(
  definition: OperationInfo & {
    read(envelope: Envelope, isPoint: PointCheck): Request
    handle(call: OperationCall, request: Request): Promise<string>
  }
): OperationDefinition {
  const { handle, ...rest } = definition
  return {
    ...rest,
    run: call => handle(call, definition.read(call.envelope, call.services.isPoint)),
  }
}
