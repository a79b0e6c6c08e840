/**
 * A client for every protocol operation. Each response's signature is checked against the
 * server's response key and its nonce against the request's (BA203 on mismatch).
 *
 * It imports no `node:*` module and uses no `Buffer`: it runs unchanged in browsers, Web Workers
 * and Node ≥ 20 (see ./index, the `better-auth-protocol/client` entry).
 */
import { utf8 } from '../codec/bytes'
import { formatTimestamp } from '../codec/timestamp'
import type { Hasher, Noncer, SigningKey, Verifier } from '../crypto/types'
import {
  BetterAuthError,
  ERROR_CODES,
  IncorrectNonceError,
  InvalidResponseError,
  InvalidSignatureError,
  type ErrorCode,
} from '../errors'
import { parseStrictJson } from '../messages/json'
import type { Paths } from '../server/routes'
import {
  ClientStoreError,
  LocalLock,
  MemoryRotatingKeyStore,
  MemoryValueStore,
  checkStoredHash,
  type ClientLock,
  type ClientRotatingKeyStore,
  type ClientValueStore,
} from './stores'
import { headerFetch } from './fetch'
import { readTokenClaims, type TokenClaims } from './token'
import { Blake3Hasher, RandomNoncer, WebCryptoVerifier } from './webcrypto'

type JsonObject = Record<string, unknown>

const isObject = (value: unknown): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

/** The protocol's default paths (the server's DEFAULT_PATHS; a test keeps them equal). */
export const CLIENT_DEFAULT_PATHS: Readonly<Paths> = Object.freeze({
  createAccount: '/account/create',
  deleteAccount: '/account/delete',
  recoverAccount: '/account/recover',
  linkDevice: '/device/link',
  unlinkDevice: '/device/unlink',
  rotateDevice: '/device/rotate',
  requestSession: '/session/request',
  createSession: '/session/create',
  refreshSession: '/session/refresh',
  changeRecoveryKey: '/recovery/change',
  responseKey: '/key/response',
  accessKeys: '/key/access',
})

/** Sends a request body to a path and returns the reply's status and text. */
export interface Network {
  send(path: string, body: string): Promise<{ status: number; body: string }>
}

/**
 * `fetch`-based network: POSTs JSON to `baseUrl + path`. The fetch function is always called with
 * `globalThis` as its receiver: browsers and workers throw "Illegal invocation" for a `fetch`
 * called on anything else (e.g. as a property of this object).
 */
export class FetchNetwork implements Network {
  private readonly fetchImpl: typeof fetch

  constructor(
    private readonly baseUrl: string,
    fetchImpl?: typeof fetch,
    private readonly headers: Record<string, string> = {}
  ) {
    const impl = fetchImpl
    this.fetchImpl =
      impl === undefined
        ? (input, init) => globalThis.fetch(input, init)
        : (input, init) => impl.call(globalThis, input, init)
  }

  async send(path: string, body: string): Promise<{ status: number; body: string }> {
    const url = this.baseUrl.replace(/\/+$/, '') + path
    let response: Response
    try {
      response = await this.fetchImpl(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...this.headers },
        body,
      })
    } catch (error) {
      throw new InvalidResponseError(`no reply from ${url}: ${(error as Error).message}`, {
        cause: error,
      })
    }
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
  /**
   * Held around every rotation of a chain. Stores shared by several pages (browserStores) bring
   * one that spans them; the default spans this realm only.
   */
  lock?: ClientLock
}

export interface SessionOptions {
  /**
   * Access requests refresh the token first when it expires within this many milliseconds
   * (at most half its lifetime), and once more if the server still answers "expired" (BA401).
   * `false` turns automatic refreshing off. @default 60000
   */
  refreshBeforeMs?: number | false
  /**
   * When the refresh window has closed, open a new session with the device key (a challenge
   * signed by this device) instead of failing. @default true
   */
  reauthenticate?: boolean
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
  session?: SessionOptions
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
  private readonly lock: ClientLock
  private readonly refreshBeforeMs: number | false
  private readonly reauthenticate: boolean
  private responseKeyValue: string | undefined
  private renewing: Promise<void> | undefined
  private claimsCache: { token: string; claims: Promise<TokenClaims> } | undefined

