/**
 * The attack suite: one test per hostile input or abuse case. Each asserts the HTTP status, the
 * error code, and that the store is exactly as it was (a refused message changes nothing).
 */
import { gzipSync } from 'node:zlib'
import {
  BetterAuthError,
  InvalidTokenError,
  NodeSigningKey,
  decodeSignature,
  decodeToken,
  encodeBase64Url,
  encodePublicKey,
  formatTimestamp,
  type BetterAuthOptions,
  type Verifier,
} from '../src'
import { NobleP256Verifier } from '../src/noble'
import {
  TestAccount,
  TestDevice,
  accessBody,
  errorOf,
  hash,
  linkContainer,
  makeServer,
  nonce,
  signed,
  type Attributes,
  type TestServer,
} from './helpers'
import {
  CURVE_N,
  CURVE_P,
  bytes32,
  challenge,
  created,
  createSessionBody,
  expectOk,
  expectRejected,
  fromRs,
  hasSquareRoot,
  linkBody,
  linked,
  openSession,
  payloadText,
  recoverPayload,
  refreshBody,
  rotateBody,
  rs,
  signatureOf,
  signedText,
  twin,
  unlinkBody,
  withSignature,
  type Session,
} from './scenario'

interface World {
  server: TestServer
  account: TestAccount
  session: Session
}

async function world(options: BetterAuthOptions<Attributes> = {}): Promise<World> {
  const server = makeServer(options)
  const account = await created(server)
  const session = await openSession(server, account.first)
  return { server, account, session }
}

/** A valid access request for the world's session (or `token`), timestamped by its clock. */
function access(
  w: World,
  options: NonNullable<Parameters<typeof accessBody>[2]> & { token?: string } = {}
): string {
  const { token, ...rest } = options
  return accessBody(token ?? w.session.token, w.session.key, { at: w.server.clock.ms, ...rest })
}

/** The token's signature part and the bytes of its gzip part. */
function tokenParts(token: string): { signature: string; gzip: Buffer; json: string } {
  return {
    signature: token.slice(0, 88),
    gzip: Buffer.from(token.slice(88), 'base64url'),
    json: decodeToken(token).json,
  }
}

const tokenOf = (signature: string, gzip: Uint8Array): string => signature + encodeBase64Url(gzip)

// ------------------------------------------------------------------ signature malleability

describe('signature malleability: the (r, n − s) twin does not let a replay through', () => {
  it('the twin of a signature verifies (so the following tests are meaningful)', async () => {
    const w = await world()
    const body = access(w)
    const alt = twin(signatureOf(body))
    expect(alt).not.toBe(signatureOf(body))
    expect(
      await w.server.auth.verifier.verify(
        Buffer.from(payloadText(body)),
        alt,
        w.session.key.publicKeyText
      )
    ).toBe(true)
  })

  it('access request: the twin of a served request is a replay (BA304)', async () => {
    const w = await world()
    const body = access(w)
    await expectOk(w.server, 'access', body)
    await expectRejected(
      w.server,
      'access',
      withSignature(body, twin(signatureOf(body))),
      'BA304',
      401
    )
  })

  it('access request: the same payload re-formatted (other bytes, same meaning) is a replay', async () => {
    const w = await world()
    const body = access(w)
    await expectOk(w.server, 'access', body)
    const parsed = JSON.parse(body) as unknown
    await expectRejected(w.server, 'access', JSON.stringify(parsed, null, 1), 'BA304', 401)
  })

  it('refresh: the twin of a used refresh is a replay (BA304)', async () => {
    const w = await world()
    const body = refreshBody(w.session)
    await expectOk(w.server, 'refreshSession', body)
    await expectRejected(
      w.server,
      'refreshSession',
      withSignature(body, twin(signatureOf(body))),
      'BA304',
      401
    )
  })

  it('rotation: the twin of an applied rotation is refused (BA104, the commitment moved on)', async () => {
    const w = await world()
    const body = rotateBody(w.account.first)
    await expectOk(w.server, 'rotateDevice', body)
    await expectRejected(
      w.server,
      'rotateDevice',
      withSignature(body, twin(signatureOf(body))),
      'BA104',
      401
    )
  })

  it('createSession: the twin of a used answer finds its challenge consumed (BA303)', async () => {
    const w = await world()
    const c = await challenge(w.server, w.account.identity)
    const body = createSessionBody(
      w.account.first,
      c,
      NodeSigningKey.generate(),
      NodeSigningKey.generate()
    )
    await expectOk(w.server, 'createSession', body)
    await expectRejected(
      w.server,
      'createSession',
      withSignature(body, twin(signatureOf(body))),
      'BA303',
      401
    )
  })
})

// ------------------------------------------------------------------ malformed signatures

