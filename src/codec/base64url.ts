/** Strict base64url (RFC 4648 §5, no padding). */

const ALPHABET = /^[A-Za-z0-9_-]*$/

/** Encodes bytes as base64url without padding. */
export function encodeBase64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url')
}

/**
 * Decodes base64url strictly: only the URL-safe alphabet, no padding, no whitespace, and the
 * unused trailing bits must be zero (so every byte string has exactly one accepted text form).
 * Returns undefined for anything else.
 */
export function decodeBase64Url(text: string): Buffer | undefined {
  if (text.length % 4 === 1 || !ALPHABET.test(text)) return undefined
  const bytes = Buffer.from(text, 'base64url')
  // Re-encoding is the cheapest complete check of canonical trailing bits.
  if (bytes.toString('base64url') !== text) return undefined
  return bytes
}
