/**
 * Running an operation: the per-IP limit, the operation's own handler from the table, session
 * backoff bookkeeping, and one audit event whatever the outcome.
 */
import { toBetterAuthError } from '../errors'
import { parseEnvelope } from '../messages/envelope'
import type { EventBus } from './events'
import {
  OPERATION_DEFINITIONS,
  type Operation,
  type OperationDefinition,
  type OperationServices,
  type OperationTrace,
} from './operations'
import type { Logger, RequestContext, ResolvedLimits } from './options'
import { identityAtIp } from './rate-keys'
import type { RateLimiter } from './ratelimit'

export class OperationRunner {
  constructor(
    private readonly services: OperationServices,
    private readonly events: EventBus,
    private readonly rateLimiter: RateLimiter | undefined,
    private readonly limits: Readonly<ResolvedLimits>,
    private readonly logger: Logger
  ) {}

  /** Runs an operation; returns the signed response text or throws a BetterAuthError. */
  async run(
    operation: Operation,
    body: string | Uint8Array,
    context: RequestContext = {},
    /** Filled in as the caller is found out (the core's metrics and traces read it). */
    trace: OperationTrace = { ip: context.ip }
  ): Promise<string> {
    // Typed callers cannot name another operation; JavaScript ones get a 500 (BA600) for it.
    const definition = OPERATION_DEFINITIONS[operation] as OperationDefinition | undefined
    const rateLimiter = this.rateLimiter
    try {
      await rateLimiter?.checkIp(operation, context.ip)
      if (definition === undefined) throw new TypeError(`unknown operation: ${String(operation)}`)
      const reply = await definition.run({
        services: this.services,
        envelope: parseEnvelope(body, this.limits),
        trace,
        limitIdentity: async key => rateLimiter?.checkIdentity(operation, key),
      })
      if (definition.backoff === true && trace.identity !== undefined) {
        // The session exists already: a limiter failure here must not turn it into an error.
        await rateLimiter
          ?.recordSuccess(identityAtIp(trace.identity, context.ip))
          .catch((error: unknown) => this.logger.warn({ err: error }, 'rate limiter unavailable'))
      }
      this.events.emit(definition.event, operation, trace, context)
      return reply
    } catch (error) {
      const e = toBetterAuthError(error)
      if (
        definition?.backoff === true &&
        trace.identity !== undefined &&
        (e.code === 'BA201' || e.code === 'BA301')
      ) {
        await rateLimiter
          ?.recordFailure(identityAtIp(trace.identity, context.ip))
          .catch(() => undefined)
      }
      const type = e.code === 'BA601' ? 'rate.limited' : 'request.rejected'
      this.events.emit(type, operation, trace, context, e)
      throw e
    }
  }
}
