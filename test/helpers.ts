/** Test helpers: an in-process server and network, and builders of raw protocol messages. */
import {
  BetterAuthClient,
  Blake3Hasher,
  MemoryStore,
  NodeSigningKey,
  RandomNoncer,
  createBetterAuth,
  type BetterAuthOptions,
  type BetterAuthServer,
  type HandlerResult,
  type Network,
  type Operation,
} from '../src'

// The shipped suites' fixtures: one clock, one set of attributes, one hash and nonce maker.
import {
  ATTRIBUTES,
  Clock,
  accessBody,
  hash,
  nonce,
  signed,
  type Attributes,
} from '../testing/fixtures'
export { ATTRIBUTES, Clock, accessBody, hash, nonce, signed, type Attributes }

export const hasher = new Blake3Hasher()
export const noncer = new RandomNoncer()

export interface TestServer {
  auth: BetterAuthServer<Attributes>
  store: MemoryStore
  clock: Clock
  /** Runs an endpoint on a raw body. */
  call(operation: Operation, body: string | Uint8Array): Promise<HandlerResult>
  /** Access-protected echo route: verifies, then answers `{wasFoo, wasBar}`. */
  access(body: string | Uint8Array): Promise<HandlerResult>
  /** Everything in the store, to compare before and after a rejected message. */
  snapshot(): string
}

export function makeServer(options: BetterAuthOptions<Attributes> = {}): TestServer {
  const clock = new Clock()
  const store = new MemoryStore({ now: clock.now, sweepIntervalMs: 0 })
  const auth = createBetterAuth<Attributes>({
    store,
    now: clock.now,
    attributes: () => ATTRIBUTES,
    keys: { env: false },
    logger: {
      error: () => undefined,
      warn: () => undefined,
      info: () => undefined,
      debug: () => undefined,
    },
    ...options,
  })
  return {
    auth,
    store,
    clock,
    call: (operation, body) => auth.handle(operation, body),
    async access(body) {
      try {
        const principal = await auth.verifyAccess<{ foo?: unknown; bar?: unknown }>(body)
        const reply = await auth.respond(principal.nonce, {
          wasFoo: principal.request.foo,
          wasBar: principal.request.bar,
        })
        return { status: 200, headers: {}, body: reply }
      } catch (error) {
        return auth.errorResult(error)
      }
    },
    snapshot: () => JSON.stringify(store.dump()),
  }
}

/** A network that calls the server in process: protocol paths, plus `/foo/bar`. */
export class InProcessNetwork implements Network {
  readonly sent: { path: string; body: string }[] = []
  private readonly byPath: Map<string, Operation>

  constructor(private readonly server: TestServer) {
    this.byPath = new Map(
      server.auth
        .routes()
        .filter(r => r.endpoint !== 'responseKey')
        .map(r => [r.path, r.endpoint as Operation])
    )
  }

  async send(path: string, body: string): Promise<{ status: number; body: string }> {
    this.sent.push({ path, body })
    if (path === '/key/response') {
      const result = await this.server.auth.handle('responseKey', body)
      return { status: result.status, body: result.body }
    }
    if (path === '/foo/bar') {
      const result = await this.server.access(body)
      return { status: result.status, body: result.body }
    }
    const operation = this.byPath.get(path)
    if (operation === undefined) return { status: 404, body: '' }
    const result = await this.server.call(operation, body)
    return { status: result.status, body: result.body }
  }
}

export function makeClient(server: TestServer, network?: Network): BetterAuthClient {
  return new BetterAuthClient({
    network: network ?? new InProcessNetwork(server),
    now: server.clock.now,
  })
}

/** A device's key chain, for building raw requests: keys[i] is current, keys[i+1] next. */
export class TestDevice {
  private readonly chain: NodeSigningKey[] = [NodeSigningKey.generate(), NodeSigningKey.generate()]
  private index = 0
  identity = ''
  device: string

  constructor() {
    this.device = hash(this.current.publicKeyText + this.rotationHash)
  }

  private at(i: number): NodeSigningKey {
    while (this.chain.length <= i) this.chain.push(NodeSigningKey.generate())
    return this.chain[i] as NodeSigningKey
  }

  get current(): NodeSigningKey {
    return this.at(this.index)
  }
  /** The key the next rotation reveals. */
  get next(): NodeSigningKey {
    return this.at(this.index + 1)
  }
  /** The hash the current key commits to. */
  get rotationHash(): string {
    return hash(this.next.publicKeyText)
  }
  /** The commitment a rotation would store (hash of the key after next). */
  get nextRotationHash(): string {
    return hash(this.at(this.index + 2).publicKeyText)
  }

  /** Call after the server accepted a rotation. */
  advance(): void {
    this.index++
  }

  /** `authentication` for a rotating request (reveals `next`). */
  rotating(extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      device: this.device,
      identity: this.identity,
      publicKey: this.next.publicKeyText,
      ...extra,
      rotationHash: this.nextRotationHash,
    }
  }
}

/** An account's first device and its recovery key. */
export class TestAccount {
  readonly first = new TestDevice()
  recovery = NodeSigningKey.generate()

  constructor() {
    const d = this.first
    d.identity = hash(d.current.publicKeyText + d.rotationHash + this.recoveryHash)
  }

