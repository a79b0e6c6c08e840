/**
 * Administration of accounts: `auth.admin`. An operator (a CLI, an admin endpoint, a support tool)
 * reads an identity with its devices, revokes a device, ends sessions, suspends and reinstates an
 * identity, or deletes it. Each action is one atomic store call, changes nothing when the identity
 * or device is unknown (404 BA608), and emits an audit event naming the actor; events never carry
 * keys, tokens or nonces.
 *
 * It needs a store with administration (`AdminAccountStore`: the memory, SQLite and PostgreSQL
 * stores); on another store every call rejects with 501 BA609 and `supported` is false.
 *
 * When an action takes effect (see `./session-gate`): at once for requestSession, createSession
 * and refresh on every instance sharing the store; at access only on routes with
 * `checkRevocation`, at once on the instance that acted and within `revocationCacheMs` (2 s by
 * default) on the others; on other routes a token keeps working until it expires.
 */
import { AdminNotFoundError, AdminUnsupportedError, InvalidMessageError } from '../errors'
import type { AccountStore, AdminAccountStore, DeviceRecord, IdentityRecord } from '../stores/types'
import type { EventBus } from './events'
import type { RequestContext } from './options'
import type { SessionGate } from './session-gate'

/** What every administrative action takes. */
export interface AdminActionOptions {
  /**
   * Who acts: an operator's name or id, as the caller authenticated them (1–256 characters, no
   * control characters). The audit event carries it.
   */
  actor: string
  /** Where the call came from (an admin endpoint's client IP and path), for the audit event. */
  context?: RequestContext
}

export interface EndSessionsOptions extends AdminActionOptions {
  /** End only this device's sessions. @default every device of the identity */
  device?: string
}

export interface SuspendOptions extends AdminActionOptions {
  /** Why (at most 1000 characters, no control characters); kept with the suspension and in the event. */
  reason?: string
}

/** A device as `getIdentity` lists it (times in ms since the epoch, null when not recorded). */
export type AdminDevice = DeviceRecord

/** An identity as `getIdentity` answers it, with its active devices, oldest first. */
export type AdminIdentity = IdentityRecord

/** The administrative actions, named as their audit events. */
export type AdminAction =
  | 'admin.device.revoked'
  | 'admin.sessions.ended'
  | 'admin.identity.suspended'
  | 'admin.identity.reinstated'
  | 'admin.identity.deleted'

/** What an administrative action did. */
export interface AdminActionResult {
  /** The action, named as its audit event. */
  action: AdminAction
  identity: string
  /** The device acted on (revokeDevice; endSessions of one device). */
  device?: string
  /** When it took effect, ms since the epoch (the server's clock); when it ran if nothing changed. */
  at: number
  /**
   * Whether anything changed: false for suspending a suspended identity or reinstating one that
   * is not (no audit event then); true otherwise.
   */
  changed: boolean
  actor: string
}

export interface AdminDependencies {
  gate: SessionGate
  events: EventBus
  now: () => number
}

/** Whether a text has a control character (C0 or DEL), which could forge lines in logs. */
const hasControl = (value: string): boolean =>
  [...value].some(c => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)

/** A string argument of 1 to `max` characters (no control characters with `plain`), or BA101. */
function text(field: string, value: unknown, max: number, plain = false): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max) {
    throw new InvalidMessageError(field, `must be a string of 1 to ${max} characters`)
  }
  if (plain && hasControl(value)) {
    throw new InvalidMessageError(field, 'must not contain control characters')
  }
  return value
}

/** `auth.admin`: administration of identities, devices and sessions. */
export class AdminApi {
  constructor(private readonly d: AdminDependencies) {}

  /** Whether the store supports administration (else every call rejects with 501 BA609). */
  get supported(): boolean {
    return this.d.gate.admin !== undefined
  }

  /**
   * The identity with its active devices: when each was created, last rotated and last used for a
   * session (to the minute), whether the identity is suspended (when, why), and when sessions
   * were last ended. 404 BA608 for an unknown identity.
   */
  async getIdentity(identity: string): Promise<AdminIdentity> {
    const store = this.store()
    const record = await store.getIdentityRecord(text('identity', identity, 512))
    if (record === undefined) throw new AdminNotFoundError('identity')
    return record
  }

  /**
   * Revokes a device: a server-side unlink. It can no longer sign, rotate, open a session or
   * refresh; its tokens are refused at once at refresh and, with `checkRevocation`, at access
   * (within `revocationCacheMs` on other instances). A rotation racing it either finished first or
   * is refused. Revoking the last device leaves the identity reachable through recovery only.
   * 404 BA608 for an unknown identity or device.
   */
  async revokeDevice(
    identity: string,
    device: string,
    options: AdminActionOptions
  ): Promise<AdminActionResult> {
    const store = this.store()
    const args = this.check(identity, options)
    text('device', device, 512)
    const result = await store.revokeDevice(identity, device)
    if (result !== 'ok') throw new AdminNotFoundError(subject(result))
    this.d.gate.forget(identity, device)
    return this.done('admin.device.revoked', args, true, device)
  }

