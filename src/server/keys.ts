/**
 * Server keys: the response key (signs every response; its public key is the server's identity)
 * and the access key (signs access tokens; its public key is a token's `serverIdentity`).
 *
 * Each is taken from the options, else from the environment (`BETTER_AUTH_RESPONSE_KEY` /
 * `BETTER_AUTH_ACCESS_KEY` holding a PEM or JWK, or `…_FILE` naming a file that does), else
 * from the store's key store (durable stores: SQLite, PostgreSQL), else generated at start.
 *
 * - Keys in a key store survive restarts and are shared by every instance on the store: the
 *   first instance to start generates them, the others load them. Private keys are sealed
 *   (AES-256-GCM) when a secret is set (`BETTER_AUTH_KEY_SECRET`).
 * - Access-key rotation: a new key signs new tokens; the previous key keeps verifying until
 *   it retires (by default once every token it signed is past its refresh window), then it is
 *   dropped. Instances on a shared key store pick a rotation or a retirement up within
 *   `reloadIntervalMs` (2 s), and at once when they meet a token of a key they do not know yet.
 * - Private keys stored unsealed (no secret) are reported once through `onWarning`.
 * - A resource server that does not hold the access key trusts the keys an auth server
 *   publishes (`accessKeySource`, see RemoteAccessKeys).
 *
 * Generated keys without a key store die with the process: tokens issued before a restart stop
 * verifying. Persist keys for anything but development.
 */
import type { JsonWebKey, KeyObject } from 'node:crypto'
import { isPublicKeyText } from '../codec/cesr'
import { NodeSigningKey } from '../crypto/node'
import type { SigningKey } from '../crypto/types'
import type { KeyKind, KeyStore } from '../stores/types'
import {
  envOf,
  fromEnv,
  SEALED,
  loadSigningKey,
  toStored,
  unsealPrivateKey,
  viaStore,
  warn,
} from './key-material'

export { loadSigningKey, sealPrivateKey, unsealPrivateKey } from './key-material'

/** A PEM or JWK (text or object), a node KeyObject, a file, or any SigningKey (HSM, KMS…). */

/**
 * How long a previous access key keeps verifying after a rotation, by default: the refresh
 * window plus the clock skew (12 h + 5 s), so every token it signed can still refresh.
 */
export const DEFAULT_RETIRE_AFTER_MS = 43_205_000

/**
 * How often an instance reloads the access keys from the key store, by default: a key retired
 * through another instance (or the CLI) is refused everywhere within this, plus one query.
 */
export const DEFAULT_RELOAD_INTERVAL_MS = 2000

/** What `onWarning` receives when the key store holds private keys in the clear. */
export const UNSEALED_KEYS_WARNING =
  'the server private keys are stored unsealed in the database: whoever can read it (or a ' +
  'backup of it) can sign as this server. Set BETTER_AUTH_KEY_SECRET (or the keys.secret ' +
  'option) to seal them, or give the keys in the environment'

export type KeyInput = string | JsonWebKey | KeyObject | SigningKey | { file: string }

/**
 * Access verification keys known elsewhere, e.g. published by an auth server. `isTrusted` is on
 * the hot path and must answer synchronously from what the source already holds; `refresh` is
 * called when a token names a key the server does not know.
 */
export interface AccessKeySource {
  /** Whether tokens signed by `serverIdentity` are accepted now. */
  isTrusted(serverIdentity: string): boolean
  /** Fetches the keys again (the source limits how often it really does). */
  refresh(): Promise<void>
  /** Stops timers, if any. */
  close?(): void
}

export interface ServerKeyOptions {
  /** The response signing key. @default env BETTER_AUTH_RESPONSE_KEY(_FILE), else key store, else generated */
  response?: KeyInput
  /** The access-token signing key. @default env BETTER_AUTH_ACCESS_KEY(_FILE), else key store, else generated */
  access?: KeyInput
  /**
   * Further access verification keys (`1AAI…`) whose tokens are accepted, e.g. the previous
   * access key during a rotation, or keys of other auth servers you trust.
   */
  accessVerificationKeys?: string[]
  /** Environment to read keys from; `false` to ignore the environment. @default process.env */
  env?: Record<string, string | undefined> | false
  /**
   * Where keys persist, shared by every instance. `false`: never persist.
   * @default the store's `keys` (createBetterAuth passes it)
   */
  store?: KeyStore | false
  /**
   * Seals private keys in the key store with a key derived from this secret (scrypt,
   * AES-256-GCM). @default env BETTER_AUTH_KEY_SECRET
   */
  secret?: string
  /**
   * How often the access keys are reloaded from the key store, ms (0: never): the longest a key
   * retired elsewhere keeps verifying here. A reload is one small query. @default 2000
   */
  reloadIntervalMs?: number
  /**
   * Receives warnings about the configuration, once per load: private keys stored unsealed.
   * createBetterAuth passes its logger. @default process.emitWarning
   */
  onWarning?: (message: string) => void
  /** After a rotation, how long the previous access key keeps verifying, ms. @default 43205000 (12 h + 5 s) */
  retireAfterMs?: number
  /** Access keys published by another server (resource servers). */
  accessKeySource?: AccessKeySource
  /** Clock, for tests. @default Date.now */
  now?: () => number
}

