/**
 * Admission of sessions by account state: what requestSession, createSession and refresh check of
 * the identity and device (active; with administration also not suspended, sessions not ended),
 * the `checkRevocation` access check with its short cache, and the record of each device's last
 * session. On a store without administration (`supportsAdmin`), only whether the identity or
 * device is active, as before administration existed.
 *
 * Bounds. Refresh, requestSession and createSession read the store every time: an action takes
 * effect for them at once, on every instance. An access check with `checkRevocation` uses what it
 * read for `cacheMs` (`revocationCacheMs`, 2 s by default): on an instance other than the one that
 * acted, a revocation, suspension or ended session is enforced at access within that bound (the
 * acting instance drops its cache at once). Without `checkRevocation`, access is stateless and a
 * token works until it expires (the access-token lifetime).
 */
import { LRUCache } from 'lru-cache'
import { AccountSuspendedError, SessionEndedError, UnknownAccountError } from '../errors'
import { supportsAdmin } from '../stores/admin'
import type { AccountStore, AdminAccountStore, ServerStore, SessionState } from '../stores/types'
import type { Logger } from './options'

/**
 * How often a device's last session is written at most: a session or refresh records it only when
 * the recorded one is this old or more, so `lastSessionAt` is exact to the minute and costs at most
 * one write per device per minute.
 */
export const SESSION_RECORD_INTERVAL_MS = 60_000

/** The state of an active device of a store without administration. */
const ACTIVE: SessionState = Object.freeze({
  suspendedAt: null,
  sessionsEndedAt: null,
  lastSessionAt: null,
})

/** What an access check read of a device, and until when it may use it. */
interface Cached {
  state: SessionState | undefined
  until: number
}

export class SessionGate {
  /** The store's administration part, when it has one. */
  readonly admin: (AccountStore & AdminAccountStore) | undefined
  /** Whether refresh calls the attributes callback again (`refreshAttributes`). */
  readonly refreshAttributes: boolean
  private readonly cache = new LRUCache<string, Cached>({ max: 10_000 })
  private readonly onError = (error: unknown): void =>
    this.logger.warn({ err: error }, 'could not record the last session of a device')

  /**
   * `store`: as the core guards it (failures become 503 BA602); `logger` hears a failure of the
   * background write of a last session; `cacheMs`: how long an access check uses what it read,
   * unless the route says otherwise; `options.refreshAttributes` is validated here.
   */
  constructor(
    private readonly store: ServerStore,
    private readonly logger: Pick<Logger, 'warn'>,
    private readonly cacheMs: number,
    options: { refreshAttributes?: boolean | undefined }
  ) {
    const accounts = store.accounts
    this.admin = supportsAdmin(accounts) ? accounts : undefined
    this.refreshAttributes = booleanOption('refreshAttributes', options.refreshAttributes, false)
  }

  /** requestSession: the identity exists (BA301) and is not suspended (BA307). */
  async requestSession(identity: string): Promise<void> {
    const admin = this.admin
    if (admin === undefined) {
      if (!(await this.store.accounts.hasIdentity(identity))) {
        throw new UnknownAccountError('identity')
      }
      return
    }
    const state = await admin.getSessionState(identity)
    if (state === undefined) throw new UnknownAccountError('identity')
    if (state.suspendedAt !== null) throw new AccountSuspendedError()
  }

  /**
   * createSession, once the device's signature verified: the identity is not suspended (BA307),
   * and the device is still active (BA301). The state, to record the session with; undefined on
   * a store without administration.
   */
  async createSession(identity: string, device: string): Promise<SessionState | undefined> {
    if (this.admin === undefined) return undefined
    const state = await this.admin.getSessionState(identity, device)
    if (state === undefined) throw new UnknownAccountError('device')
    if (state.suspendedAt !== null) throw new AccountSuspendedError()
    return state
  }

  /**
   * refreshSession: the device is active (BA301), the identity not suspended (BA307), and the
   * token issued after its sessions were ended (BA401). The state; undefined without
   * administration.
   */
  async refresh(
    identity: string,
    device: string,
    issuedAtMs: number
  ): Promise<SessionState | undefined> {
    if (this.admin === undefined) {
      if ((await this.store.accounts.getDeviceKey(identity, device)) === undefined) {
        throw new UnknownAccountError('device')
      }
      return undefined
    }
    const state = await this.admin.getSessionState(identity, device)
    admit(state, issuedAtMs)
    return state
  }

  /**
   * A session was created or refreshed at `at`: records it as the device's last session when the
   * recorded one is `SESSION_RECORD_INTERVAL_MS` old or more. In the background: a failure is
   * reported to `onError`, never to the client.
   */
  recorded(identity: string, device: string, state: SessionState | undefined, at: number): void {
    const admin = this.admin
    if (admin === undefined || state === undefined) return
    if (state.lastSessionAt !== null && at - state.lastSessionAt < SESSION_RECORD_INTERVAL_MS) {
      return
    }
    admin.recordSession(identity, device, at).catch(this.onError)
  }

  /**
   * The access check of routes with `checkRevocation`: the device is active (BA301), the identity
   * not suspended (BA307), the token issued after its sessions were ended (BA401). What it reads is
   * used for `cacheMs` (the route's, else `revocationCacheMs`).
   */
  async access(
    token: { identity: string; device: string; issuedAtMs: number },
    option: true | { cacheMs?: number },
    now: number
  ): Promise<void> {
    const cacheMs = option === true ? this.cacheMs : (option.cacheMs ?? this.cacheMs)
    const key = cacheKey(token.identity, token.device)
    const cached = this.cache.get(key)
    let state: SessionState | undefined
    if (cached !== undefined && cached.until > now) {
      state = cached.state
    } else {
      state = await this.read(token.identity, token.device)
      if (cacheMs > 0) this.cache.set(key, { state, until: now + cacheMs })
    }
    if (state === undefined) throw new UnknownAccountError('device (revoked)')
    admit(state, token.issuedAtMs)
  }

  /** Drops what this instance cached of an identity, or of one of its devices. */
  forget(identity: string, device?: string): void {
    if (device !== undefined) {
      this.cache.delete(cacheKey(identity, device))
      return
    }
    const prefix = cacheKey(identity, '')
    for (const key of [...this.cache.keys()]) if (key.startsWith(prefix)) this.cache.delete(key)
  }

  private async read(identity: string, device: string): Promise<SessionState | undefined> {
    if (this.admin !== undefined) return this.admin.getSessionState(identity, device)
    const key = await this.store.accounts.getDeviceKey(identity, device)
    return key === undefined ? undefined : ACTIVE
  }
}

const cacheKey = (identity: string, device: string): string => `${identity}\u0000${device}`

/** Refuses a token of an inactive device, a suspended identity, or a session ended since. */
function admit(state: SessionState | undefined, issuedAtMs: number): void {
  if (state === undefined) throw new UnknownAccountError('device')
  if (state.suspendedAt !== null) throw new AccountSuspendedError()
  if (state.sessionsEndedAt !== null && issuedAtMs <= state.sessionsEndedAt) {
    throw new SessionEndedError()
  }
}

/** A boolean option: absent is `fallback`; anything but a boolean is a `TypeError` naming it. */
export function booleanOption(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') throw new TypeError(`${name} must be a boolean`)
  return value
}
