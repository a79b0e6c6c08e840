import { encodeNonce } from '../codec/cesr'
import type { Noncer } from './types'

/** 128-bit nonces from the platform CSPRNG (`crypto.getRandomValues`). */
export class RandomNoncer implements Noncer {
  generate128(): string {
    return encodeNonce(globalThis.crypto.getRandomValues(new Uint8Array(16)))
  }
}