describe('malformed signatures', () => {
  const derOf = (signature: string): Buffer => {
    const { r, s } = rs(signature)
    const integer = (x: bigint): Buffer => {
      let b = bytes32(x)
      while (b.length > 1 && b[0] === 0 && (b[1] as number) < 0x80) b = b.subarray(1)
      if ((b[0] as number) >= 0x80) b = Buffer.concat([Buffer.from([0]), b])
      return Buffer.concat([Buffer.from([0x02, b.length]), b])
    }
    const body = Buffer.concat([integer(r), integer(s)])
    return Buffer.concat([Buffer.from([0x30, body.length]), body])
  }
  const MAX = (1n << 256n) - 1n
  /** `0I` over two zero bytes and `raw`: the signature code applied to the wrong length. */
  const qualifyRaw = (raw: Buffer): string =>
    '0I' +
    Buffer.concat([Buffer.alloc(2), raw])
      .toString('base64url')
      .slice(2)

  // [name, transform of a valid signature, code]
  const cases: [string, (signature: string) => string, 'BA101' | 'BA201'][] = [
    ['r = 0', sig => fromRs(0n, rs(sig).s), 'BA201'],
    ['s = 0', sig => fromRs(rs(sig).r, 0n), 'BA201'],
    ['r = s = 0', () => fromRs(0n, 0n), 'BA201'],
    ['r = n', sig => fromRs(CURVE_N, rs(sig).s), 'BA201'],
    ['r = 2^256 − 1 (≥ n)', sig => fromRs(MAX, rs(sig).s), 'BA201'],
    ['s = n', sig => fromRs(rs(sig).r, CURVE_N), 'BA201'],
    ['s = 2^256 − 1 (≥ n)', sig => fromRs(rs(sig).r, MAX), 'BA201'],
    [
      '63 bytes, qualified as far as possible (87 characters)',
      sig => qualifyRaw((decodeSignature(sig) as Buffer).subarray(0, 63)),
      'BA101',
    ],
    [
      '65 bytes, qualified as far as possible (90 characters)',
      sig => qualifyRaw(Buffer.concat([decodeSignature(sig) as Buffer, Buffer.from([1])])),
      'BA101',
    ],
    ['87 characters (one short)', sig => sig.slice(0, 87), 'BA101'],
    ['89 characters (one extra)', sig => sig + 'A', 'BA101'],
    [
      'the raw base64url of the 64 bytes, unqualified',
      sig => (decodeSignature(sig) as Buffer).toString('base64url'),
      'BA101',
    ],
    ['another code prefix (0J)', sig => '0J' + sig.slice(2), 'BA101'],
    ['a nonce code prefix (0A)', sig => '0A' + sig.slice(2), 'BA101'],
    ['a DER signature, raw base64url', sig => derOf(sig).toString('base64url'), 'BA101'],
    [
      'a DER signature, qualified (wrong length)',
      sig =>
        '0I' +
        Buffer.concat([Buffer.alloc(2), derOf(sig)])
          .toString('base64url')
          .slice(2),
      'BA101',
    ],
    [
      'a DER signature squeezed into 64 bytes',
      sig => fromRs(...split64(derOf(sig).subarray(0, 64))),
      'BA201',
    ],
  ]

  function split64(raw: Buffer): [bigint, bigint] {
    const full = Buffer.concat([raw, Buffer.alloc(64 - raw.length)])
    return [
      BigInt('0x' + full.subarray(0, 32).toString('hex')),
      BigInt('0x' + full.subarray(32).toString('hex')),
    ]
  }

  const status = (code: 'BA101' | 'BA201'): number => (code === 'BA101' ? 400 : 401)

  it.each(cases)('access request signature: %s', async (_name, transform, code) => {
    const w = await world()
    const body = access(w)
    await expectRejected(
      w.server,
      'access',
      withSignature(body, transform(signatureOf(body))),
      code,
      status(code)
    )
  })

  it.each(cases)('rotateDevice signature: %s', async (_name, transform, code) => {
    const w = await world()
    const body = rotateBody(w.account.first)
    await expectRejected(
      w.server,
      'rotateDevice',
      withSignature(body, transform(signatureOf(body))),
      code,
      status(code)
    )
  })

  it.each(cases)('access token signature: %s', async (_name, transform, code) => {
    const w = await world()
    const token = w.session.token
    const forged = transform(token.slice(0, 88))
    // A token whose signature part is not a well-formed qualified signature is not a token.
    const expected = code === 'BA101' ? 'BA402' : 'BA201'
    await expectRejected(
      w.server,
      'access',
      access(w, { token: forged + token.slice(88) }),
      expected,
      401
    )
  })
})

// ------------------------------------------------------------------ bad public keys

