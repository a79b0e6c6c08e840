/** Small crypto interfaces, so a deployment can swap implementations (e.g. an HSM or KMS). */

/** BLAKE3-256 of a UTF-8 string, in the protocol's qualified text form (`E…`, 44 chars). */
export interface Hasher {
  sum(text: string): string
}

/** ECDSA P-256 / SHA-256 verification over qualified texts. */
export interface Verifier {
  /**
   * True iff `signature` (`0I…`) is a valid signature over `message` by `publicKey` (`1AAI…`).
   * Never throws for malformed input: anything that does not verify is false.
   */
  verify(message: Uint8Array, signature: string, publicKey: string): boolean | Promise<boolean>
  /** True iff `publicKey` decodes to a point on P-256 (not the identity, on the curve). */
  isValidPublicKey(publicKey: string): boolean
}

/** A signing key. It may live in an HSM or KMS, so both operations are async. */
export interface SigningKey {
  /** The public key in qualified form (`1AAI…`). */
  publicKey(): Promise<string>
  /** An ECDSA P-256 / SHA-256 signature over `message`, in qualified form (`0I…`). */
  sign(message: Uint8Array): Promise<string>
}

/** 128-bit nonces from a CSPRNG, in qualified form (`0A…`). */
export interface Noncer {
  generate128(): string
}
