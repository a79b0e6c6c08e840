/**
 * P-256 on @noble/curves, for runtimes without node:crypto. Same interfaces as ./node.
 * High-S signatures are valid ECDSA and other implementations emit them, so `lowS` is off.
 */
import { p256 } from '@noble/curves/p256'
import { sha256 } from '@noble/hashes/sha2'
import { decodePublicKey, decodeSignature, encodePublicKey, encodeSignature } from '../codec/cesr'
import type { SigningKey, Verifier } from './types'

export class NobleP256Verifier implements Verifier {
  isValidPublicKey(publicKey: string): boolean {
    const bytes = decodePublicKey(publicKey)
    if (bytes === undefined) return false
    try {
      p256.ProjectivePoint.fromHex(bytes).assertValidity()
      return true
    } catch {
      return false
    }
  }

  verify(message: Uint8Array, signature: string, publicKey: string): boolean {
    const key = decodePublicKey(publicKey)
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