describe('bad public keys at registration', () => {
  const realX = (): bigint => {
    const raw = Buffer.from('AAAA' + NodeSigningKey.generate().publicKeyText.slice(4), 'base64url')
    return BigInt('0x' + raw.subarray(4).toString('hex'))
  }
  const compressed = (prefix: number, x: bigint): string =>
    encodePublicKey(Buffer.concat([Buffer.from([prefix]), bytes32(x)]))
  const qualify = (raw: Buffer): string =>
    '1AAI' +
    Buffer.concat([Buffer.alloc(3), raw])
      .toString('base64url')
      .slice(4)

  const keys: [string, () => string][] = [
    [
      'an off-curve point (a real key with x moved until it has no square root)',
      () => {
        let x = realX() + 1n
        while (hasSquareRoot(x)) x++
        return compressed(2, x)
      },
    ],
    ['x = p', () => compressed(2, CURVE_P)],
    [
      'x ≥ p whose residue mod p is a valid abscissa',
      () => {
        let k = 1n
        while (!hasSquareRoot(k)) k++
        return compressed(3, CURVE_P + k)
      },
    ],
    ['x = 1, which has no square root', () => compressed(2, 1n)],
    ['the identity (all-zero 33 bytes)', () => qualify(Buffer.alloc(33))],
    ['the identity as SEC1 0x00, one byte', () => qualify(Buffer.from([0]))],
    [
      'the uncompressed 0x04 form (65 bytes)',
      () => {
        const jwk = NodeSigningKey.generate().toJwk()
        return qualify(
          Buffer.concat([
            Buffer.from([4]),
            Buffer.from(jwk.x as string, 'base64url'),
            Buffer.from(jwk.y as string, 'base64url'),
          ])
        )
      },
    ],
    ['an 0x04 prefix on 33 bytes', () => compressed(4, realX())],
    ['an 0x05 prefix', () => compressed(5, realX())],
    ['another code (1AAJ)', () => '1AAJ' + NodeSigningKey.generate().publicKeyText.slice(4)],
    ['a hash where a key belongs', () => hash('a key')],
  ]

  const verifiers: [string, () => Verifier | undefined][] = [
    ['node:crypto', () => undefined],
    ['noble', () => new NobleP256Verifier()],
  ]

  function serverWith(verifier: Verifier | undefined): TestServer {
    return makeServer(verifier === undefined ? {} : { crypto: { verifier } })
  }

  describe.each(verifiers)('%s verifier', (_name, verifier) => {
    it.each(keys)('createAccount with %s', async (_kind, bad) => {
      const server = serverWith(verifier())
      const a = new TestAccount()
      const p = a.createAccountPayload() as { request: { authentication: Record<string, unknown> } }
      const key = bad()
      p.request.authentication.publicKey = key
      // Device and identity derive from the bad key, so only the key itself is wrong.
      const rotationHash = p.request.authentication.rotationHash as string
      p.request.authentication.device = hash(key + rotationHash)
      p.request.authentication.identity = hash(key + rotationHash + a.recoveryHash)
      const error = await expectRejected(
        server,
        'createAccount',
        signed(p, a.first.current),
        'BA101',
        400
      )
      expect(error.message).toContain('payload.request.authentication.publicKey')
    })

    it.each(keys)('link container with %s', async (_kind, bad) => {
      const server = serverWith(verifier())
      const a = await created(server)
      const other = new TestDevice()
      const key = bad()
      const payload = {
        authentication: {
          device: hash(key + other.rotationHash),
          identity: a.identity,
          publicKey: key,
          rotationHash: other.rotationHash,
        },
      }
      const container = JSON.parse(signed(payload, other.current)) as Record<string, unknown>
      const error = await expectRejected(server, 'linkDevice', linkBody(a, container), 'BA101', 400)
      expect(error.message).toContain('payload.request.link.payload.authentication.publicKey')
    })
  })
})

// ------------------------------------------------------------------ tokens: gzip, length

describe('hostile tokens', () => {
  const BOMB_BYTES = 200 * 1024 * 1024
  let bomb: Buffer

  beforeAll(() => {
    bomb = gzipSync(Buffer.alloc(BOMB_BYTES), { level: 9 })
  })

  const generous = {
    limits: { maxBodyBytes: 4 * 1024 * 1024, maxTokenLength: 4 * 1024 * 1024 },
  }

  it('gzip bomb in an access request: refused by the body limit (BA603) under defaults', async () => {
    const w = await world()
    const token = tokenOf(tokenParts(w.session.token).signature, bomb)
    await expectRejected(w.server, 'access', access(w, { token }), 'BA603', 413)
  })

  it('gzip bomb in an access request: refused by the token length limit (BA402) when bodies may be large', async () => {
    const w = await world({ limits: { maxBodyBytes: 4 * 1024 * 1024 } })
    const token = tokenOf(tokenParts(w.session.token).signature, bomb)
    const error = await expectRejected(w.server, 'access', access(w, { token }), 'BA402', 401)
    expect(error.message).toContain('longer than 16384')
  })

  it('gzip bomb in an access request: refused by the output limit (BA402) when tokens may be long', async () => {
    const w = await world(generous)
    const token = tokenOf(tokenParts(w.session.token).signature, bomb)
    const error = await expectRejected(w.server, 'access', access(w, { token }), 'BA402', 401)
    expect(error.message).toContain('decompresses beyond 65536 bytes')
  })

  it('gzip bomb in a refresh: refused by the body limit (BA603) under defaults', async () => {
    const w = await world()
    const token = tokenOf(tokenParts(w.session.token).signature, bomb)
    await expectRejected(
      w.server,
      'refreshSession',
      refreshBody(w.session, { token }),
      'BA603',
      413
    )
  })

  it('gzip bomb in a refresh: refused by the output limit (BA402) when tokens may be long', async () => {
    const w = await world(generous)
    const token = tokenOf(tokenParts(w.session.token).signature, bomb)
    const error = await expectRejected(
      w.server,
      'refreshSession',
      refreshBody(w.session, { token }),
      'BA402',
      401
    )
    expect(error.message).toContain('decompresses beyond 65536 bytes')
  })

  it('decodeToken with no length limit refuses the bomb at the output limit without inflating it', async () => {
    const w = await world()
    const token = tokenOf(tokenParts(w.session.token).signature, bomb)
    const before = process.memoryUsage().arrayBuffers
    let thrown: unknown
    try {
      decodeToken(token, { maxTokenLength: Infinity, maxTokenBytes: 4096 })
    } catch (error) {
      thrown = error
    }
    const grown = process.memoryUsage().arrayBuffers - before
    expect(thrown).toBeInstanceOf(InvalidTokenError)
    expect((thrown as InvalidTokenError).message).toContain('decompresses beyond 4096 bytes')
    // Inflating it would hold 200 MiB; the bounded decoder stops at the limit.
    expect(grown).toBeLessThan(32 * 1024 * 1024)
  })

  it('a multi-member gzip token (the signed JSON split over two members) is refused (BA402)', async () => {
    const w = await world()
    const { signature, json } = tokenParts(w.session.token)
    const half = Math.floor(json.length / 2)
    const twoMembers = Buffer.concat([
      gzipSync(Buffer.from(json.slice(0, half))),
      gzipSync(Buffer.from(json.slice(half))),
    ])
    const token = tokenOf(signature, twoMembers)
    const error = await expectRejected(w.server, 'access', access(w, { token }), 'BA402', 401)
    expect(error.message).toContain('data after the gzip member')
  })

  it('a valid token followed by a second gzip member is refused (BA402)', async () => {
    const w = await world()
    const { signature, gzip } = tokenParts(w.session.token)
    const token = tokenOf(signature, Buffer.concat([gzip, gzipSync(Buffer.from(' '))]))
    await expectRejected(w.server, 'access', access(w, { token }), 'BA402', 401)
  })

  it('a valid token with trailing garbage bytes is refused (BA402)', async () => {
    const w = await world()
    const { signature, gzip } = tokenParts(w.session.token)
    const token = tokenOf(signature, Buffer.concat([gzip, Buffer.from([0, 0, 0])]))
    await expectRejected(w.server, 'access', access(w, { token }), 'BA402', 401)
  })

  it('an oversized token (beyond 16384 characters, body within its limit) is refused (BA402)', async () => {
    const w = await world()
    const token = w.session.token + 'A'.repeat(16384)
    const error = await expectRejected(w.server, 'access', access(w, { token }), 'BA402', 401)
    expect(error.message).toContain('longer than 16384')
  })
})

