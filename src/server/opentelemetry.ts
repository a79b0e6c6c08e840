/**
 * OpenTelemetry spans for the core's operations and access checks, made from the core's
 * `node:diagnostics_channel` tracing channels (`better-auth:operation`, `better-auth:access`).
 *
 * `@opentelemetry/api` is an optional peer dependency, loaded only here. A server created after
 * the application registered its tracer provider (the usual OpenTelemetry set-up: an SDK started
 * before the application's modules) bridges the channels by itself, once per process, unless its
 * `openTelemetry` option is `false`; `instrumentOpenTelemetry()` does it explicitly (e.g. with a
 * given tracer, or a provider registered later).
 *
 * The spans: `better-auth <operation>` for protocol operations and `better-auth access` for
 * access checks, children of the span active when the call started (the HTTP server span of an
 * instrumented app). Attributes: `better_auth.operation` or `better_auth.route`,
 * `better_auth.code` (`ok` or the error code), `better_auth.identity_hash` (a hash, never the
 * identity). A refusal sets the span's status to error with the code as its message. No key,
 * token, signature or nonce is ever an attribute.
 *
 * A span that cannot be made or ended never fails a request: every handler catches what it
 * throws (a throwing diagnostics_channel subscriber would otherwise surface as an uncaught
 * exception).
 */
import { tracingChannel } from 'node:diagnostics_channel'
import type * as OTelApi from '@opentelemetry/api'
import {
  ACCESS_CHANNEL,
  OPERATION_CHANNEL,
  type AccessTraceContext,
  type OperationTraceContext,
} from './observe'

/** The instrumentation scope of the spans. */
export const OPENTELEMETRY_SCOPE = 'better-auth-protocol'

export interface OpenTelemetryOptions {
  /** The tracer to start spans with. @default `trace.getTracer('better-auth-protocol')` */
  tracer?: OTelApi.Tracer
  /** The `@opentelemetry/api` module, if it cannot be loaded by name. */
  api?: typeof OTelApi
}

type Handlers = {
  start: (message: unknown) => void
  end: (message: unknown) => void
  asyncStart: (message: unknown) => void
  asyncEnd: (message: unknown) => void
  error: (message: unknown) => void
}

/** The bridge a server started by itself, if any. */
let automatic: (() => void) | undefined
/** Bridges in place (automatic or explicit): a server starts none while one is. */
let bridges = 0

function loadApi(): typeof OTelApi {
  try {
    // Loaded lazily (an optional peer), by a literal require bundlers see.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('@opentelemetry/api') as typeof OTelApi
  } catch (error) {
    throw new Error(
      'instrumentOpenTelemetry needs @opentelemetry/api: npm install @opentelemetry/api',
      {
        cause: error,
      }
    )
  }
}

/**
 * Makes OpenTelemetry spans of every operation and access check of every server in this
 * process. Returns a function that stops it.
 */
export function instrumentOpenTelemetry(options: OpenTelemetryOptions = {}): () => void {
  // An explicit bridge replaces the automatic one (else every span would be made twice).
  stopAutomaticOpenTelemetry()
  return bridge(options)
}

function bridge(options: OpenTelemetryOptions): () => void {
  const api = options.api ?? loadApi()
  const tracer = options.tracer ?? api.trace.getTracer(OPENTELEMETRY_SCOPE)
  const spans = new WeakMap<object, OTelApi.Span>()

  const handlers = (kind: 'operation' | 'access'): Handlers => ({
    start(message) {
      try {
        const context = message as OperationTraceContext & AccessTraceContext
        const attributes: OTelApi.Attributes =
          kind === 'operation'
            ? { 'better_auth.operation': context.operation }
            : { 'better_auth.route': context.route }
        const name =
          kind === 'operation' ? `better-auth ${context.operation}` : 'better-auth access'
        spans.set(
          context,
          tracer.startSpan(name, { kind: api.SpanKind.INTERNAL, attributes }, api.context.active())
        )
      } catch {
        // No span for this call; the request goes on.
      }
    },
    end() {},
    asyncStart() {},
    error(message) {
      try {
        const span = spans.get(message as object)
        const code = (message as { code?: string }).code
        span?.setStatus({ code: api.SpanStatusCode.ERROR, message: code ?? 'error' })
      } catch {
        // As above.
      }
    },
    asyncEnd(message) {
      try {
        const context = message as OperationTraceContext
        const span = spans.get(context)
        if (span === undefined) return
        spans.delete(context)
        const code = context.code ?? 'ok'
        span.setAttribute('better_auth.code', code)
        if (context.identityHash !== undefined) {
          span.setAttribute('better_auth.identity_hash', context.identityHash)
        }
        if (code !== 'ok') span.setStatus({ code: api.SpanStatusCode.ERROR, message: code })
        span.end()
      } catch {
        // As above.
      }
    },
  })

  const operations = tracingChannel(OPERATION_CHANNEL)
  const access = tracingChannel(ACCESS_CHANNEL)
  const onOperation = handlers('operation')
  const onAccess = handlers('access')
  operations.subscribe(onOperation)
  access.subscribe(onAccess)
  bridges += 1
  let stopped = false
  return () => {
    if (stopped) return
    stopped = true
    bridges -= 1
    operations.unsubscribe(onOperation)
    access.unsubscribe(onAccess)
  }
}

/**
 * What a server does at construction (`openTelemetry` not `false`): bridges the channels once
 * per process if `@opentelemetry/api` is installed and a tracer provider is registered. Returns
 * whether the bridge is (now or already) in place. Never throws.
 */
export function autoInstrumentOpenTelemetry(): boolean {
  if (bridges > 0) return true
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const api = require('@opentelemetry/api') as typeof OTelApi
    const provider = api.trace.getTracerProvider()
    // The global provider is a proxy until an SDK registers one; with none there is nothing to
    // export spans to, so the channels stay without subscribers (and cost nothing).
    if (
      provider instanceof api.ProxyTracerProvider &&
      provider.getDelegateTracer(OPENTELEMETRY_SCOPE) === undefined
    ) {
      return false
    }
    automatic = bridge({ api })
    return true
  } catch {
    return false
  }
}

/** Stops the bridge `autoInstrumentOpenTelemetry` started (for tests). */
export function stopAutomaticOpenTelemetry(): void {
  automatic?.()
  automatic = undefined
}
