/**
 * Observability of the core: metrics (through a `MetricsRecorder`, e.g. `createMetrics()`) and
 * tracing through `node:diagnostics_channel` tracing channels, which an application's
 * instrumentation (or an OpenTelemetry subscriber) picks up with no code here.
 *
 * Neither may fail a request: a recorder that throws is caught, and reported once through the
 * logger. With no recorder and no subscriber, an operation runs with no extra work.
 *
 * Labels and trace fields are bounded and hold no secrets: operations are the protocol's, codes
 * the protocol's error codes (or `ok`), routes a pattern or name the application configured (at
 * most `MAX_ROUTE_LABELS` of them), and identities are hashed.
 */
import { createHash } from 'node:crypto'
import { tracingChannel, type TracingChannel } from 'node:diagnostics_channel'
import { performance } from 'node:perf_hooks'
import { toBetterAuthError } from '../errors'
import type { Logger } from './options'

/** What the core records; `createMetrics()` gives one backed by prom-client. */
export interface MetricsRecorder {
  /** An operation ended: its name, its outcome (`ok` or an error code) and its duration. */
  operation(operation: string, code: string, seconds: number): void
  /** An access check ended: the route's label, its outcome and its duration. */
  access(route: string, code: string, seconds: number): void
  /** A request was refused by a rate limit (the operation, or `access`). */
  rateLimited(operation: string): void
  /** A store call failed (not a protocol refusal): which store. */
  storeError(store: string): void
  /** A token lookup in the verified-token cache. */
  tokenCache(hit: boolean): void
  /** A lookup of a token's access key among the keys known (a miss loads the keys again). */
  keyCache(hit: boolean): void
}

/** The tracing channel of protocol operations (createAccount, createSession, …). */
export const OPERATION_CHANNEL = 'better-auth:operation'
/** The tracing channel of access checks of protected routes. */
export const ACCESS_CHANNEL = 'better-auth:access'

/**
 * The context object of a trace on `better-auth:operation`. `code` and `identityHash` are set
 * before `asyncEnd` (and `error`) are published.
 */
export interface OperationTraceContext {
  operation: string
  /** `ok`, or the error code of the refusal (`BA601`, …). */
  code?: string
  /** A hash of the caller's identity (never the identity itself), once known. */
  identityHash?: string
  /** Set by diagnostics_channel on failure: the BetterAuthError. */
  error?: unknown
}

/** The context object of a trace on `better-auth:access`. */
export interface AccessTraceContext {
  /** The route's pattern or configured name (`route` or `rateLimit.name`), else `access`. */
  route: string
  code?: string
  identityHash?: string
  error?: unknown
}

/** The most distinct route labels kept; later ones are reported as `other`. */
export const MAX_ROUTE_LABELS = 200

/** A short, stable hash of an identity for traces: correlates requests, reveals nothing new. */
export function hashIdentity(identity: string): string {
  return createHash('sha256')
    .update('better-auth:trace\0')
    .update(identity)
    .digest('hex')
    .slice(0, 16)
}

type Channel = TracingChannel<unknown, object>

const hasSubscribers = (channel: Channel): boolean =>
  channel.start.hasSubscribers ||
  channel.end.hasSubscribers ||
  channel.asyncStart.hasSubscribers ||
  channel.asyncEnd.hasSubscribers ||
  channel.error.hasSubscribers

/** Who made the request, as far as the check found out. */
interface Traced {
  identity?: string | undefined
}

/** The core's metrics and traces. */
export class Observer {
  private readonly operations = tracingChannel(OPERATION_CHANNEL) as Channel
  private readonly accessChecks = tracingChannel(ACCESS_CHANNEL) as Channel
  private readonly routes = new Set<string>()
  private failed = false

  constructor(
    private readonly metrics: MetricsRecorder | undefined,
    private readonly logger: Logger,
    /** The operation names that may be labels (anything else is `unknown`). */
    private readonly knownOperations: ReadonlySet<string>
  ) {}

  /** Runs an operation, recording its outcome and duration and tracing it. */
  operation<T>(operation: string, trace: Traced, run: () => Promise<T>): Promise<T> {
    const label = this.knownOperations.has(operation) ? operation : 'unknown'
    const context: OperationTraceContext = { operation: label }
    return this.observe(this.operations, context, trace, run, (code, seconds) => {
      this.metrics?.operation(label, code, seconds)
      if (code === 'BA601') this.metrics?.rateLimited(label)
    })
  }

  /** Runs an access check, recording its outcome and duration and tracing it. */
  access<T>(route: string | undefined, trace: Traced, run: () => Promise<T>): Promise<T> {
    const label = this.routeLabel(route)
    const context: AccessTraceContext = { route: label }
    return this.observe(this.accessChecks, context, trace, run, (code, seconds) => {
      this.metrics?.access(label, code, seconds)
      if (code === 'BA601') this.metrics?.rateLimited('access')
    })
  }

  storeError(store: string): void {
    if (this.metrics === undefined) return
    try {
      this.metrics.storeError(store)
    } catch (error) {
      this.recorderFailed(error)
    }
  }

  tokenCache(hit: boolean): void {
    if (this.metrics === undefined) return
    try {
      this.metrics.tokenCache(hit)
    } catch (error) {
      this.recorderFailed(error)
    }
  }

  keyCache(hit: boolean): void {
    if (this.metrics === undefined) return
    try {
      this.metrics.keyCache(hit)
    } catch (error) {
      this.recorderFailed(error)
    }
  }

  /** Whether anything records: the token service skips its callbacks otherwise. */
  get recording(): boolean {
    return this.metrics !== undefined
  }

  private routeLabel(route: string | undefined): string {
    if (route === undefined || route === '') return 'access'
    if (this.routes.has(route)) return route
    if (this.routes.size >= MAX_ROUTE_LABELS) return 'other'
    this.routes.add(route)
    return route
  }

  private observe<T>(
    channel: Channel,
    context: { code?: string; identityHash?: string },
    trace: Traced,
    run: () => Promise<T>,
    record: (code: string, seconds: number) => void
  ): Promise<T> {
    const tracing = hasSubscribers(channel)
    const metrics = this.metrics
    if (metrics === undefined && !tracing) return run()
    const started = performance.now()
    const settle = (code: string): void => {
      context.code = code
      // The identity's hash is for traces only: metrics have no identity label.
      if (tracing && trace.identity !== undefined) {
        context.identityHash = hashIdentity(trace.identity)
      }
      if (metrics !== undefined) {
        try {
          record(code, (performance.now() - started) / 1000)
        } catch (error) {
          this.recorderFailed(error)
        }
      }
    }
    const observed = async (): Promise<T> => {
      let result: T
      try {
        result = await run()
      } catch (error) {
        settle(toBetterAuthError(error).code)
        throw error
      }
      settle('ok')
      return result
    }
    if (!tracing) return observed()
    // The result (a signed reply, maybe with a token) stays out of the trace context.
    let result: T
    return channel
      .tracePromise(async () => {
        result = await observed()
      }, context)
      .then(() => result)
  }

  /** A recorder call threw: the first failure is logged, none is propagated. */
  private recorderFailed(error: unknown): void {
    if (this.failed) return
    this.failed = true
    try {
      this.logger.error({ err: error }, 'metrics recorder failed (reported once)')
    } catch {
      // A logger that throws must not fail the request either.
    }
  }
}