// ------------------------------------------------------------------ non-canonical base64url

describe('non-canonical base64url', () => {
  /** A world whose token's gzip part has both '-' and '_' and a length that is not 0 mod 4. */
  async function suitable(): Promise<World> {
    const w = await world()
    for (;;) {
      const data = w.session.token.slice(88)
      if (data.includes('-') && data.includes('_') && data.length % 4 !== 0) return w
      w.session = await openSession(w.server, w.account.first)
    }
  }

  const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

  const tokenCases: [string, (data: string) => string][] = [
    ["'+' for '-'", d => d.replace('-', '+')],
    ["'/' for '_'", d => d.replace('_', '/')],
    ['= padding', d => d + '='.repeat(4 - (d.length % 4))],
    ['a space inside', d => d.slice(0, 10) + ' ' + d.slice(10)],
    ['a newline inside', d => d.slice(0, 10) + '\n' + d.slice(10)],
    ['a junk character (.)', d => d.slice(0, 10) + '.' + d.slice(10)],
    [
      'non-zero trailing bits',
      d => d.slice(0, -1) + (ALPHABET[ALPHABET.indexOf(d.slice(-1)) | 1] as string),
    ],
  ]

  it.each(tokenCases)('token with %s is refused (BA402)', async (_name, mutate) => {
    const w = await suitable()
    const data = w.session.token.slice(88)
    const mutated = mutate(data)
    expect(mutated).not.toBe(data)
    // A lenient decoder would read most of these as the very same bytes.
    const token = w.session.token.slice(0, 88) + mutated
    await expectRejected(w.server, 'access', access(w, { token }), 'BA402', 401)
  })

  const replaceAt = (text: string, i: number, c: string): string =>
    text.slice(0, i) + c + text.slice(i + 1)

  // Qualified fields of a createAccount, each spelled non-canonically; re-signed, so only the
  // spelling is wrong.
  const fieldCases: [string, string, (v: string) => string][] = [
    ['nonce', "'+'", v => replaceAt(v, 10, '+')],
    ['nonce', "'/'", v => replaceAt(v, 10, '/')],
    ['nonce', '= padding', v => v + '=='],
    ['nonce', 'a junk character', v => replaceAt(v, 10, '*')],
    ['nonce', 'non-zero pad bits (third character)', v => replaceAt(v, 2, 'Q')],
    ['device', "'+'", v => replaceAt(v, 20, '+')],
    ['device', '= padding', v => v + '===='],
    ['device', 'non-zero pad bits (second character)', v => replaceAt(v, 1, '_')],
    ['identity', "'/'", v => replaceAt(v, 20, '/')],
    ['publicKey', "'+'", v => replaceAt(v, 20, '+')],
    ['publicKey', 'a space', v => replaceAt(v, 20, ' ')],
    ['rotationHash', 'lower-case prefix (e)', v => 'e' + v.slice(1)],
    ['recoveryHash', 'a unicode look-alike', v => replaceAt(v, 20, 'А')],
  ]

  it.each(fieldCases)('createAccount %s with %s is refused (BA101)', async (field, _n, mutate) => {
    const server = makeServer()
    const a = new TestAccount()
    const p = a.createAccountPayload() as {
      access: Record<string, string>
      request: { authentication: Record<string, string> }
    }
    const holder = field === 'nonce' ? p.access : p.request.authentication
    holder[field] = mutate(holder[field] as string)
    const error = await expectRejected(
      server,
      'createAccount',
      signed(p, a.first.current),
      'BA101',
      400
    )
    expect(error.message).toContain(field)
  })

  it.each([
    ["'+'", (v: string) => replaceAt(v, 30, '+')],
    ['non-zero pad bits', (v: string) => replaceAt(v, 2, 'E')],
    ['= padding', (v: string) => v + '=='],
  ])('envelope signature with %s is refused (BA101)', async (_name, mutate) => {
    const server = makeServer()
    const a = new TestAccount()
    const body = a.createAccountBody()
    await expectRejected(
      server,
      'createAccount',
      withSignature(body, mutate(signatureOf(body))),
      'BA101',
      400
    )
  })
})

// ------------------------------------------------------------------ JSON structure

