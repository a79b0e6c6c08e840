/**
 * In-memory stores: the default. Atomic because each operation runs to completion without
 * yielding. Ephemeral entries expire (checked on read, evicted by a sweep), and every map is
 * bounded: when one is full of live entries the store refuses new ones (fail closed, 503)
 * rather than forgetting a used nonce.
 */
import { StorageUnavailableError } from '../errors'
import { later } from './admin'
import type {
  AccountStore,
  AdminAccountStore,
  AdminResult,
  ChallengeStore,
  DeviceKey,
  DeviceRecord,
  IdentityRecord,
  NewAccount,
  NewDevice,
  RecoverResult,
  ReinstateResult,
  RotateResult,
  RotationEffect,
  ServerStore,
  SessionState,
  SuspendResult,
  TimeLockStore,
} from './types'

export interface TtlMapOptions {
  /** Most live entries held. @default 1000000 */
  maxEntries?: number
  /** Clock, for tests. @default Date.now */
  now?: () => number
}

/** When a map is full, how often its refusals may scan it for expired entries. */
const FULL_SWEEP_INTERVAL_MS = 1000

/**
 * A flat copy of a key. A key sliced from a larger string (a nonce parsed out of a request body)
 * is, in V8, a view that keeps that string alive; a time-lock holds hundreds of thousands of them
 * for its window. Shorter strings than 13 characters are never views.
 */
function ownKey(key: string): string {
  return key.length < 13 ? key : (JSON.parse(JSON.stringify(key)) as string)
}

/**
 * A Map whose entries expire; bounded; swept incrementally on insert. Compact, since a time-lock
 * holds one entry per request of its window: an expiry is a small integer (ms after the map's
 * creation, unboxed by V8 for 24 days), and a value is stored only when it is not `true`.
 */
export class TtlMap<V> {
  /** Expiry of every key, in ms after `base`; insertion order ≈ expiry order. */
  private readonly expiries = new Map<string, number>()
  /** Values other than `true`. */
  private readonly values = new Map<string, V>()
  private readonly maxEntries: number
  private readonly now: () => number
  private readonly base: number
  private lastFullSweep = -Infinity
  private head: IterableIterator<[string, number]> | undefined
  private headEntry: [string, number] | undefined

  constructor(options: TtlMapOptions = {}) {
    this.maxEntries = options.maxEntries ?? 1_000_000
    this.now = options.now ?? Date.now
    this.base = this.now()
  }

  get size(): number {
    return this.expiries.size
  }

  get(key: string): V | undefined {
    const expiry = this.expiries.get(key)
    if (expiry === undefined) return undefined
    if (expiry + this.base <= this.now()) {
      this.delete(key)
      return undefined
    }
    return this.values.has(key) ? (this.values.get(key) as V) : (true as V)
  }

  /** Sets unless a live entry exists; returns whether it was set. */
  setIfAbsent(key: string, value: V, ttlMs: number): boolean {
    if (this.get(key) !== undefined) return false
    this.set(key, value, ttlMs)
    return true
  }

  set(key: string, value: V, ttlMs: number): void {
    const now = this.now()
    this.sweepHead(now)
    if (this.expiries.size >= this.maxEntries && !this.expiries.has(key)) {
      // A full scan at most once a second: while the map stays full of live entries, each refused
      // insert would otherwise walk all of them (tens of ms at a million entries).
      if (now - this.lastFullSweep >= FULL_SWEEP_INTERVAL_MS) {
        this.lastFullSweep = now
        this.sweep()
      }
      if (this.expiries.size >= this.maxEntries) {
        throw new StorageUnavailableError({ context: { reason: 'memory store full' } })
      }
    }
    const own = ownKey(key)
    this.delete(own) // keep insertion order close to expiry order
    this.expiries.set(own, now + ttlMs - this.base)
    if (value !== true) this.values.set(own, value)
  }

  /** Removes a live entry and returns its value. */
  take(key: string): V | undefined {
    const value = this.get(key)
    if (value !== undefined) this.delete(key)
    return value
  }

  private delete(key: string): void {
    this.expiries.delete(key)
    this.values.delete(key)
  }

