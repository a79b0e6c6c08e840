/** Client-side state: key pairs with forward commitment, identifiers and the access token. */
import { Blake3Hasher } from '../crypto/blake3'
import { NodeSigningKey } from '../crypto/node'
import type { Hasher, SigningKey } from '../crypto/types'

/** A single value (identity, device, token…). */
export interface ClientValueStore {
  get(): Promise<string | undefined>
  store(value: string): Promise<void>
}

/**
 * A chain of key pairs: the current key, the next one (committed to by the current rotation
 * hash) and, once asked for, the one after it.
 */
export interface ClientRotatingKeyStore {
  /**
   * Starts a new chain. Returns `[identity, publicKey, rotationHash]`, where identity is
   * `hash(publicKey + rotationHash + extra)`.
   */
  initialize(extra?: string): Promise<[string, string, string]>
  /** The next key and the hash committing to the key after it; stable until `rotate`. */
  next(): Promise<[SigningKey, string]>
  /** Moves the chain forward after the server accepted a rotation. */
  rotate(): Promise<void>
  /** The current key. */
  signer(): Promise<SigningKey>
}

export class MemoryValueStore implements ClientValueStore {
  private value: string | undefined
  async get(): Promise<string | undefined> {
    return this.value
  }
  async store(value: string): Promise<void> {
    this.value = value
  }
}

export interface RotatingKeyStoreOptions {
  hasher?: Hasher
  /** Makes new key pairs. @default NodeSigningKey.generate */
  generate?: () => SigningKey | Promise<SigningKey>
}

export class MemoryRotatingKeyStore implements ClientRotatingKeyStore {
  private current: SigningKey | undefined
  private upcoming: SigningKey | undefined
  private future: SigningKey | undefined
  private readonly hasher: Hasher
  private readonly generate: () => SigningKey | Promise<SigningKey>

  constructor(options: RotatingKeyStoreOptions = {}) {
    this.hasher = options.hasher ?? new Blake3Hasher()
    this.generate = options.generate ?? (() => NodeSigningKey.generate())
  }

  async initialize(extra = ''): Promise<[string, string, string]> {
    this.current = await this.generate()
    this.upcoming = await this.generate()
    this.future = undefined
    const publicKey = await this.current.publicKey()
    const rotationHash = this.hasher.sum(await this.upcoming.publicKey())
    return [this.hasher.sum(publicKey + rotationHash + extra), publicKey, rotationHash]
  }

  async next(): Promise<[SigningKey, string]> {
    if (this.upcoming === undefined) throw new Error('key store is not initialized')
    this.future ??= await this.generate()
    return [this.upcoming, this.hasher.sum(await this.future.publicKey())]
  }

  async rotate(): Promise<void> {
    if (this.upcoming === undefined || this.future === undefined) {
      throw new Error('rotate() without next()')
    }
    this.current = this.upcoming
    this.upcoming = this.future
    this.future = undefined
  }

  async signer(): Promise<SigningKey> {
    if (this.current === undefined) throw new Error('key store is not initialized')
    return this.current
  }
}