describe('JSON structure', () => {
  const pollutionCheck = (): string =>
    JSON.stringify(Object.getOwnPropertyNames(Object.prototype).sort())
  const prototypeNames = pollutionCheck()

  afterEach(() => {
    expect(pollutionCheck()).toBe(prototypeNames)
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })

  it('two payload keys are refused (BA101)', async () => {
    const w = await world()
    const body = access(w)
    const other = payloadText(access(w))
    await expectRejected(
      w.server,
      'access',
      body.replace('{"payload":', `{"payload":${other},"payload":`),
      'BA101',
      400
    )
  })

  it('"payload" and "\\u0070ayload" are duplicates (BA101)', async () => {
    const w = await world()
    const body = access(w)
    const other = payloadText(access(w))
    const error = await expectRejected(
      w.server,
      'access',
      body.replace('{"payload":', `{"\\u0070ayload":${other},"payload":`),
      'BA101',
      400
    )
    expect(error.message).toContain('duplicate key')
  })

  it('a duplicated nonce inside the signed payload is refused (BA101)', async () => {
    const w = await world()
    const text = payloadText(access(w)).replace('{"nonce":', `{"nonce":"${nonce()}","nonce":`)
    await expectRejected(w.server, 'access', signedText(text, w.session.key), 'BA101', 400)
  })

  it('"a" and "\\u0061" in signed application data are duplicates (BA101)', async () => {
    const w = await world()
    const text = payloadText(access(w, { request: { a: 1 } })).replace(
      '{"a":1}',
      '{"a":1,"\\u0061":2}'
    )
    await expectRejected(w.server, 'access', signedText(text, w.session.key), 'BA101', 400)
  })

  it('a __proto__ key at the root is refused (BA101)', async () => {
    const w = await world()
    const body = access(w).replace('{"payload":', '{"__proto__":{"polluted":true},"payload":')
    await expectRejected(w.server, 'access', body, 'BA101', 400)
  })

  it('an escaped __proto__ key in signed application data is refused (BA101)', async () => {
    const w = await world()
    const text = payloadText(access(w, { request: { a: 1 } })).replace(
      '{"a":1}',
      '{"a":1,"\\u005f_proto__":{"polluted":true}}'
    )
    await expectRejected(w.server, 'access', signedText(text, w.session.key), 'BA101', 400)
  })

  it('constructor and prototype keys in a createAccount are harmless extra fields', async () => {
    const server = makeServer()
    const a = new TestAccount()
    const text = JSON.stringify(a.createAccountPayload())
      .replace(
        '"authentication":{',
        '"authentication":{"constructor":{"prototype":{"polluted":true}},'
      )
      .replace(/}$/, ',"prototype":{"polluted":true}}')
    await expectOk(server, 'createAccount', signedText(text, a.first.current))
    expect(Object.keys(server.store.dump().accounts)).toEqual([a.identity])
  })

  it('constructor and prototype keys in access request data reach the handler as plain data', async () => {
    const w = await world()
    const request = { foo: { constructor: { prototype: { polluted: true } } }, bar: 'prototype' }
    const reply = await expectOk(w.server, 'access', access(w, { request }))
    expect(reply.response).toEqual({ wasFoo: request.foo, wasBar: 'prototype' })
  })

  it('nesting one level beyond the limit is refused (BA101)', async () => {
    const w = await world()
    // The envelope and payload take two levels; 31 nested arrays as the request make 33 > 32.
    const deep = JSON.parse('['.repeat(31) + ']'.repeat(31)) as unknown
    const error = await expectRejected(
      w.server,
      'access',
      access(w, { request: deep }),
      'BA101',
      400
    )
    expect(error.message).toContain('nesting deeper than 32')
    const fits = JSON.parse('['.repeat(30) + ']'.repeat(30)) as unknown
    await expectOk(w.server, 'access', access(w, { request: fits }))
  })

  it('30,000 nested arrays (within the body limit) are refused without exhausting the stack (BA101)', async () => {
    const w = await world()
    await expectRejected(
      w.server,
      'access',
      '{"payload":' + '['.repeat(30000) + ']'.repeat(30000) + '}',
      'BA101',
      400
    )
  })

  it.each([
    ['an array', '[]'],
    ['an array of an envelope', '[{"payload":{},"signature":"x"}]'],
    ['a string', '"payload"'],
    ['a number', '42'],
    ['null', 'null'],
    ['true', 'true'],
  ])('a body that is %s is refused (BA101)', async (_name, body) => {
    const w = await world()
    await expectRejected(w.server, 'access', body, 'BA101', 400)
    await expectRejected(w.server, 'createAccount', body, 'BA101', 400)
  })

  it('a body of whitespace only is refused: no credentials on a protected route (401 BA404)', async () => {
    const w = await world()
    await expectRejected(w.server, 'access', ' \n', 'BA404', 401)
    await expectRejected(w.server, 'createAccount', ' \n', 'BA101', 400)
  })

  it.each([
    ['a 0xff byte', Buffer.from([0xff])],
    ['an overlong "/" (0xc0 0xaf)', Buffer.from([0xc0, 0xaf])],
    ['an encoded surrogate (0xed 0xa0 0x80)', Buffer.from([0xed, 0xa0, 0x80])],
    ['a truncated sequence (0xe2 0x82)', Buffer.from([0xe2, 0x82])],
  ])('invalid UTF-8 (%s) inside a string of the body is refused (BA101)', async (_n, bad) => {
    const w = await world()
    const body = Buffer.from(access(w, { request: { foo: 'XX' } }))
    const at = body.indexOf('XX')
    const mutated = Buffer.concat([body.subarray(0, at), bad, body.subarray(at + 2)])
    const error = await expectRejected(w.server, 'access', mutated, 'BA101', 400)
    expect(error.message).toContain('UTF-8')
  })

  it('a UTF-8 byte order mark before the body is refused (bytes and text)', async () => {
    const w = await world()
    const body = access(w)
    await expectRejected(
      w.server,
      'access',
      Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(body)]),
      'BA101',
      400
    )
    await expectRejected(w.server, 'access', '\ufeff' + body, 'BA101', 400)
  })

  it('a body over 64 KiB is refused (BA603, 413), counted in bytes not characters', async () => {
    const w = await world()
    // 40,000 characters, 80,000 UTF-8 bytes: within 64 Ki characters, beyond 64 KiB.
    const body = access(w, { request: { foo: 'é'.repeat(40_000) } })
    expect(body.length).toBeLessThan(65536)
    await expectRejected(w.server, 'access', body, 'BA603', 413)
    await expectRejected(w.server, 'access', Buffer.from(body), 'BA603', 413)
    await expectRejected(w.server, 'createAccount', 'x'.repeat(65537), 'BA603', 413)
  })
})

