/** Client-side state: key pairs with forward commitment, identifiers and the access token. */
import { isQualifiedHash, unqualifyPublicKey } from '../codec/qualified'
import type { Hasher, SigningKey } from '../crypto/types'
import { Blake3Hasher, WebCryptoSigningKey, hasWebCrypto } from './webcrypto'

/** A single value (identity, device, token…). */
export interface ClientValueStore {
  get(): Promise<string | undefined>
  store(value: string): Promise<void>
  /** Forgets the value (sign out). Optional for compatibility; the client's stores have it. */
  clear?(): Promise<void>
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
  /**
   * Whether a rotation was prepared (`next`) and not settled (`rotate`): one may have reached the
   * server, which then expects the next key, while this chain still starts at the current one.
   * Optional; without it (and `ahead`) the client cannot recover from a lost reply.
   */
  pending?(): Promise<boolean>
  /**
   * For a pending chain, the other outcome: the key after the next one and the hash committing
   * to the key after that (made and saved on the first call). Two `rotate` calls then move the
   * chain to it; the chain keeps both outcomes until then.
   */
  ahead?(): Promise<[SigningKey, string]>
}

/**
 * Mutual exclusion by name. The client holds `authentication` while it rotates the device key
 * chain and `access` while it refreshes the session, so two callers (two tabs sharing browser
 * stores, or two concurrent calls in one page) never reveal the same next key twice.
 */
export interface ClientLock {
  run<T>(name: string, task: () => Promise<T>): Promise<T>
}

/** A lock within one JavaScript realm (a page, a worker, a Node process). */
export class LocalLock implements ClientLock {
  private readonly tails = new Map<string, Promise<unknown>>()

  run<T>(name: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(name) ?? Promise.resolve()
    const result = previous.then(task, task)
    const tail = result.catch(() => undefined)
    this.tails.set(name, tail)
    void tail.then(() => {
      if (this.tails.get(name) === tail) this.tails.delete(name)
    })
    return result
  }
}

/** A client store whose saved data cannot be read back as what it should be. */
export class ClientStoreError extends Error {
  override readonly name = 'ClientStoreError'
}

export class MemoryValueStore implements ClientValueStore {
  private value: string | undefined
  async get(): Promise<string | undefined> {
    return this.value
  }
  async store(value: string): Promise<void> {
    this.value = value
  }
  async clear(): Promise<void> {
    this.value = undefined
  }
}

/** Makes new key pairs: WebCrypto (non-extractable) wherever `crypto.subtle` exists. */
export function defaultKeyGenerator(): SigningKey | Promise<SigningKey> {
  if (!hasWebCrypto()) {
    throw new Error(
      'crypto.subtle is not available: pass `generate` (e.g. NodeSigningKey.generate) to the key store'
    )
  }
  return WebCryptoSigningKey.generate()
}

// ------------------------------------------------------------------ persistent chains

/** One key of a saved chain: its qualified public key and the backend's form of the key. */
export interface SavedKey<Saved> {
  publicKey: string
  key: Saved
}

/**
 * A key chain as a backend saves it. `future` exists while a rotation is pending (prepared by
 * `next`, not yet settled by `rotate`); `beyond`, once the client asks for the other outcome
 * of that rotation (`ahead`).
 */
export interface SavedChain<Saved> {
  current: SavedKey<Saved>
  upcoming: SavedKey<Saved>
  future?: SavedKey<Saved>
  beyond?: SavedKey<Saved>
}

/** Where and how a PersistentRotatingKeyStore keeps its chain. */
export interface ChainBackend<Saved> {
  /** A description for error messages, e.g. a file path or a database name. */
  readonly location: string
  load(): Promise<unknown>
  save(chain: SavedChain<Saved>): Promise<void>
  /** A new key pair, in both forms. */
  generate(): Promise<{ signingKey: SigningKey; saved: Saved }>
  /** The signing key of a saved key; throws if `saved` is not one. */
  restore(saved: Saved, publicKey: string): Promise<SigningKey>
}

function savedKey(value: unknown, location: string, what: string): SavedKey<unknown> {
  const entry = value as Partial<SavedKey<unknown>> | null
  if (
    typeof entry !== 'object' ||
    entry === null ||
    unqualifyPublicKey(entry.publicKey) === undefined ||
    entry.key === undefined ||
    entry.key === null
  ) {
    throw new ClientStoreError(`client store ${location} is corrupted: ${what} key is malformed`)
  }
  return entry as SavedKey<unknown>
}

/**
 * A rotating key store over a backend (IndexedDB, files…). It re-reads the chain on every call,
 * so several handles on the same storage (two tabs) see each other's rotations; hold the
 * client's lock around next → server call → rotate (BetterAuthClient does).
 */
export class PersistentRotatingKeyStore<Saved> implements ClientRotatingKeyStore {
  private readonly hasher: Hasher