  /**
   * Evicts expired entries at the head (oldest first); amortized O(1) per insert. The iterator
   * lives across calls: a Map keeps deleted entries as holes until it is rebuilt, and a new
   * iterator would walk every hole at the front each time (tens of µs per insert with a few
   * hundred thousand nonces in their window). The entry it stopped at is kept, since an iterator
   * cannot step back.
   */
  private sweepHead(now: number): void {
    const limit = now - this.base
    let budget = 8
    for (;;) {
      let entry = this.headEntry
      if (entry === undefined) {
        this.head ??= this.expiries.entries()
        const next = this.head.next()
        if (next.done === true) {
          this.head = undefined
          return
        }
        entry = next.value
      } else if (this.expiries.get(entry[0]) !== entry[1]) {
        // Taken or set anew since: no longer the head (a key set anew is further on).
        this.headEntry = undefined
        continue
      }
      if (entry[1] > limit || budget-- === 0) {
        this.headEntry = entry
        return
      }
      this.headEntry = undefined
      this.delete(entry[0])
    }
  }

  /** Evicts every expired entry. */
  sweep(): void {
    const limit = this.now() - this.base
    for (const [key, expiry] of this.expiries) if (expiry <= limit) this.delete(key)
    // Start the head anew, so an iterator idle since the Map was rebuilt does not keep the old
    // table alive.
    this.head = undefined
    this.headEntry = undefined
  }

  keys(): string[] {
    this.sweep()
    return [...this.expiries.keys()]
  }
}

export class MemoryTimeLockStore implements TimeLockStore {
  readonly map: TtlMap<true>
  constructor(options: TtlMapOptions = {}) {
    this.map = new TtlMap(options)
  }

  async reserve(value: string, ttlMs: number): Promise<boolean> {
    return this.map.setIfAbsent(value, true, ttlMs)
  }
}

export class MemoryChallengeStore implements ChallengeStore {
  readonly map: TtlMap<string>
  constructor(options: TtlMapOptions = {}) {
    this.map = new TtlMap(options)
  }

  async create(nonce: string, identity: string, ttlMs: number): Promise<void> {
    this.map.set(nonce, identity, ttlMs)
  }

  async peek(nonce: string): Promise<string | undefined> {
    return this.map.get(nonce)
  }

  async consume(nonce: string): Promise<string | undefined> {
    return this.map.take(nonce)
  }
}

/** A device's key and what administration records of it. */
interface DeviceEntry extends DeviceKey {
  createdAt: number
  rotatedAt: number | null
  lastSessionAt: number | null
  sessionsEndedAt: number | null
}

interface Account {
  recoveryHash: string
  devices: Map<string, DeviceEntry>
  createdAt: number
  suspendedAt: number | null
  suspendedReason: string | null
  sessionsEndedAt: number | null
}

export interface MemoryAccountStoreOptions {
  /**
   * Most identities held, deleted ones included (their tombstones); account creation beyond it
   * fails with 503. @default 1000000
   */
  maxIdentities?: number
  /** Clock of the creation and rotation times it records, for tests. @default Date.now */
  now?: () => number
}

const keyOf = (entry: DeviceKey): DeviceKey => ({
  publicKey: entry.publicKey,
  rotationHash: entry.rotationHash,
})

export class MemoryAccountStore implements AccountStore, AdminAccountStore {
  private readonly accounts = new Map<string, Account>()
  /** Deleted identities: never created again (a replayed createAccount must not revive one). */
  private readonly deleted = new Set<string>()
  private readonly maxIdentities: number
  private readonly now: () => number

  constructor(options: MemoryAccountStoreOptions = {}) {
    this.maxIdentities = options.maxIdentities ?? 1_000_000
    this.now = options.now ?? Date.now
  }

  private entry(key: DeviceKey): DeviceEntry {
    return {
      publicKey: key.publicKey,
      rotationHash: key.rotationHash,
      createdAt: this.now(),
      rotatedAt: null,
      lastSessionAt: null,
      sessionsEndedAt: null,
    }
  }

  async createAccount(account: NewAccount): Promise<boolean> {
    if (this.accounts.has(account.identity) || this.deleted.has(account.identity)) return false
    if (this.accounts.size + this.deleted.size >= this.maxIdentities) {
      throw new StorageUnavailableError({ context: { reason: 'memory store full' } })
    }
    const devices = new Map<string, DeviceEntry>()
    devices.set(account.device, this.entry(account))
    this.accounts.set(account.identity, {
      recoveryHash: account.recoveryHash,
      devices,
      createdAt: this.now(),
      suspendedAt: null,
      suspendedReason: null,
      sessionsEndedAt: null,
    })
    return true
  }

