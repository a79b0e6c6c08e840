/**
 * Storage contracts. The server keeps five kinds of state:
 *
 * 1. authentication keys per (identity, device) — `AccountStore`
 * 2. recovery hashes per identity — `AccountStore` (they change together with keys, so one
 *    store owns both and can make multi-step operations atomic)
 * 3. session challenges `nonce → identity` with a lifetime — `ChallengeStore`
 * 4. used refresh-key hashes (a time-lock) — `TimeLockStore`
 * 5. used access-request nonces (a time-lock) — `TimeLockStore`
 *
 * Every method is atomic on its own: two concurrent rotations revealing the same key see exactly
 * one `'ok'`; two concurrent reservations of the same value see exactly one `true`; two
 * concurrent consumptions of a challenge see exactly one identity. Expected outcomes are return
 * values; a store throws only when it cannot answer (then the server fails closed with 503).
 */

export interface DeviceKey {
  publicKey: string
  rotationHash: string
}

export interface NewAccount {
  identity: string
  device: string
  publicKey: string
  rotationHash: string
  recoveryHash: string
}

export interface NewDevice {
  device: string
  publicKey: string
  rotationHash: string
}

/** What a rotation does besides replacing the key, in the same atomic step. */
export type RotationEffect =
  | { kind: 'none' }
  | { kind: 'deleteIdentity' }
  | { kind: 'revokeDevice'; device: string }
  | ({ kind: 'linkDevice' } & NewDevice)
  | { kind: 'changeRecoveryHash'; recoveryHash: string }

export type RotateResult =
  /** Rotated and applied the effect. */
  | 'ok'
  /** No such active (identity, device). */
  | 'unknown-device'
  /** The stored rotation hash differs from the expected one. */
  | 'hash-mismatch'
  /** revokeDevice: the device to revoke is not an active device of the identity. */
  | 'target-unknown'
  /** linkDevice: the device to link already exists. */
  | 'target-exists'

export type RecoverResult = 'ok' | 'unknown-identity' | 'hash-mismatch'

export interface AccountStore {
  /**
   * Creates an identity with its recovery hash and first device, atomically (an account never
   * exists without its recovery hash). Returns false if the identity already exists.
   */
  createAccount(account: NewAccount): Promise<boolean>
  /** Whether the identity exists. */
  hasIdentity(identity: string): Promise<boolean>
  /** The current key of an active device, or undefined. */
  getDeviceKey(identity: string, device: string): Promise<DeviceKey | undefined>
  /** The identity's recovery hash, or undefined. */
  getRecoveryHash(identity: string): Promise<string | undefined>
  /**
   * Compare-and-set rotation: if the device is active and its stored rotation hash equals
   * `expectedRotationHash`, store `next` and apply `effect`, all or nothing.
   */
  rotate(
    identity: string,
    device: string,
    expectedRotationHash: string,
    next: DeviceKey,
    effect: RotationEffect
  ): Promise<RotateResult>
  /**
   * Recovery: if the identity's recovery hash equals `expectedRecoveryHash`, replace it with
   * `recoveryHash`, revoke every device of the identity and register `device`, all or nothing.
   */
  recover(
    identity: string,
    expectedRecoveryHash: string,
    recoveryHash: string,
    device: NewDevice
  ): Promise<RecoverResult>
}

/**
 * What the server reads of an identity (and one of its devices) to admit a session, a refresh or,
 * on routes with `checkRevocation`, an access request. Times are ms since the epoch.
 */
export interface SessionState {
  /** When the identity was suspended, or null. A suspended identity gets no session or refresh. */
  suspendedAt: number | null
  /**
   * The later of the identity's and the device's `sessionsEndedAt` (the device's only when one
   * was asked about), or null: tokens issued at or before it are refused.
   */
  sessionsEndedAt: number | null
  /** The device's last recorded session (null when none, or when no device was asked about). */
  lastSessionAt: number | null
}

/** A device as administration sees it. Times are ms since the epoch, null when not recorded. */
export interface DeviceRecord {
  device: string
  /** When the device was registered (null for devices stored before this was recorded). */
  createdAt: number | null
  /** When its key last rotated (null: never since it was recorded). */
  rotatedAt: number | null
  /** Its last session: a createSession or refresh, recorded to the minute. */
  lastSessionAt: number | null
  /** Tokens of this device issued at or before this moment are refused. */
  sessionsEndedAt: number | null
}

/** An identity as administration sees it, with its active devices. */
export interface IdentityRecord {
  identity: string
  /** When the identity was created (null when not recorded). */
  createdAt: number | null
  /** When it was suspended, or null. */
  suspendedAt: number | null
  /** The reason given when it was suspended, or null. */
  suspendedReason: string | null
  /** Tokens of every device of the identity issued at or before this moment are refused. */
  sessionsEndedAt: number | null
  /** Its active devices, oldest first. */
  devices: DeviceRecord[]
}

/** The answer of an administrative change. */
export type AdminResult =
  /** Done. */
  | 'ok'
  /** No such identity: nothing changed. */
  | 'unknown-identity'
  /** The identity exists but has no such active device: nothing changed. */
  | 'unknown-device'

export type SuspendResult = 'ok' | 'already-suspended' | 'unknown-identity'
export type ReinstateResult = 'ok' | 'not-suspended' | 'unknown-identity'