// ------------------------------------------------------------------ timestamps

describe('timestamp edges (window 30 s, clock skew 5 s)', () => {
  it('exactly now − 30 s is accepted', async () => {
    const w = await world()
    await expectOk(w.server, 'access', access(w, { at: w.server.clock.ms - 30_000 }))
  })

  it('now − 30.001 s is stale (BA501)', async () => {
    const w = await world()
    await expectRejected(
      w.server,
      'access',
      access(w, { at: w.server.clock.ms - 30_001 }),
      'BA501',
      422
    )
  })

  it('exactly now + 5 s is accepted', async () => {
    const w = await world()
    await expectOk(w.server, 'access', access(w, { at: w.server.clock.ms + 5_000 }))
  })

  it('now + 5.001 s is in the future (BA502)', async () => {
    const w = await world()
    await expectRejected(
      w.server,
      'access',
      access(w, { at: w.server.clock.ms + 5_001 }),
      'BA502',
      422
    )
  })

  it('more fractional digits are truncated, never rounded into the window', async () => {
    const w = await world()
    const stale = formatTimestamp(w.server.clock.ms - 30_001).replace('Z', '999999Z')
    await expectRejected(w.server, 'access', access(w, { timestamp: stale }), 'BA501', 422)
    const edge = formatTimestamp(w.server.clock.ms - 30_000).replace('Z', '999999Z')
    await expectOk(w.server, 'access', access(w, { timestamp: edge }))
  })

  it.each([
    'NaN',
    'Infinity',
    '-Infinity',
    'null',
    'undefined',
    'Invalid Date',
    '',
    '0',
    '1760894767097',
    '2025-10-19',
    '2025-10-19T17:26:07',
    '2025-10-19 17:26:07Z',
    '2025-10-19T24:00:00Z',
    '2025-10-19T17:26:07.Z',
  ])('a timestamp that is not RFC 3339 (%j) is refused (BA101)', async timestamp => {
    const w = await world()
    const error = await expectRejected(w.server, 'access', access(w, { timestamp }), 'BA101', 400)
    expect(error.message).toContain('payload.access.timestamp')
  })

  it.each([
    ['a number', 1760894767097],
    ['null', null],
    ['an object', { ms: 0 }],
  ])('a timestamp that is %s is refused (BA101)', async (_name, timestamp) => {
    const w = await world()
    const payload = {
      access: { nonce: nonce(), timestamp, token: w.session.token },
      request: { foo: 'bar', bar: 'foo' },
    }
    await expectRejected(w.server, 'access', signed(payload, w.session.key), 'BA101', 400)
  })

  it.each([
    ['year 275760 (beyond Date)', '275760-09-13T00:00:00.001Z', 'BA101', 400],
    ['an expanded year (+275760)', '+275760-09-13T00:00:00.000Z', 'BA101', 400],
    ['a negative year', '-000001-01-01T00:00:00Z', 'BA101', 400],
    ['year 9999', '9999-12-31T23:59:59Z', 'BA502', 422],
    ['year 9999 with a −23:59 offset', '9999-12-31T23:59:59.999-23:59', 'BA502', 422],
    ['year 0000', '0000-01-01T00:00:00Z', 'BA501', 422],
    ['the epoch', '1970-01-01T00:00:00Z', 'BA501', 422],
    ['a leap second (2016)', '2016-12-31T23:59:60Z', 'BA501', 422],
  ] as const)('%s: %s is refused', async (_name, timestamp, code, status) => {
    const w = await world()
    await expectRejected(w.server, 'access', access(w, { timestamp }), code, status)
  })

  it.each([
    ['+24:00', '+24:00'],
    ['+00:60', '+00:60'],
    ['+0000 (no colon)', '+0000'],
    ['Z and an offset', 'Z+01:00'],
  ])('an offset %s is refused (BA101)', async (_name, offset) => {
    const w = await world()
    const timestamp = formatTimestamp(w.server.clock.ms).replace('Z', offset)
    await expectRejected(w.server, 'access', access(w, { timestamp }), 'BA101', 400)
  })

  it.each([
    ['+05:30', 330],
    ['-09:45', -585],
    ['-00:00', 0],
  ])('now written with a %s offset is accepted', async (offset, minutes) => {
    const w = await world()
    const local = formatTimestamp(w.server.clock.ms + minutes * 60_000).replace('Z', offset)
    await expectOk(w.server, 'access', access(w, { timestamp: local }))
  })

  it('an offset that moves a fresh-looking local time out of the window is stale (BA501)', async () => {
    const w = await world()
    // The local digits say "now", but −01:00 makes it an hour later in UTC: future.
    const ahead = formatTimestamp(w.server.clock.ms).replace('Z', '-01:00')
    await expectRejected(w.server, 'access', access(w, { timestamp: ahead }), 'BA502', 422)
    const behind = formatTimestamp(w.server.clock.ms).replace('Z', '+01:00')
    await expectRejected(w.server, 'access', access(w, { timestamp: behind }), 'BA501', 422)
  })
})