  constructor(options: ClientOptions) {
    if (options.network === undefined && options.baseUrl === undefined) {
      throw new TypeError('BetterAuthClient needs a baseUrl or a network')
    }
    this.network = options.network ?? new FetchNetwork(options.baseUrl as string)
    this.paths = Object.freeze({ ...CLIENT_DEFAULT_PATHS, ...options.paths })
    this.hasher = options.crypto?.hasher ?? new Blake3Hasher()
    this.verifier = options.crypto?.verifier ?? new WebCryptoVerifier()
    this.noncer = options.crypto?.noncer ?? new RandomNoncer()
    this.now = options.now ?? Date.now
    const stores = options.stores ?? {}
    this.identityStore = stores.identity ?? new MemoryValueStore()
    this.deviceStore = stores.device ?? new MemoryValueStore()
    this.tokenStore = stores.accessToken ?? new MemoryValueStore()
    this.authKeys = stores.authenticationKeys ?? new MemoryRotatingKeyStore({ hasher: this.hasher })
    this.accessKeys = stores.accessKeys ?? new MemoryRotatingKeyStore({ hasher: this.hasher })
    this.lock = stores.lock ?? new LocalLock()
    this.refreshBeforeMs = options.session?.refreshBeforeMs ?? 60_000
    this.reauthenticate = options.session?.reauthenticate ?? true
    this.responseKeyValue = options.responseKey
  }

  // ------------------------------------------------------------------ state

  async identity(): Promise<string> {
    return required(checkStoredHash(await this.identityStore.get(), 'identity'), 'identity')
  }

  async device(): Promise<string> {
    return required(checkStoredHash(await this.deviceStore.get(), 'device'), 'device')
  }

  async accessToken(): Promise<string> {
    return required(await this.storedToken(), 'access token')
  }

  /** Whether this client holds an account (an identity and a device). */
  async hasAccount(): Promise<boolean> {
    return (
      (await this.identityStore.get()) !== undefined && (await this.deviceStore.get()) !== undefined
    )
  }

  /** The claims of the current access token (expiry, attributes…), or undefined if signed out. */
  async session<Attributes = unknown>(): Promise<TokenClaims<Attributes> | undefined> {
    const token = await this.storedToken()
    return token === undefined ? undefined : ((await this.claims(token)) as TokenClaims<Attributes>)
  }

  /** Forgets the access token (the device stays linked; createSession signs in again). */
  async signOut(): Promise<void> {
    if (this.tokenStore.clear !== undefined) await this.tokenStore.clear()
    else await this.tokenStore.store('')
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
    await this.lock.run('authentication', async () => {
      const [identity, publicKey, rotationHash] = await this.authKeys.initialize(recoveryHash)
      const device = this.hasher.sum(publicKey + rotationHash)
      await this.signedCall(this.paths.createAccount, await this.authKeys.signer(), {
        authentication: { device, identity, publicKey, recoveryHash, rotationHash },
      })
      await this.identityStore.store(identity)
      await this.deviceStore.store(device)
    })
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
    await this.lock.run('authentication', async () => {
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
      await this.signOut()
    })
  }

  async changeRecoveryKey(recoveryHash: string): Promise<void> {
    await this.rotatingCall(this.paths.changeRecoveryKey, { recoveryHash })
  }

  // ------------------------------------------------------------------ devices

