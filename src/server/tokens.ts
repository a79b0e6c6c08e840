/**
 * Access tokens: issuing them with the current access key, and verifying them (a trusted key
 * signed them) with a cache so each token's signature is checked once.
 */
import { LRUCache } from 'lru-cache'
import { signPlaced, type EcdsaScheduler } from '../crypto/node'
import type { Hasher, Verifier } from '../crypto/types'
import { InvalidSignatureError, UnknownServerKeyError } from '../errors'
import {
  decodeToken,
  encodeToken,
  serializeClaims,
  type AccessToken,
  type AccessTokenClaims,
  type TokenLimits,
} from '../messages/token'
import type { KeyLoader } from './key-loader'
import type { ServerKeys } from './keys'

export class TokenService<Attributes = unknown> {
  // Typed by the methods used: an LRUCache field would make the class invariant in Attributes.
  private readonly cache: {
    get(text: string): AccessToken<Attributes> | undefined
    set(text: string, token: AccessToken<Attributes>): unknown
  }

  constructor(
    private readonly keys: KeyLoader,
    private readonly hasher: Hasher,
    private readonly verifier: Verifier,
    private readonly limits: Readonly<TokenLimits>,
    private readonly compressionLevel: number,
    cacheSize: number,
    /** Where the token's signature is made. */
    private readonly scheduler: EcdsaScheduler,
    /** Hears token-cache and key lookups (metrics), when something records them. */
    private readonly observe?: { tokenCache(hit: boolean): void; keyCache(hit: boolean): void }
  ) {
    // Two entries a token: by its text and by its signed content.
    this.cache = new LRUCache({ max: 2 * Math.max(1, cacheSize) })
  }

  /** Signs and encodes a new token with the current access key. */
  async issue(claims: Omit<AccessTokenClaims<Attributes>, 'serverIdentity'>): Promise<string> {
    const keys = this.keys.loaded ?? (await this.keys.current())
    const json = serializeClaims({ serverIdentity: keys.accessIdentity, ...claims })
    const signature = await signPlaced(keys.accessKey, Buffer.from(json), this.scheduler)
    return encodeToken(signature, json, this.compressionLevel)
  }

  /**
   * The text `known` last found and its token: `verify` of that text, which follows at once in
   * the header form, takes the token from here rather than looking the ~600 characters up again
   * (hashed once, but compared again in V8's runtime: ~0.4 µs a request by `perf`).
   */
  private knownText: string | undefined = undefined
  private knownHit: AccessToken<Attributes> | undefined = undefined

  /**
   * Whether this text is a token already verified (in the cache under its own text): such a
   * text decoded as a token, so it is base64url (see `HeaderAccessInput.knownToken`).
   */
  known(text: string): boolean {
    const token = this.cache.get(text)
    this.knownText = token === undefined ? undefined : text
    this.knownHit = token
    return token !== undefined
  }

  /**
   * Decodes a token and checks that a trusted access key signed it (not its lifetime).
   *
   * Verified tokens are cached by their text (the fast path) and by their signed content. A token
   * text is malleable (other implementations compress differently, so any gzip level, header or
   * block layout decodes; an ECDSA signature has two valid forms): a variant of a token already
   * verified costs one decode, finds the cached token by its signed JSON, and is not cached under
   * its own text, so variants cost no further signature check and cannot flush the cache.
   */
  async verify(text: string): Promise<AccessToken<Attributes>> {
    const keys = this.keys.loaded ?? (await this.keys.current())
    // The same string object in the usual case, so a pointer comparison; equal text otherwise.
    const cached = text === this.knownText ? this.knownHit : this.cache.get(text)
    this.knownText = undefined
    this.knownHit = undefined
    const observe = this.observe
    if (cached !== undefined) {
      this.cache.get(contentKey(cached.json)) // both entries stay recently used
      observe?.tokenCache(true)
      return trusted(keys, cached, observe)
    }
    const token = decodeToken<Attributes>(text, this.limits)
    const known = this.cache.get(contentKey(token.json))
    observe?.tokenCache(known !== undefined)
    if (known !== undefined) return trusted(keys, known, observe)
    await trusted(keys, token, observe)
    const valid = await this.verifier.verify(
      Buffer.from(token.json),
      token.signature,
      token.serverIdentity
    )
    if (!valid) throw new InvalidSignatureError('token')
    // Cached tokens are shared by every request that presents them: make them read-only.
    deepFreeze(token)
    this.cache.set(text, token)
    this.cache.set(contentKey(token.json), token)
    return token
  }

  /**
   * A canonical id of a token: the hash of its signed JSON, the same for every encoding of it.
   * Anything kept per token (a cache, a deny list) is keyed by this, never by the token text.
   */
  id(token: AccessToken<Attributes> | string): string {
    const json = typeof token === 'string' ? decodeToken(token, this.limits).json : token.json
    return this.hasher.sum(json)
  }
}

/** The token, if a trusted access key signed it; an unknown key may be a rotation not seen yet. */
async function trusted<T extends AccessToken<unknown>>(
  keys: ServerKeys,
  token: T,
  observe?: { keyCache(hit: boolean): void }
): Promise<T> {
  const known = keys.isTrustedAccessKey(token.serverIdentity)
  observe?.keyCache(known)
  if (!known) {
    if (!(await keys.resolveAccessKey(token.serverIdentity))) throw new UnknownServerKeyError()
  }
  return token
}

/**
 * The token cache's key for a token's signed content. A token text starts with its 88-character
 * signature and so never starts with `{`, while its JSON always does: the two kinds of key cannot
 * collide.
 */
const contentKey = (json: string): string => json

/** Freezes a JSON-like value and everything in it. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const child of Object.values(value)) deepFreeze(child)
  }
  return value
}