/** A published access verification key. */
export interface PublishedAccessKey {
  publicKey: string
  /** When it stops verifying (RFC 3339); absent while it does not retire. */
  retireAt?: string
}

/** The server's resolved keys. Build with `ServerKeys.load`. */
export class ServerKeys {
  /** publicKey → retirement time (Infinity: no retirement). */
  private trusted = new Map<string, number>()
  /** Keys trusted by the options or `trustAccessKey`, beside the key store's. */
  private readonly local = new Map<string, number>()
  private stored = new Map<string, number>()
  private readonly unsealed = new Map<string, NodeSigningKey>()
  private reloading: Promise<void> | undefined
  private lastMissReload = -Infinity
  private timer: ReturnType<typeof setInterval> | undefined

  private constructor(
    readonly responseKey: SigningKey,
    readonly responseIdentity: string,
    private current: { key: SigningKey; identity: string },
    private readonly settings: {
      now: () => number
      retireAfterMs: number
      secret: string | undefined
      /** Set when the access key lives in the key store. */
      keyStore: KeyStore | undefined
      source: AccessKeySource | undefined
    }
  ) {}

  static async load(options: ServerKeyOptions = {}): Promise<ServerKeys> {
    const vars = envOf(options.env)
    const now = options.now ?? Date.now
    const store = options.store === false ? undefined : options.store
    const secret = options.secret ?? (vars.BETTER_AUTH_KEY_SECRET || undefined)
    const extra = options.accessVerificationKeys ?? []
    for (const key of extra) {
      if (!isPublicKeyText(key)) throw new TypeError(`not a qualified public key: ${key}`)
    }

    let warned = false
    const persisted = async (kind: KeyKind): Promise<NodeSigningKey> => {
      const stored = await viaStore(() =>
        (store as KeyStore).initKey(kind, toStored(NodeSigningKey.generate(), now(), secret))
      )
      const key = NodeSigningKey.from(unsealPrivateKey(stored.privateKey, secret))
      // Without a secret, or stored before one was set: readable by whoever reads the store.
      if (!stored.privateKey.startsWith(SEALED) && !warned) {
        warned = true
        warn(options.onWarning, UNSEALED_KEYS_WARNING)
      }
      return key
    }

    const responseInput = options.response ?? fromEnv(vars, 'BETTER_AUTH_RESPONSE_KEY')
    const response =
      responseInput !== undefined
        ? loadSigningKey(responseInput)
        : store !== undefined
          ? await persisted('response')
          : NodeSigningKey.generate()

    const accessInput = options.access ?? fromEnv(vars, 'BETTER_AUTH_ACCESS_KEY')
    const accessFromStore = accessInput === undefined && store !== undefined
    const access =
      accessInput !== undefined
        ? loadSigningKey(accessInput)
        : accessFromStore
          ? await persisted('access')
          : NodeSigningKey.generate()

    const keys = new ServerKeys(
      response,
      await response.publicKey(),
      { key: access, identity: await access.publicKey() },
      {
        now,
        retireAfterMs: options.retireAfterMs ?? DEFAULT_RETIRE_AFTER_MS,
        secret,
        keyStore: accessFromStore ? store : undefined,
        source: options.accessKeySource,
      }
    )
    for (const key of extra) keys.local.set(key, Infinity)
    if (accessFromStore) {
      await keys.reload()
      const interval = options.reloadIntervalMs ?? DEFAULT_RELOAD_INTERVAL_MS
      if (interval > 0) {
        keys.timer = setInterval(() => {
          keys.reload().catch(() => undefined) // keep the keys known; try again later
        }, interval)
        keys.timer.unref()
      }
    } else {
      keys.rebuild()
    }
    return keys
  }

  /** The key that signs new tokens. */
  get accessKey(): SigningKey {
    return this.current.key
  }

  /** Public key of the current access key (new tokens' `serverIdentity`). */
  get accessIdentity(): string {
    return this.current.identity
  }

  /** Whether the access key lives in the key store (so rotations reach every instance). */
  get accessKeyStored(): boolean {
    return this.settings.keyStore !== undefined
  }

  /** Whether tokens signed by `serverIdentity` are accepted now (synchronous). */
  isTrustedAccessKey(serverIdentity: string): boolean {
    const until = this.trusted.get(serverIdentity)
    if (until !== undefined && (until === Infinity || until > this.settings.now())) return true
    return this.settings.source?.isTrusted(serverIdentity) ?? false
  }

