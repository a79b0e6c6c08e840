import { blake3 } from '@noble/hashes/blake3'
import { encodeHash } from '../codec/cesr'
import type { Hasher } from './types'

const utf8 = new TextEncoder()

/** BLAKE3-256 digest of bytes (32 bytes). */
export function blake3Digest(bytes: Uint8Array): Uint8Array {
  return blake3(bytes)
}

/** BLAKE3-256 over the UTF-8 bytes of a string, qualified as `E…`. */
export class Blake3Hasher implements Hasher {
  sum(text: string): string {
    return encodeHash(blake3(utf8.encode(text)))
  }
}