  async hasIdentity(identity: string): Promise<boolean> {
    return this.accounts.has(identity)
  }

  async getDeviceKey(identity: string, device: string): Promise<DeviceKey | undefined> {
    const entry = this.accounts.get(identity)?.devices.get(device)
    return entry === undefined ? undefined : keyOf(entry)
  }

  async getRecoveryHash(identity: string): Promise<string | undefined> {
    return this.accounts.get(identity)?.recoveryHash
  }

  async rotate(
    identity: string,
    device: string,
    expectedRotationHash: string,
    next: DeviceKey,
    effect: RotationEffect
  ): Promise<RotateResult> {
    const account = this.accounts.get(identity)
    const current = account?.devices.get(device)
    if (account === undefined || current === undefined) return 'unknown-device'
    if (current.rotationHash !== expectedRotationHash) return 'hash-mismatch'
    // Check the effect before changing anything, so a refused effect changes nothing.
    if (effect.kind === 'revokeDevice' && !account.devices.has(effect.device)) {
      return 'target-unknown'
    }
    if (effect.kind === 'linkDevice' && account.devices.has(effect.device)) return 'target-exists'
    current.publicKey = next.publicKey
    current.rotationHash = next.rotationHash
    current.rotatedAt = this.now()
    switch (effect.kind) {
      case 'deleteIdentity':
        this.accounts.delete(identity)
        this.deleted.add(identity)
        break
      case 'revokeDevice':
        account.devices.delete(effect.device)
        break
      case 'linkDevice':
        account.devices.set(effect.device, this.entry(effect))
        break
      case 'changeRecoveryHash':
        account.recoveryHash = effect.recoveryHash
        break
      case 'none':
        break
    }
    return 'ok'
  }

  async recover(
    identity: string,
    expectedRecoveryHash: string,
    recoveryHash: string,
    device: NewDevice
  ): Promise<RecoverResult> {
    const account = this.accounts.get(identity)
    if (account === undefined) return 'unknown-identity'
    if (account.recoveryHash !== expectedRecoveryHash) return 'hash-mismatch'
    account.recoveryHash = recoveryHash
    account.devices.clear()
    account.devices.set(device.device, this.entry(device))
    return 'ok'
  }

  // ---------------------------------------------------------------- administration

  async getIdentityRecord(identity: string): Promise<IdentityRecord | undefined> {
    const account = this.accounts.get(identity)
    if (account === undefined) return undefined
    const devices: DeviceRecord[] = [...account.devices].map(([device, e]) => ({
      device,
      createdAt: e.createdAt,
      rotatedAt: e.rotatedAt,
      lastSessionAt: e.lastSessionAt,
      sessionsEndedAt: e.sessionsEndedAt,
    }))
    devices.sort(
      (a, b) => (a.createdAt ?? 0) - (b.createdAt ?? 0) || (a.device < b.device ? -1 : 1)
    )
    return {
      identity,
      createdAt: account.createdAt,
      suspendedAt: account.suspendedAt,
      suspendedReason: account.suspendedReason,
      sessionsEndedAt: account.sessionsEndedAt,
      devices,
    }
  }

  async getSessionState(identity: string, device?: string): Promise<SessionState | undefined> {
    const account = this.accounts.get(identity)
    if (account === undefined) return undefined
    if (device === undefined) {
      return {
        suspendedAt: account.suspendedAt,
        sessionsEndedAt: account.sessionsEndedAt,
        lastSessionAt: null,
      }
    }
    const entry = account.devices.get(device)
    if (entry === undefined) return undefined
    return {
      suspendedAt: account.suspendedAt,
      sessionsEndedAt: later(account.sessionsEndedAt, entry.sessionsEndedAt),
      lastSessionAt: entry.lastSessionAt,
    }
  }

  async recordSession(identity: string, device: string, at: number): Promise<void> {
    const entry = this.accounts.get(identity)?.devices.get(device)
    if (entry !== undefined) entry.lastSessionAt = later(entry.lastSessionAt, at)
  }

  async revokeDevice(identity: string, device: string): Promise<AdminResult> {
    const account = this.accounts.get(identity)
    if (account === undefined) return 'unknown-identity'
    return account.devices.delete(device) ? 'ok' : 'unknown-device'
  }

