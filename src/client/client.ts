/**
 * A client for every protocol operation. Each response's signature is checked against the
 * server's response key and its nonce against the request's (BA203 on mismatch).
 */
import { formatTimestamp } from '../codec/timestamp'
import { Blake3Hasher } from '../crypto/blake3'
import { NodeP256Verifier } from '../crypto/node'
import { RandomNoncer } from '../crypto/nonce'
import type { Hasher, Noncer, SigningKey, Verifier } from '../crypto/types'
import { BetterAuthError, ERROR_CODES, InvalidResponseError, type ErrorCode } from '../errors'
import { checkResponse, type SignedPart } from '../messages/envelope'
import { isObject, type JsonObject } from '../messages/fields'
import { parseStrictJson } from '../messages/json'
import { DEFAULT_PATHS, type Paths } from '../server/routes'
import {
  MemoryRotatingKeyStore,
  MemoryValueStore,
  type ClientRotatingKeyStore,
  type ClientValueStore,
} from './stores'

/** Sends a request body to a path and returns the reply's status and text. */
export interface Network {
  send(path: string, body: string): Promise<{ status: number; body: string }>
}

/** `fetch`-based network: POSTs JSON to `baseUrl + path`. */
export class FetchNetwork implements Network {
  constructor(
    private readonly baseUrl: string,
    private readonly fetchImpl: typeof fetch = globalThis.fetch,
    private readonly headers: Record<string, string> = {}
  ) {}

  async send(path: string, body: string): Promise<{ status: number; body: string }> {
    const response = await this.fetchImpl(this.baseUrl.replace(/\/+$/, '') + path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...this.headers },
      body,
    })
    return { status: response.status, body: await response.text() }
  }
}

export interface ClientStores {
  identity?: ClientValueStore
  device?: ClientValueStore
  accessToken?: ClientValueStore
  /** Authentication (device) key chain. */
  authenticationKeys?: ClientRotatingKeyStore
  /** Access (session) key chain. */
  accessKeys?: ClientRotatingKeyStore
}

export interface ClientOptions {
  /** Base URL of the server, e.g. `http://127.0.0.1:8080`. Ignored when `network` is given. */
  baseUrl?: string
  network?: Network
  paths?: Partial<Paths>
  /**
   * The server's response public key (`1AAI…`), pinned out of band. When omitted it is fetched
   * once from the response-key endpoint (trust on first use).
   */
  responseKey?: string
  stores?: ClientStores
  crypto?: { hasher?: Hasher; verifier?: Verifier; noncer?: Noncer }
  now?: () => number
}

/** A verified response: the application data and the full signed payload. */
export interface ServerReply<Response = unknown> {
  response: Response
  payload: JsonObject
}

export class BetterAuthClient {
  readonly network: Network
  readonly paths: Readonly<Paths>
  private readonly hasher: Hasher
  private readonly verifier: Verifier
  private readonly noncer: Noncer
  private readonly now: () => number
  private readonly identityStore: ClientValueStore
  private readonly deviceStore: ClientValueStore
  private readonly tokenStore: ClientValueStore
  private readonly authKeys: ClientRotatingKeyStore
  private readonly accessKeys: ClientRotatingKeyStore
  private responseKeyValue: string | undefined

  constructor(options: ClientOptions) {
    if (options.network === undefined && options.baseUrl === undefined) {
      throw new TypeError('BetterAuthClient needs a baseUrl or a network')
    }
    this.network = options.network ?? new FetchNetwork(options.baseUrl as string)
    this.paths = Object.freeze({ ...DEFAULT_PATHS, ...options.paths })
    this.hasher = options.crypto?.hasher ?? new Blake3Hasher()
    this.verifier = options.crypto?.verifier ?? new NodeP256Verifier()
    this.noncer = options.crypto?.noncer ?? new RandomNoncer()
    this.now = options.now ?? Date.now
    const stores = options.stores ?? {}
    this.identityStore = stores.identity ?? new MemoryValueStore()
    this.deviceStore = stores.device ?? new MemoryValueStore()
    this.tokenStore = stores.accessToken ?? new MemoryValueStore()
    this.authKeys = stores.authenticationKeys ?? new MemoryRotatingKeyStore({ hasher: this.hasher })
    this.accessKeys = stores.accessKeys ?? new MemoryRotatingKeyStore({ hasher: this.hasher })
    this.responseKeyValue = options.responseKey
  }

  // ------------------------------------------------------------------ state

  async identity(): Promise<string> {
    return required(await this.identityStore.get(), 'identity')
  }