// ------------------------------------------------------------------ nonce replay

describe('nonce replay', () => {
  it('the same request twice on one instance: the second is a replay (BA304)', async () => {
    const w = await world()
    const body = access(w)
    await expectOk(w.server, 'access', body)
    await expectRejected(w.server, 'access', body, 'BA304', 401)
  })

  it('a used nonce in a fresh, differently signed request is a replay (BA304)', async () => {
    const w = await world()
    const n = nonce()
    await expectOk(w.server, 'access', access(w, { nonce: n }))
    await expectRejected(
      w.server,
      'access',
      access(w, { nonce: n, at: w.server.clock.ms - 1, request: { other: true } }),
      'BA304',
      401
    )
  })

  it("another session's used nonce is a replay too (nonces are global)", async () => {
    const w = await world()
    const n = nonce()
    await expectOk(w.server, 'access', access(w, { nonce: n }))
    const other = await openSession(w.server, w.account.first)
    await expectRejected(
      w.server,
      'access',
      accessBody(other.token, other.key, { nonce: n, at: w.server.clock.ms }),
      'BA304',
      401
    )
  })

  it('50 concurrent duplicates: exactly one is accepted, one nonce is reserved', async () => {
    const w = await world()
    const n = nonce()
    const before = w.server.store.dump()
    const bodies = Array.from({ length: 50 }, (_, i) =>
      access(w, { nonce: n, at: w.server.clock.ms - i })
    )
    const results = await Promise.all(bodies.map(b => w.server.access(b)))
    const codes = results.map(r => (r.status === 200 ? 'ok' : JSON.parse(r.body).error.code))
    expect(codes.filter(c => c === 'ok')).toHaveLength(1)
    expect(codes.filter(c => c === 'BA304')).toHaveLength(49)
    const after = w.server.store.dump()
    expect(after.accessNonces).toEqual([...before.accessNonces, n].sort())
    expect({ ...after, accessNonces: [] }).toEqual({ ...before, accessNonces: [] })
  })

  it('just after the window: the old request is stale (BA501), its nonce reservation gone', async () => {
    const w = await world()
    const n = nonce()
    const body = access(w, { nonce: n })
    await expectOk(w.server, 'access', body)
    // The reservation lasts window + 2·skew = 40 s; advance beyond it.
    w.server.clock.advance(41)
    expect(w.server.store.dump().accessNonces).not.toContain(n)
    await expectRejected(w.server, 'access', body, 'BA501', 422)
  })

  it('just after the window: a NEW timestamp with the old nonce is accepted (nonces are unique only within the window)', async () => {
    const w = await world()
    const n = nonce()
    await expectOk(w.server, 'access', access(w, { nonce: n }))
    w.server.clock.advance(41)
    // By design: the time lock forgets a nonce once no request carrying it can be fresh.
    await expectOk(w.server, 'access', access(w, { nonce: n }))
    expect(w.server.store.dump().accessNonces).toContain(n)
  })

  it('within the reservation, even at the stale edge, the nonce stays reserved', async () => {
    const w = await world()
    const n = nonce()
    await expectOk(w.server, 'access', access(w, { nonce: n, at: w.server.clock.ms + 5_000 }))
    // The request above stays fresh until now + 35 s; its nonce is held until now + 40 s.
    w.server.clock.advance(35)
    await expectRejected(
      w.server,
      'access',
      access(w, { nonce: n, at: w.server.clock.ms - 30_000 }),
      'BA304',
      401
    )
  })
})

// ------------------------------------------------------------------ revoked and rotated keys