  async endSessions(identity: string, at: number, device?: string): Promise<AdminResult> {
    const account = this.accounts.get(identity)
    if (account === undefined) return 'unknown-identity'
    if (device === undefined) {
      account.sessionsEndedAt = later(account.sessionsEndedAt, at)
      return 'ok'
    }
    const entry = account.devices.get(device)
    if (entry === undefined) return 'unknown-device'
    entry.sessionsEndedAt = later(entry.sessionsEndedAt, at)
    return 'ok'
  }

  async suspendIdentity(identity: string, at: number, reason?: string): Promise<SuspendResult> {
    const account = this.accounts.get(identity)
    if (account === undefined) return 'unknown-identity'
    if (account.suspendedAt !== null) return 'already-suspended'
    account.suspendedAt = at
    account.suspendedReason = reason ?? null
    account.sessionsEndedAt = later(account.sessionsEndedAt, at)
    return 'ok'
  }

  async reinstateIdentity(identity: string): Promise<ReinstateResult> {
    const account = this.accounts.get(identity)
    if (account === undefined) return 'unknown-identity'
    if (account.suspendedAt === null) return 'not-suspended'
    account.suspendedAt = null
    account.suspendedReason = null
    return 'ok'
  }

  async deleteIdentity(identity: string): Promise<'ok' | 'unknown-identity'> {
    if (!this.accounts.delete(identity)) return 'unknown-identity'
    this.deleted.add(identity)
    return 'ok'
  }

  /** Whether the identity was deleted (and so can never be created again). */
  isDeleted(identity: string): boolean {
    return this.deleted.has(identity)
  }

  /** A deep copy of every account's keys, for tests and debugging. */
  dump(): Record<string, { recoveryHash: string; devices: Record<string, DeviceKey> }> {
    const out: Record<string, { recoveryHash: string; devices: Record<string, DeviceKey> }> = {}
    for (const [identity, account] of this.accounts) {
      out[identity] = {
        recoveryHash: account.recoveryHash,
        devices: Object.fromEntries([...account.devices].map(([d, k]) => [d, keyOf(k)])),
      }
    }
    return out
  }
}

export interface MemoryStoreOptions extends MemoryAccountStoreOptions {
  /** Most live challenges / reserved nonces / used refresh keys held. @default 1000000 */
  maxEphemeralEntries?: number
  /** How often a full sweep evicts expired entries, in ms (0 disables it). @default 10000 */
  sweepIntervalMs?: number
  now?: () => number
}

/** The in-memory ServerStore: the default when no store is configured. */
export class MemoryStore implements ServerStore {
  readonly accounts: MemoryAccountStore
  readonly challenges: MemoryChallengeStore
  readonly refreshKeys: MemoryTimeLockStore
  readonly accessNonces: MemoryTimeLockStore
  private readonly timer: ReturnType<typeof setInterval> | undefined

  constructor(options: MemoryStoreOptions = {}) {
    const ttl: TtlMapOptions = { maxEntries: options.maxEphemeralEntries }
    if (options.now !== undefined) ttl.now = options.now
    this.accounts = new MemoryAccountStore(options)
    this.challenges = new MemoryChallengeStore(ttl)
    this.refreshKeys = new MemoryTimeLockStore(ttl)
    this.accessNonces = new MemoryTimeLockStore(ttl)
    const interval = options.sweepIntervalMs ?? 10_000
    if (interval > 0) {
      this.timer = setInterval(() => this.sweep(), interval)
      this.timer.unref()
    }
  }

  /** Evicts every expired ephemeral entry now. */
  sweep(): void {
    this.challenges.map.sweep()
    this.refreshKeys.map.sweep()
    this.accessNonces.map.sweep()
  }

  async close(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer)
  }

  /** Everything stored (live entries only), for tests and debugging. */
  dump(): {
    accounts: ReturnType<MemoryAccountStore['dump']>
    challenges: string[]
    refreshKeys: string[]
    accessNonces: string[]
  } {
    return {
      accounts: this.accounts.dump(),
      challenges: this.challenges.map.keys().sort(),
      refreshKeys: this.refreshKeys.map.keys().sort(),
      accessNonces: this.accessNonces.map.keys().sort(),
    }
  }
}