/**
 * Administration of accounts: an optional part of an `AccountStore` (memory, SQLite and
 * PostgreSQL implement it; the server detects it with `supportsAdmin` and refuses admin calls on
 * a store without it). Besides these methods, such a store records when each identity and device
 * was created and when each device last rotated.
 *
 * Every method is atomic on its own, also against the protocol's operations: a device revoked
 * while it rotates either rotated first and is then revoked, or is revoked and its rotation
 * answers `'unknown-device'`. An unknown identity or device changes nothing.
 */
export interface AdminAccountStore {
  /** The identity with its active devices, or undefined. */
  getIdentityRecord(identity: string): Promise<IdentityRecord | undefined>
  /**
   * The admission state of an identity, or of one of its devices (one cheap read: the server
   * calls it at createSession and refresh, and at access on routes with `checkRevocation`).
   * Undefined when the identity, or the device, is not active.
   */
  getSessionState(identity: string, device?: string): Promise<SessionState | undefined>
  /**
   * Records a session of a device at `at`, unless a later one is recorded; nothing for an unknown
   * device. The server calls it at most once a minute per device.
   */
  recordSession(identity: string, device: string, at: number): Promise<void>
  /** Removes an active device (a server-side unlink). */
  revokeDevice(identity: string, device: string): Promise<AdminResult>
  /**
   * Ends the sessions of an identity, or of one of its devices, at `at`: its tokens issued at or
   * before `at` are refused. Keeps a later moment already recorded.
   */
  endSessions(identity: string, at: number, device?: string): Promise<AdminResult>
  /**
   * Suspends an identity at `at` and ends its sessions at `at` (so that reinstating it does not
   * revive them). An identity already suspended keeps its time and reason.
   */
  suspendIdentity(identity: string, at: number, reason?: string): Promise<SuspendResult>
  /** Lifts a suspension. Sessions ended by it stay ended. */
  reinstateIdentity(identity: string): Promise<ReinstateResult>
  /**
   * Deletes an identity and its devices, as the protocol's deleteAccount does: it is tombstoned
   * and can never be created again.
   */
  deleteIdentity(identity: string, at: number): Promise<'ok' | 'unknown-identity'>
}

export interface ChallengeStore {
  /** Stores a challenge bound to an identity for `ttlMs`. */
  create(nonce: string, identity: string, ttlMs: number): Promise<void>
  /** The identity of an unexpired challenge, without consuming it. */
  peek(nonce: string): Promise<string | undefined>
  /** Atomically removes an unexpired challenge and returns its identity (once only). */
  consume(nonce: string): Promise<string | undefined>
}

export interface TimeLockStore {
  /**
   * Reserves `value` for `ttlMs`. True if it was free, false if already reserved.
   *
   * `acceptableFrom` (ms since the epoch) is the earliest moment the message that uses `value`
   * could have been accepted (its timestamp, or its token's issuedAt, less the clock skew). A store
   * that can lose its state without the server restarting (a Redis restarted empty) keeps an epoch:
   * the moment it found its state gone. It throws `ReplayStateResetError` (BA607) for a value whose
   * `acceptableFrom` is before that epoch, since it may have been reserved before the loss.
   */
  reserve(value: string, ttlMs: number, acceptableFrom?: number): Promise<boolean>
}

/** The two kinds of server signing key. */
export type KeyKind = 'response' | 'access'

/** A server signing key as a durable store keeps it. */
export interface StoredKey {
  /** The public key (`1AAI…`). */
  publicKey: string
  /** The private key: PKCS#8 PEM, or sealed (`sealed:v1:…`) when a key secret is configured. */
  privateKey: string
  /** When it was stored, ms since the epoch. */
  createdAt: number
  /**
   * When a replaced key stops verifying, ms since the epoch; null for the current key. Keys past
   * their retirement are never returned.
   */
  retireAt: number | null
}

/**
 * Persistent server keys, shared by every instance on the same store. Each kind has exactly one
 * current key; replaced access keys keep verifying until they retire.
 */
export interface KeyStore {
  /**
   * Stores `key` as the current key of `kind` unless one exists, and returns the current key:
   * of several instances starting at once, all end up with the same key.
   */
  initKey(kind: KeyKind, key: StoredKey): Promise<StoredKey>
  /** The current key of `kind` first, then the replaced keys not yet retired at `now`. */
  listKeys(kind: KeyKind, now: number): Promise<StoredKey[]>
  /**
   * Makes `key` the current key of `kind`, atomically; the previous current key retires at
   * `retireAt` (a time in the past retires it at once).
   */
  rotateKey(kind: KeyKind, key: StoredKey, retireAt: number): Promise<void>
  /**
   * Retires a replaced key at `retireAt` (e.g. now, after a compromise). Returns false if no such
   * replaced key exists; the current key cannot be retired (rotate first).
   */
  retireKey(kind: KeyKind, publicKey: string, retireAt: number): Promise<boolean>
}

/** The ephemeral state (challenges and time-locks): what a Redis store holds. */
export interface EphemeralStore {
  challenges: ChallengeStore
  refreshKeys: TimeLockStore
  accessNonces: TimeLockStore
  close?(): Promise<void>
}

/** Everything the server stores. Durable and ephemeral parts may live in different backends. */
export interface ServerStore {
  accounts: AccountStore
  challenges: ChallengeStore
  /** Hashes of access keys already used to refresh (a key refreshes once). */
  refreshKeys: TimeLockStore
  /** Nonces of accepted access requests (replay protection). */
  accessNonces: TimeLockStore
  /**
   * Persistent server keys (durable stores). When present, and the keys are not given in the
   * options or the environment, the server keeps its keys here, so they survive restarts and
   * every instance on the store signs with the same keys.
   */
  keys?: KeyStore
  /** Releases connections and timers. */
  close?(): Promise<void>
}
