/**
 * Audit events. Each names what happened, to whom (identity and device: public hashes) and
 * from where (route, client IP), with the error code when something was refused. Events never
 * carry keys, signatures, tokens or nonces.
 */
import { formatTimestamp } from '../codec/timestamp'
import { ERROR_CODES, type BetterAuthError, type ErrorCode } from '../errors'

export type AuditEventType =
  | 'account.created'
  | 'account.deleted'
  | 'account.recovered'
  | 'recovery.changed'
  | 'device.linked'
  | 'device.unlinked'
  | 'device.rotated'
  | 'session.requested'
  | 'session.created'
  | 'session.refreshed'
  /** A protocol operation was refused. */
  | 'request.rejected'
  /** An access request to a protected route was refused. */
  | 'access.denied'
  /** An access request to a protected route was accepted (only with `auditAccessGranted`). */
  | 'access.granted'
  | 'rate.limited'
  /** Administration (`auth.admin`): a device was revoked (a server-side unlink). */
  | 'admin.device.revoked'
  /** Administration: the sessions of an identity, or of one of its devices, were ended. */
  | 'admin.sessions.ended'
  /** Administration: an identity was suspended (its sessions ended with it). */
  | 'admin.identity.suspended'
  /** Administration: a suspension was lifted. */
  | 'admin.identity.reinstated'
  /** Administration: an identity was deleted (tombstoned). */
  | 'admin.identity.deleted'

export interface AuditEvent {
  type: AuditEventType
  /** RFC 3339 time of the event. */
  time: string
  /**
   * The request path when the adapter gave one (`RequestContext.path`); otherwise the operation
   * name, or `access` for access checks.
   */
  route: string
  identity?: string
  device?: string
  /** linkDevice / unlinkDevice: the device linked or unlinked. */
  targetDevice?: string
  /**
   * For refusals: the error code and its meaning (`reason`). For `admin.identity.suspended`:
   * the reason the actor gave, if any.
   */
  code?: ErrorCode
  reason?: string
  ip?: string
  /** Administrative events: who acted, as the caller of `auth.admin` named them. */
  actor?: string
}

export type AuditListener = (event: AuditEvent) => void

/** What an operation learned about its caller so far (for events about refusals too). */
export interface RequestTrace {
  identity?: string
  device?: string
  targetDevice?: string
  /** Administrative actions: who acted. */
  actor?: string
  /** Administrative actions: the reason the actor gave. */
  reason?: string
}

/** Where an event comes from besides its trace: the adapter's request path and client IP. */
export interface EventSource {
  ip?: string | undefined
  path?: string | undefined
}

/** The audit listeners of a core, and the building of their events. */
export class EventBus {
  private readonly listeners: AuditListener[] = []

  constructor(
    private readonly now: () => number,
    private readonly onListenerError: (error: unknown) => void
  ) {}

  /** Subscribes to audit events; returns a function that unsubscribes. */
  subscribe(listener: AuditListener): () => void {
    this.listeners.push(listener)
    return () => {
      const i = this.listeners.indexOf(listener)
      if (i >= 0) this.listeners.splice(i, 1)
    }
  }

  /** Sends an event to every listener; a listener that throws is reported, never propagated. */
  emit(
    type: AuditEventType,
    route: string,
    trace: RequestTrace,
    source: EventSource,
    error?: BetterAuthError
  ): void {
    if (this.listeners.length === 0) return
    const event: AuditEvent = {
      type,
      time: formatTimestamp(this.now()),
      route: source.path ?? route,
    }
    if (trace.identity !== undefined) event.identity = trace.identity
    if (trace.device !== undefined) event.device = trace.device
    if (trace.targetDevice !== undefined) event.targetDevice = trace.targetDevice
    if (trace.actor !== undefined) event.actor = trace.actor
    if (trace.reason !== undefined) event.reason = trace.reason
    if (error !== undefined) {
      event.code = error.code
      event.reason = ERROR_CODES[error.code].title
    }
    if (source.ip !== undefined) event.ip = source.ip
    for (const listener of this.listeners) {
      try {
        listener(event)
      } catch (listenerError) {
        this.onListenerError(listenerError)
      }
    }
  }
}
