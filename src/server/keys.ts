/**
 * Server keys: the response key (signs every response; its public key is the server's identity)
 * and the access key (signs access tokens; its public key is a token's `serverIdentity`).
 *
 * Each is taken from the options, else from the environment (`BETTER_AUTH_RESPONSE_KEY` /
 * `BETTER_AUTH_ACCESS_KEY` holding a PEM or JWK, or `…_FILE` naming a file that does), else
 * generated at start. Generated keys die with the process: tokens issued before a restart stop
 * verifying. Persist keys for anything but development.
 */
import type { JsonWebKey, KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { isPublicKeyText } from '../codec/cesr'
import { NodeSigningKey } from '../crypto/node'
import type { SigningKey } from '../crypto/types'

/** A PEM or JWK (text or object), a node KeyObject, a file, or any SigningKey (HSM, KMS…). */
export type KeyInput = string | JsonWebKey | KeyObject | SigningKey | { file: string }

export interface ServerKeyOptions {
  /** The response signing key. @default env BETTER_AUTH_RESPONSE_KEY(_FILE), else generated */
  response?: KeyInput
  /** The access-token signing key. @default env BETTER_AUTH_ACCESS_KEY(_FILE), else generated */
  access?: KeyInput
  /**
   * Further access verification keys (`1AAI…`) whose tokens are accepted, e.g. the previous
   * access key during a rotation, or keys of other auth servers you trust.
   */
  accessVerificationKeys?: string[]
  /** Environment to read keys from; `false` to ignore the environment. @default process.env */
  env?: Record<string, string | undefined> | false
}

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

function fromEnv(
  env: Record<string, string | undefined> | false | undefined,
  name: string
): KeyInput | undefined {
  const vars = env === false ? {} : (env ?? process.env)
  const inline = vars[name]
  if (inline !== undefined && inline.trim() !== '') return inline
  const file = vars[`${name}_FILE`]
  if (file !== undefined && file.trim() !== '') return { file }
  return undefined
}

/** The server's resolved keys. Build with `ServerKeys.load`. */
export class ServerKeys {
  private readonly trusted: Set<string>

  private constructor(
    readonly responseKey: SigningKey,
    readonly responseIdentity: string,
    private current: { key: SigningKey; identity: string },
    extra: string[]
  ) {
    this.trusted = new Set([current.identity, ...extra])
  }

  static async load(options: ServerKeyOptions = {}): Promise<ServerKeys> {
    const response = loadSigningKey(
      options.response ??
        fromEnv(options.env, 'BETTER_AUTH_RESPONSE_KEY') ??
        NodeSigningKey.generate()
    )
    const access = loadSigningKey(
      options.access ?? fromEnv(options.env, 'BETTER_AUTH_ACCESS_KEY') ?? NodeSigningKey.generate()
    )
    const extra = options.accessVerificationKeys ?? []
    for (const key of extra) {
      if (!isPublicKeyText(key)) throw new TypeError(`not a qualified public key: ${key}`)
    }
    return new ServerKeys(
      response,
      await response.publicKey(),
      { key: access, identity: await access.publicKey() },
      extra
    )
  }

  /** The key that signs new tokens. */
  get accessKey(): SigningKey {
    return this.current.key
  }

  /** Public key of the current access key (new tokens' `serverIdentity`). */
  get accessIdentity(): string {
    return this.current.identity
  }

  /** Whether tokens signed by `serverIdentity` are accepted. */
  isTrustedAccessKey(serverIdentity: string): boolean {
    return this.trusted.has(serverIdentity)
  }

  /** Every access verification key currently accepted. */
  accessVerificationKeys(): string[] {
    return [...this.trusted]
  }

  /** Accepts tokens signed by another key (e.g. a previous access key). */
  trustAccessKey(publicKey: string): void {
    if (!isPublicKeyText(publicKey)) throw new TypeError(`not a qualified public key: ${publicKey}`)
    this.trusted.add(publicKey)
  }

  /** Stops accepting tokens signed by a key (never the current one). */
  distrustAccessKey(publicKey: string): void {
    if (publicKey !== this.current.identity) this.trusted.delete(publicKey)
  }

  /**
   * Signs new tokens with `key`. Tokens of the previous key keep verifying until
   * `distrustAccessKey` retires it (after its tokens have expired).
   */
  async rotateAccessKey(input: KeyInput): Promise<void> {
    const key = loadSigningKey(input)
    const identity = await key.publicKey()
    this.current = { key, identity }
    this.trusted.add(identity)
  }
}