  async device(): Promise<string> {
    return required(await this.deviceStore.get(), 'device')
  }

  async accessToken(): Promise<string> {
    return required(await this.tokenStore.get(), 'access token')
  }

  /** The server's response key: pinned, or fetched once from the key endpoint. */
  async responseKey(): Promise<string> {
    if (this.responseKeyValue === undefined) {
      const reply = await this.network.send(this.paths.responseKey, '')
      const key = reply.body.trim()
      if (reply.status !== 200 || !this.verifier.isValidPublicKey(key)) {
        throw new InvalidResponseError('response key endpoint did not return a public key')
      }
      this.responseKeyValue = key
    }
    return this.responseKeyValue
  }

  // ------------------------------------------------------------------ accounts

  async createAccount(recoveryHash: string): Promise<void> {
    const [identity, publicKey, rotationHash] = await this.authKeys.initialize(recoveryHash)
    const device = this.hasher.sum(publicKey + rotationHash)
    await this.signedCall(this.paths.createAccount, await this.authKeys.signer(), {
      authentication: { device, identity, publicKey, recoveryHash, rotationHash },
    })
    await this.identityStore.store(identity)
    await this.deviceStore.store(device)
  }

  async deleteAccount(): Promise<void> {
    await this.rotatingCall(this.paths.deleteAccount, {})
  }

  /** Recovers `identity` on this (new) device with the recovery key; sets the next recovery hash. */
  async recoverAccount(
    identity: string,
    recoveryKey: SigningKey,
    recoveryHash: string
  ): Promise<void> {
    const [, publicKey, rotationHash] = await this.authKeys.initialize()
    const device = this.hasher.sum(publicKey + rotationHash)
    await this.signedCall(this.paths.recoverAccount, recoveryKey, {
      authentication: {
        device,
        identity,
        publicKey,
        recoveryHash,
        recoveryKey: await recoveryKey.publicKey(),
        rotationHash,
      },
    })
    await this.identityStore.store(identity)
    await this.deviceStore.store(device)
  }

  async changeRecoveryKey(recoveryHash: string): Promise<void> {
    await this.rotatingCall(this.paths.changeRecoveryKey, { recoveryHash })
  }

  // ------------------------------------------------------------------ devices

  /** On the new device: a signed link container for an existing device to submit. */
  async generateLinkContainer(identity: string): Promise<string> {
    const [, publicKey, rotationHash] = await this.authKeys.initialize()
    const device = this.hasher.sum(publicKey + rotationHash)
    await this.identityStore.store(identity)
    await this.deviceStore.store(device)
    const payload = JSON.stringify({
      authentication: { device, identity, publicKey, rotationHash },
    })
    const signature = await (await this.authKeys.signer()).sign(Buffer.from(payload))
    return `{"payload":${payload},"signature":"${signature}"}`
  }

  /** On an existing device: links the device that produced `linkContainer`. */
  async linkDevice(linkContainer: string): Promise<void> {
    const text = linkContainer.trim()
    if (!isObject(parseStrictJson(text).value)) {
      throw new TypeError('link container must be a JSON object')
    }
    // Embedded verbatim: the container's signature covers its exact text.
    await this.rotatingCall(this.paths.linkDevice, {}, `,"link":${text}`)
  }

  /** Unlinks `device` (this device too: then it commits to a key it can never reveal). */
  async unlinkDevice(device: string): Promise<void> {
    const self = device === (await this.deviceStore.get())
    const link = `,"link":${JSON.stringify({ device })}`
    await this.rotatingCall(this.paths.unlinkDevice, {}, link, self)
  }

  async rotateDevice(): Promise<void> {
    await this.rotatingCall(this.paths.rotateDevice, {})
  }

  // ------------------------------------------------------------------ sessions

  /** Requests a challenge and answers it; stores the access token. */
  async createSession(): Promise<void> {
    const identity = await this.identity()
    const startNonce = this.noncer.generate128()
    const startBody = JSON.stringify({
      payload: { access: { nonce: startNonce }, request: { authentication: { identity } } },
    })
    const start = await this.exchange(this.paths.requestSession, startBody, startNonce)
    const challenge = (start.response as { authentication?: { nonce?: unknown } }).authentication
      ?.nonce
    if (typeof challenge !== 'string') throw new InvalidResponseError('challenge is missing')

    const [, publicKey, rotationHash] = await this.accessKeys.initialize()
    const reply = await this.signedCall(this.paths.createSession, await this.authKeys.signer(), {
      access: { publicKey, rotationHash },
      authentication: { device: await this.device(), nonce: challenge },
    })
    await this.tokenStore.store(tokenOf(reply))
  }

