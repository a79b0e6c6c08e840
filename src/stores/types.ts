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