  /**
   * For a token of a key not (yet) trusted: reloads the key store (at most once a second) and
   * refreshes the access key source, then answers whether the key is trusted now.
   */
  async resolveAccessKey(serverIdentity: string): Promise<boolean> {
    const work: Promise<unknown>[] = []
    const now = this.settings.now()
    if (this.settings.keyStore !== undefined && now - this.lastMissReload >= 1000) {
      this.lastMissReload = now
      work.push(this.reload())
    }
    if (this.settings.source !== undefined) work.push(this.settings.source.refresh())
    if (work.length === 0) return false
    await Promise.allSettled(work)
    return this.isTrustedAccessKey(serverIdentity)
  }

  /** Every access verification key accepted now (the source's not included). */
  accessVerificationKeys(): string[] {
    const now = this.settings.now()
    return [...this.trusted].filter(([, until]) => until > now).map(([key]) => key)
  }

  /** What the access-keys endpoint publishes: the current key first, then the others. */
  publishedAccessKeys(): PublishedAccessKey[] {
    const now = this.settings.now()
    const out: PublishedAccessKey[] = [{ publicKey: this.current.identity }]
    for (const [publicKey, until] of this.trusted) {
      if (publicKey === this.current.identity || until <= now) continue
      out.push(
        until === Infinity ? { publicKey } : { publicKey, retireAt: new Date(until).toISOString() }
      )
    }
    return out
  }

  /** Accepts tokens signed by another key (e.g. a previous access key), until `retireAt`. */
  trustAccessKey(publicKey: string, retireAt = Infinity): void {
    if (!isPublicKeyText(publicKey)) throw new TypeError(`not a qualified public key: ${publicKey}`)
    this.local.set(publicKey, retireAt)
    this.rebuild()
  }

  /** Stops accepting tokens signed by a key in this process (never the current one). */
  distrustAccessKey(publicKey: string): void {
    if (publicKey === this.current.identity) return
    this.local.delete(publicKey)
    this.stored.delete(publicKey)
    this.rebuild()
  }

  /**
   * Signs new tokens with a new key (`input`, else a generated one) and returns its public key.
   * The previous key keeps verifying for `retireAfterMs` (default: the option). With a key store
   * the rotation is stored, so every instance follows it.
   */
  async rotateAccessKey(
    input?: KeyInput,
    options: { retireAfterMs?: number } = {}
  ): Promise<string> {
    const key = input === undefined ? NodeSigningKey.generate() : loadSigningKey(input)
    const identity = await key.publicKey()
    const retireAt = this.settings.now() + (options.retireAfterMs ?? this.settings.retireAfterMs)
    const store = this.settings.keyStore
    if (store !== undefined) {
      if (!(key instanceof NodeSigningKey)) {
        throw new TypeError('a stored access key must be a private key (PEM, JWK or KeyObject)')
      }
      await viaStore(() =>
        store.rotateKey(
          'access',
          toStored(key, this.settings.now(), this.settings.secret),
          retireAt
        )
      )
      // A reload begun before the rotation committed would bring back the old list (and drop the
      // new key from the unsealed cache): let it finish, then load the list that has the new key.
      await this.reloading?.catch(() => undefined)
      this.unsealed.set(identity, key)
      await this.reload()
      return identity
    }
    const previous = this.current.identity
    this.current = { key, identity }
    this.local.set(previous, retireAt)
    this.local.set(identity, Infinity)
    this.rebuild()
    return identity
  }

  /** Retires a previous access key now (e.g. after a compromise), here and in the key store. */
  async retireAccessKey(publicKey: string): Promise<boolean> {
    if (publicKey === this.current.identity) return false
    const store = this.settings.keyStore
    const known = this.trusted.has(publicKey)
    const retired =
      store !== undefined
        ? await viaStore(() => store.retireKey('access', publicKey, this.settings.now()))
        : false
    this.distrustAccessKey(publicKey)
    return retired || known
  }

  /** Loads the access keys from the key store: the current one signs, the others verify. */
  async reload(): Promise<void> {
    const store = this.settings.keyStore
    if (store === undefined) return
    this.reloading ??= (async () => {
      try {
        const list = await viaStore(() => store.listKeys('access', this.settings.now()))
        const head = list[0]
        if (
          head !== undefined &&
          head.retireAt === null &&
          head.publicKey !== this.current.identity
        ) {
          let key = this.unsealed.get(head.publicKey)
          if (key === undefined) {
            key = NodeSigningKey.from(unsealPrivateKey(head.privateKey, this.settings.secret))
            this.unsealed.set(head.publicKey, key)
          }
          this.current = { key, identity: head.publicKey }
        }
        this.stored = new Map(list.map(k => [k.publicKey, k.retireAt ?? Infinity]))
        for (const known of this.unsealed.keys()) {
          if (!this.stored.has(known)) this.unsealed.delete(known)
        }
        this.rebuild()
      } finally {
        this.reloading = undefined
      }
    })()
    return this.reloading
  }

  /** Stops the reload timer and the access key source. */
  close(): void {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
    this.settings.source?.close?.()
  }

  private rebuild(): void {
    const merged = new Map(this.stored)
    for (const [key, until] of this.local) merged.set(key, Math.max(until, merged.get(key) ?? 0))
    merged.set(this.current.identity, Infinity)
    this.trusted = merged
  }
}
