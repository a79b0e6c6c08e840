/**
 * The load generator's side of the protocol: raw messages built and signed ahead of the timed
 * phase (accounts, sessions, access requests, refreshes), and the setup calls that obtain
 * tokens from a server over HTTP.
 */
import { Blake3Hasher, NodeSigningKey, RandomNoncer, formatTimestamp } from '../src'
import { failedCount, flow, type Sample } from './load'

const hasher = new Blake3Hasher()
const noncer = new RandomNoncer()
export const hash = (text: string): string => hasher.sum(text)
export const nonce = (): string => noncer.generate128()

/** `{"payload":…,"signature":…}` with the signature over the exact payload text. */
export function signed(payload: string, key: NodeSigningKey): string {
  return `{"payload":${payload},"signature":"${key.signSync(Buffer.from(payload))}"}`
}

/** An account's first device. */
export interface Account {
  identity: string
  device: string
  key: NodeSigningKey
}

/** A session: its token, the access key it was issued for, and the key a refresh reveals. */
export interface Session {
  token: string
  key: NodeSigningKey
  next: NodeSigningKey
}

export function newAccount(): { account: Account; body: string } {
  const key = NodeSigningKey.generate()
  const rotationHash = hash(NodeSigningKey.generate().publicKeyText)
  const recoveryHash = hash(NodeSigningKey.generate().publicKeyText)
  const publicKey = key.publicKeyText
  const identity = hash(publicKey + rotationHash + recoveryHash)
  const device = hash(publicKey + rotationHash)
  const payload = JSON.stringify({
    access: { nonce: nonce() },
    request: { authentication: { device, identity, publicKey, recoveryHash, rotationHash } },
  })
  return { account: { identity, device, key }, body: signed(payload, key) }
}

export function requestSessionBody(identity: string): string {
  return JSON.stringify({
    payload: { access: { nonce: nonce() }, request: { authentication: { identity } } },
  })
}

export function createSessionBody(account: Account, challenge: string, access: AccessKey): string {
  const payload = JSON.stringify({
    access: { nonce: nonce() },
    request: { access, authentication: { device: account.device, nonce: challenge } },
  })
  return signed(payload, account.key)
}

const REQUEST = JSON.stringify({ foo: 'bar', bar: 'foo' })

/** A fresh access request (new nonce, current timestamp) for `session`. */
export function accessBody(session: Session): string {
  const payload =
    `{"access":{"nonce":"${nonce()}","timestamp":"${formatTimestamp(Date.now())}",` +
    `"token":"${session.token}"},"request":${REQUEST}}`
  return signed(payload, session.key)
}

const AFTER_NEXT = hash(NodeSigningKey.generate().publicKeyText)

/** The refresh of `session`: reveals its next access key. */
export function refreshBody(session: Session): string {
  const payload = JSON.stringify({
    access: { nonce: nonce() },
    request: {
      access: {
        publicKey: session.next.publicKeyText,
        rotationHash: AFTER_NEXT,
        token: session.token,
      },
    },
  })
  return signed(payload, session.next)
}

// ------------------------------------------------------------------ setup over HTTP

export async function post(baseUrl: string, path: string, body: string): Promise<unknown> {
  const response = await fetch(baseUrl + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  })
  const text = await response.text()
  if (response.status !== 200 || !text.includes('"payload"')) {
    throw new Error(`${path}: HTTP ${response.status} ${text.slice(0, 200)}`)
  }
  return (JSON.parse(text) as { payload: { response: unknown } }).payload.response
}

/** Creates `count` accounts on the server. */
export async function createAccounts(baseUrl: string, count: number): Promise<Account[]> {
  const made: Account[] = []
  await inParallel(count, 8, async () => {
    const { account, body } = newAccount()
    await post(baseUrl, '/account/create', body)
    made.push(account)
  })
  return made
}

