/**
 * P-256 on @noble/curves, for runtimes without node:crypto. Same interfaces as ./node.
 * High-S signatures are valid ECDSA and other implementations emit them, so `lowS` is off.
 */
import { p256 } from '@noble/curves/p256'
import { sha256 } from '@noble/hashes/sha2'
import { LRUCache } from 'lru-cache'
import { decodePublicKey, decodeSignature, encodePublicKey, encodeSignature } from '../codec/cesr'
import type { SigningKey, Verifier } from './types'

/** What the cache keeps for a text that is not a P-256 point. */
const NOT_A_POINT = new Uint8Array(0)

/** The compressed point of a qualified key if it is on the curve. */
function checkedPoint(publicKey: string): Uint8Array | undefined {
  const bytes = decodePublicKey(publicKey)
  if (bytes === undefined) return undefined
  try {
    p256.ProjectivePoint.fromHex(bytes).assertValidity()
    return bytes
  } catch {
    return undefined
  }
}

/**
 * ECDSA P-256 verification on @noble/curves. Keys are validated once (a bounded cache), so an
 * invalid key costs no exception on later calls.
 */
export class NobleP256Verifier implements Verifier {
  private readonly valid: LRUCache<string, Uint8Array>

  constructor(cacheSize = 10_000) {
    this.valid = new LRUCache({ max: Math.max(1, cacheSize) })
  }

  /** The compressed point of a qualified key if it is on the curve, else undefined. */
  private point(publicKey: string): Uint8Array | undefined {
    let bytes = this.valid.get(publicKey)
    if (bytes === undefined) {
      bytes = checkedPoint(publicKey) ?? NOT_A_POINT
      this.valid.set(publicKey, bytes)
    }
    return bytes === NOT_A_POINT ? undefined : bytes
  }

  isValidPublicKey(publicKey: string): boolean {
    return this.point(publicKey) !== undefined
  }

  verify(message: Uint8Array, signature: string, publicKey: string): boolean {
    const key = this.point(publicKey)
    const rs = decodeSignature(signature)
    if (key === undefined || rs === undefined) return false
    try {
      return p256.verify(rs, sha256(message), key, {
        lowS: false,
        prehash: false,
        format: 'compact',
      })
    } catch {
      return false
    }
  }
}

/** A P-256 signing key on @noble/curves. */
export class NobleSigningKey implements SigningKey {
  readonly publicKeyText: string

  constructor(private readonly secret: Uint8Array) {
    this.publicKeyText = encodePublicKey(p256.getPublicKey(secret, true))
  }

  static generate(): NobleSigningKey {
    return new NobleSigningKey(p256.utils.randomPrivateKey())
  }

  publicKey(): Promise<string> {
    return Promise.resolve(this.publicKeyText)
  }

  sign(message: Uint8Array): Promise<string> {
    const signature = p256.sign(sha256(message), this.secret, { lowS: false, prehash: false })
    return Promise.resolve(encodeSignature(signature.toCompactRawBytes()))
  }
}
