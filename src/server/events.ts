/**
 * Audit events. Each names what happened, to whom (identity and device: public hashes) and
 * from where (route, client IP), with the error code when something was refused. Events never
 * carry keys, signatures, tokens or nonces.
 */
import type { ErrorCode } from '../errors'

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
  | 'rate.limited'

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
  /** For refusals: the error code and its meaning. */
  code?: ErrorCode
  reason?: string
  ip?: string
}

export type AuditListener = (event: AuditEvent) => void

/** What an operation learned about its caller so far (for events about refusals too). */
export interface RequestTrace {
  identity?: string
  device?: string
  targetDevice?: string
}