  /** Exchanges the access token and the next access key for a new token. */
  async refreshSession(): Promise<void> {
    const [signingKey, rotationHash] = await this.accessKeys.next()
    const reply = await this.signedCall(this.paths.refreshSession, signingKey, {
      access: {
        publicKey: await signingKey.publicKey(),
        rotationHash,
        token: await this.accessToken(),
      },
    })
    await this.tokenStore.store(tokenOf(reply))
    await this.accessKeys.rotate()
  }

  /**
   * Makes an access request to a protected route and returns its verified response data.
   * Throws BA203 if the response nonce differs, BA201 if its signature does not verify.
   */
  async accessRequest<Response = unknown, Request = unknown>(
    path: string,
    request: Request
  ): Promise<Response> {
    const nonce = this.noncer.generate128()
    const payload = JSON.stringify({
      access: { nonce, timestamp: formatTimestamp(this.now()), token: await this.accessToken() },
      request,
    })
    const signature = await (await this.accessKeys.signer()).sign(Buffer.from(payload))
    const reply = await this.exchange(
      path,
      `{"payload":${payload},"signature":"${signature}"}`,
      nonce
    )
    return reply.response as Response
  }

  // ------------------------------------------------------------------ plumbing

  /**
   * A request signed by the next authentication key; rotates the chain on success. `extra`
   * joins the authentication fields; `rest` is JSON text of further request members.
   */
  private async rotatingCall(
    path: string,
    extra: JsonObject,
    rest = '',
    finalRotation = false
  ): Promise<ServerReply> {
    const [signingKey, nextRotationHash] = await this.authKeys.next()
    const rotationHash = finalRotation ? this.hasher.sum(nextRotationHash) : nextRotationHash
    const authentication = {
      device: await this.device(),
      identity: await this.identity(),
      publicKey: await signingKey.publicKey(),
      ...extra,
      rotationHash,
    }
    const request = `{"authentication":${JSON.stringify(authentication)}${rest}}`
    const reply = await this.signedCall(path, signingKey, request)
    await this.authKeys.rotate()
    return reply
  }

  /** A request signed by `signer`; `request` is an object or its JSON text. */
  private async signedCall(
    path: string,
    signer: SigningKey,
    request: JsonObject | string
  ): Promise<ServerReply> {
    const nonce = this.noncer.generate128()
    const requestText = typeof request === 'string' ? request : JSON.stringify(request)
    const payload = `{"access":{"nonce":"${nonce}"},"request":${requestText}}`
    const signature = await signer.sign(Buffer.from(payload))
    return this.exchange(path, `{"payload":${payload},"signature":"${signature}"}`, nonce)
  }

  /** Sends a body and verifies the reply: error body, signature, server identity and nonce. */
  private async exchange(path: string, body: string, nonce: string): Promise<ServerReply> {
    const reply = await this.network.send(path, body)
    let parsed
    try {
      parsed = parseStrictJson(reply.body, { maxDepth: 64 })
    } catch (error) {
      throw new InvalidResponseError(`HTTP ${reply.status}, body is not JSON`, { cause: error })
    }
    const root = parsed.value
    if (!isObject(root) || !isObject(root.payload)) throw remoteError(root, reply.status)
    const span = parsed.payloadSpans.get('payload') as [number, number]
    const part: SignedPart = {
      payload: root.payload,
      text: reply.body.slice(span[0], span[1]),
      signature: typeof root.signature === 'string' ? root.signature : undefined,
    }
    await checkResponse(this.verifier, part, await this.responseKey(), nonce)
    return { response: root.payload.response, payload: root.payload }
  }
}

function required(value: string | undefined, what: string): string {
  if (value === undefined) throw new Error(`no ${what} stored: create or recover an account first`)
  return value
}

function tokenOf(reply: ServerReply): string {
  const token = (reply.response as { access?: { token?: unknown } }).access?.token
  if (typeof token !== 'string') throw new InvalidResponseError('token is missing')
  return token
}

/** The error a server reported, as a BetterAuthError with its code and HTTP status. */
function remoteError(root: unknown, status: number): BetterAuthError {
  const error = isObject(root) ? root.error : undefined
  if (isObject(error) && typeof error.code === 'string' && error.code in ERROR_CODES) {
    const message = typeof error.message === 'string' ? error.message : error.code
    return new BetterAuthError(error.code as ErrorCode, message, {
      status,
      context: { remote: true },
    })
  }
  return new InvalidResponseError(`HTTP ${status}, no payload`, { context: { error } })
}