/** The challenge in a requestSession answer. */
export function challengeOf(response: unknown): string {
  const challenge = (response as { authentication?: { nonce?: unknown } }).authentication?.nonce
  if (typeof challenge !== 'string') throw new Error('no challenge in the answer')
  return challenge
}

/** The token in a createSession / refreshSession answer. */
export function tokenOf(response: unknown): string {
  const token = (response as { access?: { token?: unknown } }).access?.token
  if (typeof token !== 'string') throw new Error('no token in the answer')
  return token
}

/**
 * Opens one session for `account` with fresh keys: requestSession, then createSession over the
 * challenge. `call` sends a body to an operation and returns its answer's response data.
 */
export async function openSession(
  account: Account,
  call: (operation: 'requestSession' | 'createSession', body: string) => Promise<unknown>
): Promise<Session> {
  const key = NodeSigningKey.generate()
  const next = NodeSigningKey.generate()
  const challenge = challengeOf(await call('requestSession', requestSessionBody(account.identity)))
  const body = createSessionBody(account, challenge, {
    publicKey: key.publicKeyText,
    rotationHash: hash(next.publicKeyText),
  })
  return { token: tokenOf(await call('createSession', body)), key, next }
}

const SESSION_PATHS = { requestSession: '/session/request', createSession: '/session/create' }

/** Opens `count` sessions over HTTP (round-robin over `accounts`), each with its own keys. */
export async function openSessions(
  baseUrl: string,
  accounts: Account[],
  count: number
): Promise<Session[]> {
  const sessions: Session[] = []
  let i = 0
  await inParallel(count, 8, async () => {
    const account = accounts[i++ % accounts.length] as Account
    sessions.push(
      await openSession(account, (operation, body) => post(baseUrl, SESSION_PATHS[operation], body))
    )
  })
  return sessions
}

/** Runs `task` `count` times, at most `concurrency` at once. */
export async function inParallel(
  count: number,
  concurrency: number,
  task: (index: number) => Promise<void>
): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < count) await task(next++)
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker))
}

/** A new session's access key, as createSession sends it. */
export interface AccessKey {
  publicKey: string
  rotationHash: string
}

/**
 * Fresh access public keys for new sessions, made before the timed phase: a real client makes a
 * new access key per session, and the server checks each new point.
 */
export function accessKeys(count: number): AccessKey[] {
  const rotationHash = hash(NodeSigningKey.generate().publicKeyText)
  return Array.from({ length: count }, () => ({
    publicKey: NodeSigningKey.generate().publicKeyText,
    rotationHash,
  }))
}

/**
 * `keys.length` session flows (a multiple of `connections`: whole flows on every connection):
 * requestSession for the next account, then createSession with the next key, signed over the
 * challenge it returned (that signature is made in the timed phase: the challenge only exists
 * then). The sample's `ok` counts flows; its latencies span both requests.
 */
export async function sessionFlows(
  url: string,
  connections: number,
  keys: readonly AccessKey[],
  nextAccount: () => Account
): Promise<Sample> {
  let used = 0
  const latencies: number[] = []
  const sample = await flow(url, connections, keys.length / connections, [
    {
      path: '/session/request',
      body: context => {
        const account = nextAccount()
        context.account = account
        context.started = performance.now()
        return requestSessionBody(account.identity)
      },
      onResponse: (status, body, context) => {
        context.challenge = status === 200 ? challengeOf(JSON.parse(body).payload.response) : ''
      },
    },
    {
      path: '/session/create',
      body: context => {
        const key = keys[Math.min(used++, keys.length - 1)] as AccessKey
        return createSessionBody(context.account as Account, context.challenge as string, key)
      },
      onResponse: (status, body, context) => {
        if (status === 200) tokenOf(JSON.parse(body).payload.response)
        latencies.push(performance.now() - (context.started as number))
      },
    },
  ])
  return {
    ...sample,
    ok: (sample.requests - failedCount(sample)) / 2,
    latencies: Float64Array.from(latencies),
  }
}