  /**
   * On the new device: a signed link container, as text, for an existing device to submit
   * (show it, copy it, or put it in a QR code).
   */
  async generateLinkContainer(identity: string): Promise<string> {
    return this.lock.run('authentication', async () => {
      const [, publicKey, rotationHash] = await this.authKeys.initialize()
      const device = this.hasher.sum(publicKey + rotationHash)
      await this.identityStore.store(identity)
      await this.deviceStore.store(device)
      await this.signOut()
      const payload = JSON.stringify({
        authentication: { device, identity, publicKey, rotationHash },
      })
      const signature = await (await this.authKeys.signer()).sign(utf8(payload))
      return `{"payload":${payload},"signature":"${signature}"}`
    })
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

  /** Requests a challenge and answers it with the device key; stores the access token. */
  async createSession(): Promise<void> {
    await this.lock.run('access', () => this.openSession())
  }

  private async openSession(): Promise<void> {
    // The challenge is answered with the current device key: settle the chain first.
    await this.lock.run('authentication', () => this.settleDevice())
    const identity = await this.identity()
    const device = await this.device()
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
      authentication: { device, nonce: challenge },
    })
    const token = await this.checkedToken(reply, publicKey)
    await this.tokenStore.store(token)
  }

  /**
   * Exchanges the access token and the next access key for a new token. Concurrent calls (and
   * other pages sharing the stores' lock) refresh one after another, never with the same key.
   */
  async refreshSession(): Promise<void> {
    await this.lock.run('access', () => this.refreshLocked())
  }

  private async refreshLocked(): Promise<void> {
    const unsettled = await this.settleSession()
    const token = await this.accessToken()
    const [signingKey, rotationHash] = await this.accessKeys.next()
    const publicKey = await signingKey.publicKey()
    let reply: ServerReply
    try {
      reply = await this.signedCall(this.paths.refreshSession, signingKey, {
        access: { publicKey, rotationHash, token },
      })
    } catch (error) {
      // An earlier refresh with this key reached the server and its token was lost: a key
      // refreshes once, so open a new session with the device key.
      if (!unsettled || !this.reauthenticate || !isRemote(error)) throw error
      return this.openSession()
    }
    const next = await this.checkedToken(reply, publicKey)
    // The token first: it records the outcome, and settleSession finishes a rotation cut short.
    await this.tokenStore.store(next)
    await this.accessKeys.rotate()
  }

  /**
   * Renews the session whose token was `seen`: one renewal at a time in this client (concurrent
   * callers share it), and none if another caller or page renewed it meanwhile.
   */
  private renew(seen: string): Promise<void> {
    this.renewing ??= this.lock
      .run('access', async () => {
        // Signed out meanwhile: stay signed out.
        const token = await this.accessToken()
        if (token !== seen && !(await this.due(token))) return
        const claims = await this.claims(token)
        if (this.now() < claims.refreshExpiryMs) {
          try {
            return await this.refreshLocked()
          } catch (error) {
            if (!this.reauthenticate || !isRemote(error)) throw error
          }
        }
        if (!this.reauthenticate) throw new Error('the session has expired: sign in again')
        await this.openSession()
      })
      .finally(() => {
        this.renewing = undefined
      })
    return this.renewing
  }

  /** Whether a token should be refreshed before use. */
  private async due(token: string): Promise<boolean> {
    if (this.refreshBeforeMs === false) return false
    const claims = await this.claims(token)
    const margin = Math.min(this.refreshBeforeMs, (claims.expiryMs - claims.issuedAtMs) / 2)
    return this.now() >= claims.expiryMs - margin
  }

  /**
   * Makes an access request to a protected route and returns its verified response data. The
   * session is refreshed first when its token is about to expire (see SessionOptions).
   * Throws BA203 if the response nonce differs, BA201 if its signature does not verify.
   */
  async accessRequest<Response = unknown, Request = unknown>(
    path: string,
    request: Request
  ): Promise<Response> {
    if (this.refreshBeforeMs === false) return this.sendAccess<Response>(path, request)
    if (this.renewing !== undefined) await this.renewing.catch(() => undefined)
    const token = await this.accessToken()
    if (await this.due(token)) await this.renew(token)
    try {
      return await this.sendAccess<Response>(path, request)
    } catch (error) {
      if (!(error instanceof BetterAuthError && error.code === 'BA401' && isRemote(error))) {
        throw error
      }
      await this.renew(await this.accessToken())
      return this.sendAccess<Response>(path, request)
    }
  }

  /**
   * `fetch` with the header form of the access request: signs any request (any method, body,
   * query) with the session's access key, verifies the reply's signature with the pinned response
   * key, refreshes the token as `accessRequest` does, and returns a standard `Response` (see
   * `headerFetch` in ./fetch). Always past the HTTP cache (`cache: 'no-store'`): a signed reply
   * answers one request and cannot verify for another.
   */
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    const refresh = this.refreshBeforeMs !== false
    return headerFetch(input, init, {
      noncer: this.noncer,
      verifier: this.verifier,
      now: this.now,
      responseKey: () => this.responseKey(),
      tokenAndKey: () => this.tokenAndKey(),
      beforeRequest: async () => {
        if (!refresh) return
        if (this.renewing !== undefined) await this.renewing.catch(() => undefined)
        const token = await this.accessToken()
        if (await this.due(token)) await this.renew(token)
      },
      afterExpired: async () => {
        if (!refresh) return false
        await this.renew(await this.accessToken())
        return true
      },
    })
  }

  private async sendAccess<Response>(path: string, request: unknown): Promise<Response> {
    const [token, signer] = await this.tokenAndKey()
    const nonce = this.noncer.generate128()
    const payload = JSON.stringify({
      access: { nonce, timestamp: formatTimestamp(this.now()), token },
      request,
    })
    const signature = await signer.sign(utf8(payload))
    const reply = await this.exchange(
      path,
      `{"payload":${payload},"signature":"${signature}"}`,
      nonce
    )
    return reply.response as Response
  }

  /**
   * The token and the access key it names. A refresh stores the new token, then rotates the
   * keys: a reader between the two (another page) waits for the refresh and reads again.
   */
  private async tokenAndKey(): Promise<[string, SigningKey]> {
    for (let attempt = 0; ; attempt++) {
      const token = await this.accessToken()
      const signer = await this.accessKeys.signer()
      if (attempt === 2 || (await this.claims(token)).publicKey === (await signer.publicKey())) {
        return [token, signer]
      }
      await this.lock.run('access', () => this.settleSession())
    }
  }

  // ------------------------------------------------------------------ plumbing

  private async storedToken(): Promise<string | undefined> {
    const token = await this.tokenStore.get()
    return token === '' ? undefined : token
  }

  /** A token's claims (the last one is cached). */
  private claims(token: string): Promise<TokenClaims> {
    if (this.claimsCache?.token !== token) {
      const claims = readTokenClaims(token).catch((error: unknown) => {
        throw new ClientStoreError(
          `client store is corrupted: the stored access token cannot be read (${(error as Error).message})`,
          { cause: error }
        )
      })
      claims.catch(() => undefined)
      this.claimsCache = { token, claims }
    }
    return this.claimsCache.claims
  }

  /** The token of a session reply, decoded and checked against what this client asked for. */
  private async checkedToken(reply: ServerReply, publicKey: string): Promise<string> {
    const token = (reply.response as { access?: { token?: unknown } }).access?.token
    if (typeof token !== 'string') throw new InvalidResponseError('token is missing')
    let claims: TokenClaims
    try {
      claims = await readTokenClaims(token)
    } catch (error) {
      throw new InvalidResponseError(`token cannot be decoded: ${(error as Error).message}`, {
        cause: error,
      })
    }
    if (
      claims.publicKey !== publicKey ||
      claims.identity !== (await this.identity()) ||
      claims.device !== (await this.device())
    ) {
      throw new InvalidResponseError('token was issued for another key, identity or device')
    }
    this.claimsCache = { token, claims: Promise.resolve(claims) }
    return token
  }

  /**
   * A request signed by the next authentication key; rotates the chain on success. `extra`
   * joins the authentication fields; `rest` is JSON text of further request members.
   */
  private rotatingCall(
    path: string,
    extra: JsonObject,
    rest = '',
    finalRotation = false
  ): Promise<ServerReply> {
    return this.lock.run('authentication', async () => {
      await this.settleDevice()
      // next() saves the key after the next one before anything is sent: if the reply is lost,
      // the chain holds both outcomes (see settleDevice).
      const [signingKey, nextRotationHash] = await this.authKeys.next()
      const rotationHash = finalRotation ? this.hasher.sum(nextRotationHash) : nextRotationHash
      const reply = await this.rotation(path, signingKey, rotationHash, extra, rest)
      await this.authKeys.rotate()
      return reply
    })
  }

  /** A rotating request revealing `signingKey` and committing to `rotationHash`. */
  private async rotation(
    path: string,
    signingKey: SigningKey,
    rotationHash: string,
    extra: JsonObject = {},
    rest = ''
  ): Promise<ServerReply> {
    const authentication = {
      device: await this.device(),
      identity: await this.identity(),
      publicKey: await signingKey.publicKey(),
      ...extra,
      rotationHash,
    }
    const request = `{"authentication":${JSON.stringify(authentication)}${rest}}`
    return this.signedCall(path, signingKey, request)
  }

  /**
   * Settles a device key chain left pending by a rotation whose outcome was never recorded (the
   * process died, or the reply was lost, after the request left): the server holds either the
   * current key (the request never arrived) or the next one (it was applied). A rotation with
   * the next key tells which: accepted, the chain moves one step; refused, a rotation with the
   * key after it (the other outcome, `ahead`) must be accepted, and the chain moves two steps.
   * Nothing moves until the server accepts one. Called under the `authentication` lock.
   */
  private async settleDevice(): Promise<void> {
    if (this.authKeys.pending === undefined || !(await this.authKeys.pending())) return
    const [signingKey, rotationHash] = await this.authKeys.next()
    try {
      await this.rotation(this.paths.rotateDevice, signingKey, rotationHash)
      await this.authKeys.rotate()
      return
    } catch (error) {
      if (!isRemote(error) || this.authKeys.ahead === undefined) throw error
      const [aheadKey, aheadHash] = await this.authKeys.ahead()
      try {
        await this.rotation(this.paths.rotateDevice, aheadKey, aheadHash)
      } catch {
        throw error
      }
    }
    await this.authKeys.rotate()
    await this.authKeys.rotate()
  }

  /**
   * Settles an access key chain left pending by a refresh: when the stored token already names
   * the next key (the token was saved, the rotation was not), the chain moves to it. Returns
   * whether the chain stays pending (a refresh may have reached the server, whose token was
   * lost). Called under the `access` lock.
   */
  private async settleSession(): Promise<boolean> {
    if (this.accessKeys.pending === undefined || !(await this.accessKeys.pending())) return false
    const token = await this.storedToken()
    if (token === undefined) return true
    const [next] = await this.accessKeys.next()
    if ((await this.claims(token)).publicKey !== (await next.publicKey())) return true
    await this.accessKeys.rotate()
    return false
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
    const signature = await signer.sign(utf8(payload))
    return this.exchange(path, `{"payload":${payload},"signature":"${signature}"}`, nonce)
  }

  /** Sends a body and verifies the reply: error body, signature, server identity and nonce. */
  private async exchange(path: string, body: string, nonce: string): Promise<ServerReply> {
    const reply = await this.network.send(path, body)
    if (reply.body.trim() === '')
      throw new InvalidResponseError(`HTTP ${reply.status}, empty reply`)
    let parsed
    try {
      parsed = parseStrictJson(reply.body, { maxDepth: 64 })
    } catch (error) {
      throw new InvalidResponseError(`HTTP ${reply.status}, body is not JSON`, { cause: error })
    }
    const root = parsed.value
    if (!isObject(root) || !isObject(root.payload)) throw remoteError(root, reply.status)
    const span = parsed.payloadSpans.get('payload') as [number, number]
    const payload = root.payload
    const access = payload.access
    const responseKey = await this.responseKey()
    if (!isObject(access)) throw new InvalidResponseError('response: payload.access is missing')
    if (access.serverIdentity !== responseKey) {
      throw new InvalidResponseError('response: not signed by the pinned response key')
    }
    const signature = root.signature
    if (typeof signature !== 'string') throw new InvalidResponseError('response is not signed')
    // The exact payload text; or, for servers that sign JSON.stringify(payload) but send it
    // formatted differently, that compact form.
    const text = reply.body.slice(span[0], span[1])
    const compact = JSON.stringify(payload)
    const verified =
      (await this.verifier.verify(utf8(text), signature, responseKey)) ||
      (compact !== text && (await this.verifier.verify(utf8(compact), signature, responseKey)))
    if (!verified) throw new InvalidSignatureError('response')
    if (access.nonce !== nonce) throw new IncorrectNonceError(nonce, access.nonce)
    return { response: payload.response, payload }
  }
}

function required(value: string | undefined, what: string): string {
  if (value === undefined) throw new Error(`no ${what} stored: create or recover an account first`)
  return value
}

const isRemote = (error: unknown): boolean =>
  error instanceof BetterAuthError && error.context?.remote === true

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
