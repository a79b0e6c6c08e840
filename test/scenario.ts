/**
 * Raw-message scenarios shared by the attack suite and the fuzz test: accounts, sessions and
 * the request bodies of every operation, plus assertions on rejections.
 */
import {
  ERROR_CODES,
  NodeSigningKey,
  decodeSignature,
  encodeSignature,
  type Operation,
} from '../src'
import {
  TestAccount,
  TestDevice,
  createdAccount,
  errorOf,
  hash,
  linkContainer,
  nonce,
  openSession,
  payloadOf,
  signed,
  type Session,
  type TestServer,
} from './helpers'

/** The P-256 group order n. */
export const CURVE_N = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551')
/** The P-256 field prime p. */
export const CURVE_P = BigInt('0xffffffff00000001000000000000000000000000ffffffffffffffffffffffff')
const CURVE_B = BigInt('0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b')

export type Target = Operation | 'access'

/** A 32-byte big-endian encoding of `x` (which must be below 2^256). */
export function bytes32(x: bigint): Buffer {
  return Buffer.from(x.toString(16).padStart(64, '0'), 'hex')
}

/** Splits a qualified signature into r and s. */
export function rs(signature: string): { r: bigint; s: bigint } {
  const raw = decodeSignature(signature)
  if (raw === undefined) throw new Error(`not a signature: ${signature}`)
  return {
    r: BigInt('0x' + raw.subarray(0, 32).toString('hex')),
    s: BigInt('0x' + raw.subarray(32).toString('hex')),
  }
}

/** A qualified signature from r and s. */
export function fromRs(r: bigint, s: bigint): string {
  return encodeSignature(Buffer.concat([bytes32(r), bytes32(s)]))
}

/** The (r, n − s) twin of an ECDSA signature: equally valid over the same message. */
export function twin(signature: string): string {
  const { r, s } = rs(signature)
  return fromRs(r, CURVE_N - s)
}

function modPow(base: bigint, exponent: bigint, modulus: bigint): bigint {
  let result = 1n
  let b = ((base % modulus) + modulus) % modulus
  let e = exponent
  while (e > 0n) {
    if (e & 1n) result = (result * b) % modulus
    b = (b * b) % modulus
    e >>= 1n
  }
  return result
}

/** Whether x³ − 3x + b has a square root mod p, i.e. whether x is the abscissa of a point. */
export function hasSquareRoot(x: bigint): boolean {
  const p = CURVE_P
  const rhs = (((x * x * x - 3n * x + CURVE_B) % p) + p) % p
  return rhs === 0n || modPow(rhs, (p - 1n) / 2n, p) === 1n
}

/** The envelope `body` with its top-level signature replaced by `signature` (any text). */
export function withSignature(body: string, signature: string): string {
  const at = body.lastIndexOf(',"signature":"')
  if (at < 0 || !body.endsWith('"}')) throw new Error('not an envelope')
  return `${body.slice(0, at)},"signature":${JSON.stringify(signature)}}`
}

/** The signed payload text of a body built by `signed`. */
export function payloadText(body: string): string {
  return body.slice('{"payload":'.length, body.lastIndexOf(',"signature":"'))
}

/** The top-level signature of a body built by `signed`. */
export function signatureOf(body: string): string {
  return (JSON.parse(body) as { signature: string }).signature
}

/** `{"payload":<text>,"signature":…}` signed over exactly `text`. */
export function signedText(text: string, key: NodeSigningKey): string {
  return `{"payload":${text},"signature":"${key.signSync(Buffer.from(text))}"}`
}

/**
 * Runs a message that must be refused: asserts the status, the code, the error body's shape
 * and that the store is exactly as before.
 */
