/**
 * Client state in the browser: identity, device, access token and both key chains in IndexedDB.
 * Private keys are WebCrypto keys generated non-extractable and saved as structured clones (the
 * browser keeps the key material; no script can read it). A `navigator.locks` lock named after
 * the database spans every tab and worker of the origin, so two of them never rotate the same
 * chain at once.
 */
import type { Hasher } from '../crypto/types'
import type { ClientStores } from './client'
import {
  ClientStoreError,
  LocalLock,
  PersistentRotatingKeyStore,
  type ClientLock,
  type ClientValueStore,
  type SavedChain,
} from './stores'
import { Blake3Hasher, WebCryptoSigningKey } from './webcrypto'

const OBJECT_STORE = 'state'

/** A saved key: the private half, a structured clone of a non-extractable CryptoKey. */
interface SavedCryptoKey {
  privateKey: CryptoKey
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result)
    req.onerror = () => reject(req.error)
  })
}

/** One IndexedDB database holding the client's state under fixed keys. */
class Database {
  private db: Promise<IDBDatabase> | undefined

  constructor(readonly name: string) {}

  private open(): Promise<IDBDatabase> {
    if (globalThis.indexedDB === undefined) {
      return Promise.reject(new Error('IndexedDB is not available here'))
    }
    this.db ??= new Promise<IDBDatabase>((resolve, reject) => {
      const req = indexedDB.open(this.name, 1)
      req.onupgradeneeded = () => req.result.createObjectStore(OBJECT_STORE)
      req.onsuccess = () => {
        const db = req.result
        // Another page deleting or upgrading the database: let it, and reopen on next use.
        db.onversionchange = () => {
          db.close()
          this.db = undefined
        }
        resolve(db)
      }
      req.onerror = () => reject(req.error)
      req.onblocked = () => reject(new Error(`IndexedDB ${this.name} is blocked by another page`))
    })
    this.db.catch(() => (this.db = undefined))
    return this.db
  }

  async get(key: string): Promise<unknown> {
    const db = await this.open()
    return request(db.transaction(OBJECT_STORE, 'readonly').objectStore(OBJECT_STORE).get(key))
  }

  private async write(change: (store: IDBObjectStore) => void): Promise<void> {
    const db = await this.open()
    const tx = db.transaction(OBJECT_STORE, 'readwrite')
    change(tx.objectStore(OBJECT_STORE))
    await new Promise<void>((resolve, reject) => {
      tx.oncomplete = () => resolve()
      tx.onerror = () => reject(tx.error)
      tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'))
    })
  }

  put(key: string, value: unknown): Promise<void> {
    return this.write(store => store.put(value, key))
  }

  delete(key: string): Promise<void> {
    return this.write(store => store.delete(key))
  }

  async close(): Promise<void> {
    const db = this.db
    this.db = undefined
    if (db !== undefined) (await db.catch(() => undefined))?.close()
  }
}

class IndexedDbValueStore implements ClientValueStore {
  constructor(
    private readonly db: Database,
    private readonly key: string
  ) {}

  async get(): Promise<string | undefined> {
    const value = await this.db.get(this.key)
    if (value !== undefined && typeof value !== 'string') {
      throw new ClientStoreError(
        `client store ${this.db.name} is corrupted: ${this.key} is not text`
      )
    }
    return value
  }

  store(value: string): Promise<void> {
    return this.db.put(this.key, value)
  }

  clear(): Promise<void> {
    return this.db.delete(this.key)
  }
}

/** A key chain saved in IndexedDB, with non-extractable WebCrypto keys. */
export class IndexedDbRotatingKeyStore extends PersistentRotatingKeyStore<SavedCryptoKey> {
  constructor(
    private readonly db: Database,
    private readonly key: string,
    options: { hasher?: Hasher } = {}
  ) {
    super(
      {
        location: `${db.name}/${key}`,
        load: () => db.get(key),
        save: chain => db.put(key, chain),
        generate: async () => {
          const signingKey = await WebCryptoSigningKey.generate()
          return { signingKey, saved: { privateKey: signingKey.privateKey } }
        },
        restore: async (saved, publicKey) => new WebCryptoSigningKey(saved.privateKey, publicKey),
      },
      options
    )
  }

  /** The private keys as saved (for inspection, e.g. to check that none is extractable). */
  async savedKeys(): Promise<CryptoKey[]> {
    const chain = (await this.db.get(this.key)) as SavedChain<SavedCryptoKey> | undefined
    if (chain === undefined) return []
    return [chain.current, chain.upcoming, chain.future, chain.beyond].flatMap(k =>
      k === undefined ? [] : [k.key.privateKey]
    )
  }
}

/** A lock across every tab and worker of the origin (`navigator.locks`). */
export class WebLocksLock implements ClientLock {
  private readonly fallback = new LocalLock()

  constructor(private readonly prefix: string) {}

  run<T>(name: string, task: () => Promise<T>): Promise<T> {
    const locks = (globalThis.navigator as { locks?: LockManager } | undefined)?.locks
    if (locks === undefined) return this.fallback.run(name, task)
    return locks.request(`${this.prefix}:${name}`, { mode: 'exclusive' }, task) as Promise<T>
  }
}

export interface BrowserStores extends Required<ClientStores> {
  authenticationKeys: IndexedDbRotatingKeyStore
  accessKeys: IndexedDbRotatingKeyStore
  /** Closes the database connection (the stores reopen it on next use). */
  close(): Promise<void>
  /** Deletes the whole database: identity, device, token and keys. */
  destroy(): Promise<void>
}

/**
 * The client's state in the IndexedDB database `name` (one per account/origin pair you want to
 * keep apart). Pass it as `new BetterAuthClient({ stores: browserStores('my-app') })`.
 */
export function browserStores(
  name = 'better-auth',
  options: { hasher?: Hasher } = {}
): BrowserStores {
  const db = new Database(name)
  const hasher = options.hasher ?? new Blake3Hasher()
  return {
    identity: new IndexedDbValueStore(db, 'identity'),
    device: new IndexedDbValueStore(db, 'device'),
    accessToken: new IndexedDbValueStore(db, 'accessToken'),
    authenticationKeys: new IndexedDbRotatingKeyStore(db, 'authenticationKeys', { hasher }),
    accessKeys: new IndexedDbRotatingKeyStore(db, 'accessKeys', { hasher }),
    lock: new WebLocksLock(`better-auth-protocol:${name}`),
    close: () => db.close(),
    async destroy() {
      await db.close()
      await request(indexedDB.deleteDatabase(name))
    },
  }
}