describe('revoked devices and rotated-away keys', () => {
  it('a rotated-away key cannot sign a rotation revealing itself (BA104)', async () => {
    const w = await world()
    const d = w.account.first
    const old = d.current
    await expectOk(w.server, 'rotateDevice', rotateBody(d))
    d.advance()
    // The old key presented as the revealed key: its hash is not the stored commitment.
    const body = signed(
      {
        access: { nonce: nonce() },
        request: { authentication: { ...d.rotating(), publicKey: old.publicKeyText } },
      },
      old
    )
    await expectRejected(w.server, 'rotateDevice', body, 'BA104', 401)
  })

  it('a rotated-away key cannot sign a rotation revealing the committed key (BA201)', async () => {
    const w = await world()
    const d = w.account.first
    const old = d.current
    await expectOk(w.server, 'rotateDevice', rotateBody(d))
    d.advance()
    await expectRejected(w.server, 'rotateDevice', rotateBody(d, {}, old), 'BA201', 401)
  })

  it('a rotated-away key cannot answer a session challenge (BA201)', async () => {
    const w = await world()
    const d = w.account.first
    const old = d.current
    await expectOk(w.server, 'rotateDevice', rotateBody(d))
    d.advance()
    const c = await challenge(w.server, w.account.identity)
    const k = NodeSigningKey.generate()
    await expectRejected(
      w.server,
      'createSession',
      createSessionBody(d, c, k, k, old),
      'BA201',
      401
    )
  })

  it("after unlink, the unlinked device's refresh fails (BA301)", async () => {
    const w = await world()
    const second = await linked(w.server, w.account)
    const session = await openSession(w.server, second)
    await expectOk(w.server, 'unlinkDevice', unlinkBody(w.account.first, second.device))
    w.account.first.advance()
    await expectRejected(w.server, 'refreshSession', refreshBody(session), 'BA301', 401)
  })

  it("after unlink, the unlinked device's unexpired token still works by default (tokens are stateless)", async () => {
    const w = await world()
    const second = await linked(w.server, w.account)
    const session = await openSession(w.server, second)
    await expectOk(w.server, 'unlinkDevice', unlinkBody(w.account.first, second.device))
    await expectOk(
      w.server,
      'access',
      accessBody(session.token, session.key, { at: w.server.clock.ms })
    )
  })

  /** The echo route with the opt-in revocation check, as `server.access` answers without it. */
  async function revocable(w: World, body: string) {
    try {
      const principal = await w.server.auth.verifyAccess(body, {}, { checkRevocation: true })
      return { status: 200, headers: {}, body: await w.server.auth.respond(principal.nonce, {}) }
    } catch (error) {
      expect(error).toBeInstanceOf(BetterAuthError)
      return w.server.auth.errorResult(error)
    }
  }

  it("with verifyAccess(body, context, { checkRevocation: true }) the unlinked device's token is refused (401 BA301)", async () => {
    const w = await world()
    const second = await linked(w.server, w.account)
    const session = await openSession(w.server, second)
    const body = () => accessBody(session.token, session.key, { at: w.server.clock.ms })
    expect((await revocable(w, body())).status).toBe(200)
    await expectOk(w.server, 'unlinkDevice', unlinkBody(w.account.first, second.device))
    // The check is cached for 2 s by default (revocationCacheMs): within it the device still counts
    // as active.
    expect((await revocable(w, body())).status).toBe(200)
    w.server.clock.advance(5)
    const before = w.server.snapshot()
    const refused = await revocable(w, body())
    expect({ status: refused.status, code: errorOf(refused).code }).toEqual({
      status: 401,
      code: 'BA301',
    })
    expect(w.server.snapshot()).toBe(before)
    // Without the check the same token is still served: tokens are stateless by default.
    await expectOk(w.server, 'access', body())
  })

  it('after recovery, the recovered-away device cannot rotate (BA301)', async () => {
    const w = await world()
    const fresh = new TestDevice()
    await expectOk(
      w.server,
      'recoverAccount',
      signed(recoverPayload(w.account, fresh), w.account.recovery)
    )
    await expectRejected(w.server, 'rotateDevice', rotateBody(w.account.first), 'BA301', 401)
  })

  it('after account deletion, its session cannot refresh (BA301)', async () => {
    const w = await world()
    await expectOk(w.server, 'deleteAccount', rotateBody(w.account.first))
    await expectRejected(w.server, 'refreshSession', refreshBody(w.session), 'BA301', 401)
  })
})

// ------------------------------------------------------------------ key confusion

describe('key confusion', () => {
  async function responseSigned(w: World, json: string): Promise<string> {
    const keys = await w.server.auth.keys()
    return tokenOf(await keys.responseKey.sign(Buffer.from(json)), gzipSync(Buffer.from(json)))
  }

  it('a token signed by the response key, naming the response key as its issuer (BA202)', async () => {
    const w = await world()
    const keys = await w.server.auth.keys()
    const { json } = tokenParts(w.session.token)
    const forged = json.replace(keys.accessIdentity, keys.responseIdentity)
    expect(forged).not.toBe(json)
    const token = await responseSigned(w, forged)
    await expectRejected(w.server, 'access', access(w, { token }), 'BA202', 401)
    await expectRejected(
      w.server,
      'refreshSession',
      refreshBody(w.session, { token }),
      'BA202',
      401
    )
  })

  it('a token signed by the response key, naming the access key as its issuer (BA201)', async () => {
    const w = await world()
    const token = await responseSigned(w, tokenParts(w.session.token).json)
    await expectRejected(w.server, 'access', access(w, { token }), 'BA201', 401)
    await expectRejected(
      w.server,
      'refreshSession',
      refreshBody(w.session, { token }),
      'BA201',
      401
    )
  })

  it('a signed server response presented as a request is not a message of that operation (BA101)', async () => {
    const w = await world()
    const reply = await w.server.auth.respond(nonce(), {})
    await expectRejected(w.server, 'rotateDevice', reply, 'BA101', 400)
  })

  it("a session's access key signing a rotation that reveals the device's key (BA201)", async () => {
    const w = await world()
    await expectRejected(
      w.server,
      'rotateDevice',
      rotateBody(w.account.first, {}, w.session.key),
      'BA201',
      401
    )
  })

  it("a session's access key revealed as the device's next key (BA104)", async () => {
    const w = await world()
    const body = signed(
      {
        access: { nonce: nonce() },
        request: {
          authentication: { ...w.account.first.rotating(), publicKey: w.session.key.publicKeyText },
        },
      },
      w.session.key
    )
    await expectRejected(w.server, 'rotateDevice', body, 'BA104', 401)
  })

  it("a session's access key signing a refresh instead of the committed next key (BA201)", async () => {
    const w = await world()
    await expectRejected(
      w.server,
      'refreshSession',
      refreshBody(w.session, { signer: w.session.key }),
      'BA201',
      401
    )
  })

  it("a challenge issued for another identity, answered by this identity's device (BA301)", async () => {
    const w = await world()
    const other = await created(w.server)
    const c = await challenge(w.server, other.identity)
    const k = NodeSigningKey.generate()
    await expectRejected(
      w.server,
      'createSession',
      createSessionBody(w.account.first, c, k, k),
      'BA301',
      401
    )
  })

  it('a link container signed for another identity (BA302)', async () => {
    const w = await world()
    const other = await created(w.server)
    const container = linkContainer(new TestDevice(), other.identity)
    await expectRejected(w.server, 'linkDevice', linkBody(w.account, container), 'BA302', 400)
  })
})