  /**
   * Ends every session of the identity now, or of one of its devices (`device`): tokens issued
   * until now are refused at refresh (401 BA401, so clients sign in again with their device key)
   * and, with `checkRevocation`, at access. New sessions may be opened at once (a token is
   * compared by its `issuedAt`, from the clock of the instance that issued it: instances' clocks
   * should agree to well within a second). 404 BA608 for an unknown identity or device.
   */
  async endSessions(identity: string, options: EndSessionsOptions): Promise<AdminActionResult> {
    const store = this.store()
    const args = this.check(identity, options)
    const { device } = options
    if (device !== undefined) text('device', device, 512)
    const result = await store.endSessions(identity, args.at, device)
    if (result !== 'ok') throw new AdminNotFoundError(subject(result))
    this.d.gate.forget(identity, device)
    return this.done('admin.sessions.ended', args, true, device)
  }

  /**
   * Suspends the identity: no new session (403 BA307 at requestSession and createSession), no
   * refresh, and with `checkRevocation` no access; its sessions end now, so reinstating it does
   * not revive them. Suspending a suspended identity changes nothing (`changed: false`).
   * 404 BA608 for an unknown identity.
   */
  async suspend(identity: string, options: SuspendOptions): Promise<AdminActionResult> {
    const store = this.store()
    const args = this.check(identity, options)
    const reason =
      options.reason === undefined ? undefined : text('reason', options.reason, 1000, true)
    const result = await store.suspendIdentity(identity, args.at, reason)
    if (result === 'unknown-identity') throw new AdminNotFoundError('identity')
    this.d.gate.forget(identity)
    return this.done('admin.identity.suspended', args, result === 'ok', undefined, reason)
  }

  /**
   * Lifts a suspension: the identity's devices may open sessions again (sessions ended by the
   * suspension stay ended). Reinstating an identity that is not suspended changes nothing
   * (`changed: false`). 404 BA608 for an unknown identity.
   */
  async reinstate(identity: string, options: AdminActionOptions): Promise<AdminActionResult> {
    const store = this.store()
    const args = this.check(identity, options)
    const result = await store.reinstateIdentity(identity)
    if (result === 'unknown-identity') throw new AdminNotFoundError('identity')
    this.d.gate.forget(identity)
    return this.done('admin.identity.reinstated', args, result === 'ok')
  }

  /**
   * Deletes the identity and its devices, as the protocol's deleteAccount does: it is tombstoned
   * and can never be created again; its tokens are refused at refresh and, with
   * `checkRevocation`, at access. 404 BA608 for an unknown identity.
   */
  async deleteIdentity(identity: string, options: AdminActionOptions): Promise<AdminActionResult> {
    const store = this.store()
    const args = this.check(identity, options)
    if ((await store.deleteIdentity(identity, args.at)) !== 'ok') {
      throw new AdminNotFoundError('identity')
    }
    this.d.gate.forget(identity)
    return this.done('admin.identity.deleted', args, true)
  }

  private store(): AccountStore & AdminAccountStore {
    const admin = this.d.gate.admin
    if (admin === undefined) throw new AdminUnsupportedError()
    return admin
  }

  /** Checks the common arguments; the moment of the action. */
  private check(identity: string, options: AdminActionOptions): Args {
    text('identity', identity, 512)
    if (typeof options !== 'object' || options === null) {
      throw new InvalidMessageError('options', 'must be an object with an actor')
    }
    text('actor', options.actor, 256, true)
    return { identity, options, at: this.d.now() }
  }

  /** Emits the action's audit event (when it changed something) and answers its result. */
  private done(
    action: AdminAction,
    { identity, options, at }: Args,
    changed: boolean,
    device?: string,
    reason?: string
  ): AdminActionResult {
    const { actor } = options
    if (changed) {
      const trace = {
        identity,
        actor,
        ...(device === undefined ? {} : { device }),
        ...(reason === undefined ? {} : { reason }),
      }
      this.d.events.emit(action, 'admin', trace, options.context ?? {})
    }
    return { action, identity, ...(device === undefined ? {} : { device }), at, changed, actor }
  }
}

interface Args {
  identity: string
  options: AdminActionOptions
  at: number
}

const subject = (result: 'unknown-identity' | 'unknown-device'): 'identity' | 'device' =>
  result === 'unknown-identity' ? 'identity' : 'device'
