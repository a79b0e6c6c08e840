import { encodeNonce } from '../codec/cesr'
import type { Noncer } from './types'

/** Nonces drawn from one refill of the pool: 256 nonces of 16 bytes. */
const POOL_BYTES = 4096

/**
 * 128-bit nonces from the platform CSPRNG (`crypto.getRandomValues`). Random bytes are drawn
 * 4 KiB at a time (as Node does for `randomUUID`) and each 16-byte slice is used once: one call
 * into the CSPRNG per 256 nonces instead of one per nonce.
 */
export class RandomNoncer implements Noncer {
  private readonly pool = new Uint8Array(POOL_BYTES)
  private offset = POOL_BYTES

  generate128(): string {
    if (this.offset === POOL_BYTES) {
      globalThis.crypto.getRandomValues(this.pool)
      this.offset = 0
    }
    const bytes = this.pool.subarray(this.offset, this.offset + 16)
    this.offset += 16
    return encodeNonce(bytes)
  }
}