  constructor(
    private readonly backend: ChainBackend<Saved>,
    options: { hasher?: Hasher } = {}
  ) {
    this.hasher = options.hasher ?? new Blake3Hasher()
  }

  private async load(): Promise<SavedChain<Saved> | undefined> {
    let value: unknown
    try {
      value = await this.backend.load()
    } catch (error) {
      if (error instanceof ClientStoreError) throw error
      throw new ClientStoreError(`client store ${this.backend.location} cannot be read`, {
        cause: error,
      })
    }
    if (value === undefined) return undefined
    if (typeof value !== 'object' || value === null) {
      throw new ClientStoreError(`client store ${this.backend.location} is corrupted`)
    }
    const chain = value as Record<string, unknown>
    const where = this.backend.location
    return {
      current: savedKey(chain.current, where, 'current') as SavedKey<Saved>,
      upcoming: savedKey(chain.upcoming, where, 'next') as SavedKey<Saved>,
      ...(chain.future === undefined
        ? {}
        : { future: savedKey(chain.future, where, 'future') as SavedKey<Saved> }),
      ...(chain.future === undefined || chain.beyond === undefined
        ? {}
        : { beyond: savedKey(chain.beyond, where, 'beyond') as SavedKey<Saved> }),
    }
  }

  private async restore(entry: SavedKey<Saved>): Promise<SigningKey> {
    try {
      return await this.backend.restore(entry.key, entry.publicKey)
    } catch (error) {
      throw new ClientStoreError(
        `client store ${this.backend.location} is corrupted: a key cannot be restored (${(error as Error).message})`,
        { cause: error }
      )
    }
  }

  private async generate(): Promise<SavedKey<Saved>> {
    const { signingKey, saved } = await this.backend.generate()
    return { publicKey: await signingKey.publicKey(), key: saved }
  }

  private async loaded(): Promise<SavedChain<Saved>> {
    const chain = await this.load()
    if (chain === undefined) throw new Error('key store is not initialized')
    return chain
  }

  async initialize(extra = ''): Promise<[string, string, string]> {
    const current = await this.generate()
    const upcoming = await this.generate()
    await this.backend.save({ current, upcoming })
    const rotationHash = this.hasher.sum(upcoming.publicKey)
    return [
      this.hasher.sum(current.publicKey + rotationHash + extra),
      current.publicKey,
      rotationHash,
    ]
  }

  async next(): Promise<[SigningKey, string]> {
    const chain = await this.loaded()
    if (chain.future === undefined) {
      chain.future = await this.generate()
      await this.backend.save(chain)
    }
    return [await this.restore(chain.upcoming), this.hasher.sum(chain.future.publicKey)]
  }

  /**
   * One write: the next key becomes the current one. A chain that was asked for `ahead` stays
   * pending one more step (its outcome after this one is ready).
   */
  async rotate(): Promise<void> {
    const chain = await this.loaded()
    if (chain.future === undefined) throw new Error('rotate() without next()')
    await this.backend.save({
      current: chain.upcoming,
      upcoming: chain.future,
      ...(chain.beyond === undefined ? {} : { future: chain.beyond }),
    })
  }

  async pending(): Promise<boolean> {
    return (await this.load())?.future !== undefined
  }

  async ahead(): Promise<[SigningKey, string]> {
    const chain = await this.loaded()
    if (chain.future === undefined) throw new Error('ahead() without next()')
    if (chain.beyond === undefined) {
      chain.beyond = await this.generate()
      await this.backend.save(chain)
    }
    return [await this.restore(chain.future), this.hasher.sum(chain.beyond.publicKey)]
  }

  async signer(): Promise<SigningKey> {
    return this.restore((await this.loaded()).current)
  }
}

export interface RotatingKeyStoreOptions {
  hasher?: Hasher
  /** Makes new key pairs. @default WebCrypto keys where `crypto.subtle` exists */
  generate?: () => SigningKey | Promise<SigningKey>
}

/** A key chain in memory (lost when the page or process ends). */
export class MemoryRotatingKeyStore extends PersistentRotatingKeyStore<SigningKey> {
  constructor(options: RotatingKeyStoreOptions = {}) {
    const generate = options.generate ?? defaultKeyGenerator
    let chain: SavedChain<SigningKey> | undefined
    super(
      {
        location: 'memory',
        load: async () => chain && { ...chain },
        save: async saved => {
          chain = { ...saved }
        },
        generate: async () => {
          const signingKey = await generate()
          return { signingKey, saved: signingKey }
        },
        restore: async saved => saved,
      },
      options
    )
  }
}

/** Checks a stored identifier (identity or device): a qualified hash. */
export function checkStoredHash(value: string | undefined, what: string): string | undefined {
  if (value !== undefined && !isQualifiedHash(value)) {
    throw new ClientStoreError(`client store is corrupted: the stored ${what} is not a hash`)
  }
  return value
}
