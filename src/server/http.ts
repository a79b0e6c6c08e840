/**
 * The HTTP face of errors: the answer for any failure (status, headers, protocol error body) and
 * its logging, and the one JSON content type every answer uses.
 */
import { RateLimitedError, toBetterAuthError } from '../errors'
import type { HandlerResult, Logger } from './options'

/** The content type of every JSON answer. The charset keeps clients that read other types as Latin-1 (older Dart http) on UTF-8. */
export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8'

/** Fresh headers of a JSON answer. */
export const jsonHeaders = (): Record<string, string> => ({ 'content-type': JSON_CONTENT_TYPE })

/**
 * The default logger of a core: errors one line each (a full stack only where `err` is given),
 * and each warning (a re-serialized body, unsealed keys, an unavailable rate limiter) once per
 * message, one line, on stderr. Info and debug are dropped.
 */
export function consoleLogger(): Logger {
  const warned = new Set<string>()
  return {
    error: (object, message) => {
      const { err, ...fields } = object as { err?: unknown }
      console.error(`${message ?? 'better-auth error'} ${safeJson(fields)}`)
      if (err instanceof Error && err.stack !== undefined) console.error(err.stack)
    },
    warn: (object, message) => {
      const text = message ?? 'better-auth warning'
      if (warned.has(text)) return
      warned.add(text)
      const { err, ...fields } = object as { err?: unknown }
      const cause = err instanceof Error ? ` (${err.message})` : ''
      console.warn(`better-auth warning: ${text}${cause} ${safeJson(fields)}`)
    },
    info: () => undefined,
    debug: () => undefined,
  }
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

/** Maps errors to HTTP answers and logs them (5xx as errors, the rest at debug level). */
export class ErrorResponder {
  /** Causes of 5xx answers already logged in full. */
  private readonly loggedCauses = new Set<string>()

  constructor(
    private readonly logger: Logger,
    private readonly debug: boolean
  ) {}

  result(error: unknown, context: Record<string, unknown> = {}): HandlerResult {
    const e = toBetterAuthError(error)
    const headers = jsonHeaders()
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
}
