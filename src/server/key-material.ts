/**
 * Key material of the server keys: reading a key from its input (PEM, JWK, file, any SigningKey)
 * or the environment, sealing private keys for a key store, and key-store error handling.
 */
import {
  createCipheriv,
  createDecipheriv,
  randomBytes,
  scryptSync,
  type JsonWebKey,
  type KeyObject,
} from 'node:crypto'
import { readFileSync } from 'node:fs'
import { NodeSigningKey } from '../crypto/node'
import type { SigningKey } from '../crypto/types'
import { BetterAuthError, StorageUnavailableError } from '../errors'
import type { StoredKey } from '../stores/types'
import type { KeyInput } from './keys'

function isSigningKey(input: unknown): input is SigningKey {
  return (
    typeof input === 'object' &&
    input !== null &&
    typeof (input as SigningKey).sign === 'function' &&
    typeof (input as SigningKey).publicKey === 'function'
  )
}

/** Turns a KeyInput into a SigningKey. */
export function loadSigningKey(input: KeyInput): SigningKey {
  if (isSigningKey(input)) return input
  if (typeof input === 'object' && 'file' in input && typeof input.file === 'string') {
    return NodeSigningKey.from(readFileSync(input.file, 'utf8'))
  }
  return NodeSigningKey.from(input as string | JsonWebKey | KeyObject)
}

export function envOf(
  env: Record<string, string | undefined> | false | undefined
): Record<string, string | undefined> {
  return env === false ? {} : (env ?? process.env)
}

export function fromEnv(
  vars: Record<string, string | undefined>,
  name: string
): KeyInput | undefined {
  const inline = vars[name]
  if (inline !== undefined && inline.trim() !== '') return inline
  const file = vars[`${name}_FILE`]
  if (file !== undefined && file.trim() !== '') return { file }
  return undefined
}

// ---------------------------------------------------------------- sealing

export const SEALED = 'sealed:v1:'

/** Encrypts a private key PEM for storage: `sealed:v1:` + base64url(salt ‖ iv ‖ tag ‖ data). */
export function sealPrivateKey(pem: string, secret: string): string {
  const salt = randomBytes(16)
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', scryptSync(secret, salt, 32), iv)
  const data = Buffer.concat([cipher.update(pem, 'utf8'), cipher.final()])
  return SEALED + Buffer.concat([salt, iv, cipher.getAuthTag(), data]).toString('base64url')
}

/** Decrypts what `sealPrivateKey` made; plain PEM passes through. */
export function unsealPrivateKey(stored: string, secret: string | undefined): string {
  if (!stored.startsWith(SEALED)) return stored
  if (secret === undefined) {
    throw new TypeError('the stored server keys are sealed: set BETTER_AUTH_KEY_SECRET')
  }
  const raw = Buffer.from(stored.slice(SEALED.length), 'base64url')
  const decipher = createDecipheriv(
    'aes-256-gcm',
    scryptSync(secret, raw.subarray(0, 16), 32),
    raw.subarray(16, 28)
  )
  decipher.setAuthTag(raw.subarray(28, 44))
  try {
    return Buffer.concat([decipher.update(raw.subarray(44)), decipher.final()]).toString('utf8')
  } catch {
    throw new TypeError('cannot unseal the stored server keys: wrong BETTER_AUTH_KEY_SECRET')
  }
}

/** A new key as a key store keeps it (sealed when there is a secret). */
export function toStored(key: NodeSigningKey, now: number, secret: string | undefined): StoredKey {
  const pem = key.toPem()
  return {
    publicKey: key.publicKeyText,
    privateKey: secret === undefined ? pem : sealPrivateKey(pem, secret),
    createdAt: now,
    retireAt: null,
  }
}

/** Whether the default warning was emitted: once per process, not once per server. */
let emittedDefaultWarning = false

export function warn(onWarning: ((message: string) => void) | undefined, message: string): void {
  if (onWarning !== undefined) {
    onWarning(message)
  } else if (!emittedDefaultWarning) {
    emittedDefaultWarning = true
    process.emitWarning(message, { code: 'BETTER_AUTH_UNSEALED_KEYS' })
  }
}

/** Store failures become 503s (the server keeps answering once the store is back). */
export async function viaStore<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work()
  } catch (error) {
    if (error instanceof BetterAuthError || error instanceof TypeError) throw error
    throw new StorageUnavailableError({ cause: error, context: { reason: 'key store' } })
  }
}