export async function expectRejected(
  server: TestServer,
  target: Target,
  body: string | Uint8Array,
  code: keyof typeof ERROR_CODES,
  status: number
): Promise<{ code: string; message: string }> {
  const before = server.snapshot()
  const result = target === 'access' ? await server.access(body) : await server.call(target, body)
  const parsed = JSON.parse(result.body) as Record<string, unknown>
  expect(Object.keys(parsed)).toEqual(['error'])
  const error = errorOf(result)
  expect({ status: result.status, code: error.code }).toEqual({ status, code })
  expect(ERROR_CODES[code].status).toBe(status)
  expect(typeof error.message).toBe('string')
  if (status === 401) expect(result.headers['www-authenticate']).toContain(code)
  expect(server.snapshot()).toEqual(before)
  return error
}

export async function expectOk(
  server: TestServer,
  target: Target,
  body: string | Uint8Array
): Promise<{ access: { nonce: string; serverIdentity: string }; response: unknown }> {
  const result = target === 'access' ? await server.access(body) : await server.call(target, body)
  expect({ status: result.status, body: result.status === 200 ? '' : result.body }).toEqual({
    status: 200,
    body: '',
  })
  return payloadOf(result)
}

export {
  challenge,
  createSessionBody,
  createSessionPayload,
  createdAccount as created,
  openSession,
  sessionRequest,
  type Session,
} from './helpers'

export function refreshPayload(
  session: Session,
  token = session.token,
  next: NodeSigningKey = NodeSigningKey.generate()
): Record<string, unknown> {
  return {
    access: { nonce: nonce() },
    request: {
      access: {
        publicKey: session.next.publicKeyText,
        rotationHash: hash(next.publicKeyText),
        token,
      },
    },
  }
}

export function refreshBody(
  session: Session,
  options: { signer?: NodeSigningKey; token?: string; next?: NodeSigningKey } = {}
): string {
  return signed(
    refreshPayload(session, options.token, options.next),
    options.signer ?? session.next
  )
}

/** The payload of a rotating operation (rotate, delete, change recovery, unlink, link). */
export function rotatingPayload(
  device: TestDevice,
  extra: Record<string, unknown> = {},
  request: Record<string, unknown> = {}
): Record<string, unknown> {
  return {
    access: { nonce: nonce() },
    request: { authentication: device.rotating(extra), ...request },
  }
}

export function rotateBody(
  device: TestDevice,
  extra: Record<string, unknown> = {},
  signer = device.next
): string {
  return signed(rotatingPayload(device, extra), signer)
}

export function linkBody(
  account: TestAccount,
  container: Record<string, unknown>,
  signer = account.first.next
): string {
  return signed(rotatingPayload(account.first, {}, { link: container }), signer)
}

export function unlinkBody(device: TestDevice, target: string, signer = device.next): string {
  return signed(rotatingPayload(device, {}, { link: { device: target } }), signer)
}

export function recoverPayload(
  account: TestAccount,
  device: TestDevice,
  newRecoveryHash = hash(NodeSigningKey.generate().publicKeyText)
): Record<string, unknown> {
  device.identity = account.identity
  return {
    access: { nonce: nonce() },
    request: {
      authentication: {
        device: device.device,
        identity: account.identity,
        publicKey: device.current.publicKeyText,
        recoveryHash: newRecoveryHash,
        recoveryKey: account.recovery.publicKeyText,
        rotationHash: device.rotationHash,
      },
    },
  }
}

/** Links a fresh device to `account` (rotating its first device) and returns it. */
export async function linked(server: TestServer, account: TestAccount): Promise<TestDevice> {
  const device = new TestDevice()
  await expectOk(server, 'linkDevice', linkBody(account, linkContainer(device, account.identity)))
  account.first.advance()
  return device
}

/** A new account with a second device linked, and a session open on each of its two devices. */
export async function twoDevicesWithSessions(server: TestServer): Promise<{
  account: TestAccount
  second: TestDevice
  first: Session
  other: Session
}> {
  const account = await createdAccount(server)
  const second = await linked(server, account)
  const first = await openSession(server, account.first)
  const other = await openSession(server, second)
  return { account, second, first, other }
}