  get identity(): string {
    return this.first.identity
  }
  get recoveryHash(): string {
    return hash(this.recovery.publicKeyText)
  }

  createAccountPayload(n = nonce()): Record<string, unknown> {
    const d = this.first
    return {
      access: { nonce: n },
      request: {
        authentication: {
          device: d.device,
          identity: d.identity,
          publicKey: d.current.publicKeyText,
          recoveryHash: this.recoveryHash,
          rotationHash: d.rotationHash,
        },
      },
    }
  }

  createAccountBody(): string {
    return signed(this.createAccountPayload(), this.first.current)
  }
}

/** A linkable new device for `identity`: its container payload, signed by its current key. */
export function linkContainer(device: TestDevice, identity: string): Record<string, unknown> {
  device.identity = identity
  const payload = {
    authentication: {
      device: device.device,
      identity,
      publicKey: device.current.publicKeyText,
      rotationHash: device.rotationHash,
    },
  }
  return JSON.parse(signed(payload, device.current)) as Record<string, unknown>
}

export function errorOf(result: HandlerResult): { code: string; message: string } {
  return (JSON.parse(result.body) as { error: { code: string; message: string } }).error
}

/** The status of an answer, with its error code when it was refused. */
export function outcomeOf(result: HandlerResult): { status: number; code?: string } {
  return result.status === 200
    ? { status: 200 }
    : { status: result.status, code: errorOf(result).code }
}

export function payloadOf<T = Record<string, unknown>>(result: HandlerResult): T {
  if (result.status !== 200) throw new Error(`HTTP ${result.status}: ${result.body}`)
  return (JSON.parse(result.body) as { payload: T }).payload
}

/** Creates an account on the server (asserting success). */
export async function createdAccount(server: TestServer): Promise<TestAccount> {
  const account = new TestAccount()
  const result = await server.call('createAccount', account.createAccountBody())
  if (result.status !== 200) throw new Error(`createAccount: HTTP ${result.status} ${result.body}`)
  return account
}

/** A requestSession body (unsigned) for `identity`. */
export function sessionRequest(identity: string): string {
  return JSON.stringify({
    payload: { access: { nonce: nonce() }, request: { authentication: { identity } } },
  })
}

/** A fresh session challenge for `identity`. */
export async function challenge(server: TestServer, identity: string): Promise<string> {
  const payload = payloadOf<{ response: { authentication: { nonce: string } } }>(
    await server.call('requestSession', sessionRequest(identity))
  )
  return payload.response.authentication.nonce
}

/** A createSession payload answering `challengeNonce` for `device`, for the access key pair. */
export function createSessionPayload(
  device: TestDevice,
  challengeNonce: string,
  access: NodeSigningKey,
  next: NodeSigningKey
): Record<string, unknown> {
  return {
    access: { nonce: nonce() },
    request: {
      access: { publicKey: access.publicKeyText, rotationHash: hash(next.publicKeyText) },
      authentication: { device: device.device, nonce: challengeNonce },
    },
  }
}

/** The same, signed (by the device's current key unless another signer is given). */
export function createSessionBody(
  device: TestDevice,
  challengeNonce: string,
  access: NodeSigningKey,
  next: NodeSigningKey,
  signer = device.current
): string {
  return signed(createSessionPayload(device, challengeNonce, access, next), signer)
}

export interface Session {
  token: string
  /** The access key the token names. */
  key: NodeSigningKey
  /** The key the token's rotation hash commits to (reveal it to refresh). */
  next: NodeSigningKey
}

/** Opens a session for `device` through requestSession and createSession. */
export async function openSession(server: TestServer, device: TestDevice): Promise<Session> {
  const key = NodeSigningKey.generate()
  const next = NodeSigningKey.generate()
  const c = await challenge(server, device.identity)
  const payload = payloadOf<{ response: { access: { token: string } } }>(
    await server.call('createSession', createSessionBody(device, c, key, next))
  )
  return { token: payload.response.access.token, key, next }
}

export interface UntilOptions {
  /** How long to wait before failing, ms. @default 5000 */
  timeoutMs?: number
  /** How often to check, ms. @default 10 */
  intervalMs?: number
  /** What is awaited, for the failure message. @default the condition's source */
  what?: string
}

/**
 * Resolves once `condition` holds (it may be async; a condition that throws counts as not met),
 * checked every `intervalMs`; rejects after `timeoutMs` saying what it waited for (and the last
 * error the condition threw). A number is `timeoutMs`.
 */
export async function until(
  condition: () => boolean | Promise<boolean>,
  options: number | UntilOptions = {}
): Promise<void> {
  const settings: UntilOptions = typeof options === 'number' ? { timeoutMs: options } : options
  const { timeoutMs = 5000, intervalMs = 10, what = String(condition) } = settings
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  for (;;) {
    try {
      if (await condition()) return
    } catch (error) {
      lastError = error
    }
    if (Date.now() > deadline) {
      const cause = lastError === undefined ? '' : ` (last error: ${String(lastError)})`
      throw new Error(`not met within ${timeoutMs} ms: ${what}${cause}`)
    }
    await new Promise(resolve => setTimeout(resolve, intervalMs))
  }
}
