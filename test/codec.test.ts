/** Codecs: strict base64url, qualified forms, public key points, timestamps, JSON, gzip, tokens. */
import { randomBytes, type KeyObject } from 'node:crypto'
import { gzipSync } from 'node:zlib'
import {
  NodeP256Verifier,
  ThreadpoolP256Verifier,
  NodeSigningKey,
  RandomNoncer,
  decodeBase64Url,
  decodeHash,
  decodeNonce,
  decodePublicKey,
  decodeSignature,
  decodeToken,
  encodeBase64Url,
  encodeHash,
  encodeNonce,
  encodePublicKey,
  encodeSignature,
  encodeToken,
  formatTimestamp,
  parseStrictJson,
  parseTimestamp,
  serializeClaims,
} from '../src'
import { NobleP256Verifier, NobleSigningKey } from '../src/noble'
import { crc32, gunzipBounded, gzip } from '../src/codec/gzip'
import { hash } from './helpers'
import fc from 'fast-check'
import {
  NONCE_TEXT,
  PUBLIC_KEY_TEXT,
  unqualifyNonce,
  unqualifyPublicKey,
} from '../src/codec/qualified'

describe('base64url', () => {
  it('round-trips and refuses what is not canonical', () => {
    const bytes = Uint8Array.from([0xfb, 0xff, 0x01])
    expect(encodeBase64Url(bytes)).toBe('-_8B')
    expect(decodeBase64Url('-_8B')).toEqual(Buffer.from(bytes))
    expect(decodeBase64Url('+/8B')).toBeUndefined()
    expect(decodeBase64Url('-_8B=')).toBeUndefined()
    expect(decodeBase64Url('-_8 B')).toBeUndefined()
    expect(decodeBase64Url('A')).toBeUndefined()
    // 'AB' has non-zero unused trailing bits; 'AA' is the canonical form of the same byte.
    expect(decodeBase64Url('AA')).toEqual(Buffer.from([0]))
    expect(decodeBase64Url('AB')).toBeUndefined()
  })
})

describe('qualified forms', () => {
  const digest = new Uint8Array(32).fill(7)

  it('NONCE_TEXT and PUBLIC_KEY_TEXT accept exactly what unqualifyNonce and unqualifyPublicKey do', () => {
    const b64url = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
    const valid = fc.constantFrom(...b64url.split(''))
    const any = fc.oneof(valid, fc.constantFrom('+', '/', '=', '.', '\n', 'é'))
    // A prefix, then characters to a length near the form's, mostly of the right alphabet.
    const text = (prefix: string, length: number) =>
      fc
        .tuple(
          fc.array(fc.oneof({ weight: 20, arbitrary: valid }, { weight: 1, arbitrary: any }), {
            minLength: length - prefix.length,
            maxLength: length - prefix.length,
          }),
          fc.integer({ min: -1, max: 1 })
        )
        .map(([rest, delta]) => {
          const t = prefix + rest.join('')
          return delta < 0 ? t.slice(0, -1) : delta > 0 && rest.length % 5 === 0 ? t + 'A' : t
        })
    fc.assert(
      fc.property(
        fc.oneof(text('0A', 24), text('0A', 24), text('1AAI', 48), text('1AAIA', 48), text('', 24)),
        t => {
          expect(NONCE_TEXT.test(t)).toBe(unqualifyNonce(t) !== undefined)
          expect(PUBLIC_KEY_TEXT.test(t)).toBe(unqualifyPublicKey(t) !== undefined)
        }
      ),
      { numRuns: 20_000, seed: 20261202 }
    )
    // Real ones, and their edges.
    for (let i = 0; i < 200; i++) {
      expect(NONCE_TEXT.test(encodeNonce(randomBytes(16)))).toBe(true)
      const point = randomBytes(33)
      point[0] = 2 + (i % 2)
      expect(PUBLIC_KEY_TEXT.test(encodePublicKey(point))).toBe(true)
      point[0] = i % 2 === 0 ? 4 : 0
      expect(PUBLIC_KEY_TEXT.test(encodePublicKey(point))).toBe(false)
    }
  })

  it('hash: E prefix, 44 chars, zero pad byte', () => {
    const text = encodeHash(digest)
    expect(text).toMatch(/^E[A-Za-z0-9_-]{43}$/)
    expect(decodeHash(text)).toEqual(Buffer.from(digest))
    expect(decodeHash(`D${text.slice(1)}`)).toBeUndefined()
    expect(decodeHash(text.slice(0, 43))).toBeUndefined()
    // The second character carries two bits of the zero pad byte.
    expect(decodeHash(`E${'w'}${text.slice(2)}`)).toBeUndefined()
    expect(decodeHash(`${text.slice(0, 43)}=`)).toBeUndefined()
    expect(decodeHash(42)).toBeUndefined()
  })

  it('signature: 0I prefix, 88 chars, zero pad', () => {
    const rs = new Uint8Array(64).fill(9)
    const text = encodeSignature(rs)
    expect(text).toHaveLength(88)
    expect(text.startsWith('0I')).toBe(true)
    expect(decodeSignature(text)).toEqual(Buffer.from(rs))
    expect(decodeSignature(`0J${text.slice(2)}`)).toBeUndefined()
    expect(decodeSignature(`0I_${text.slice(3)}`)).toBeUndefined()
  })

  it('nonce: 0A prefix, 24 chars', () => {
    const bytes = new Uint8Array(16).fill(1)
    const text = encodeNonce(bytes)
    expect(text).toHaveLength(24)
    expect(decodeNonce(text)).toEqual(Buffer.from(bytes))
    expect(decodeNonce('0A0123456789')).toBeUndefined()
  })

  it('public key: 1AAI prefix, 48 chars, compressed point prefix', () => {
    const key = NodeSigningKey.generate()
    expect(key.publicKeyText).toMatch(/^1AAI[A-Za-z0-9_-]{44}$/)
    const bytes = decodePublicKey(key.publicKeyText) as Buffer
    expect([2, 3]).toContain(bytes[0])
    expect(encodePublicKey(bytes)).toBe(key.publicKeyText)
    const uncompressedPrefix = Buffer.from(bytes)
    uncompressedPrefix[0] = 4
    expect(decodePublicKey(encodePublicKey(uncompressedPrefix))).toBeUndefined()
    expect(decodePublicKey(`1AAJ${key.publicKeyText.slice(4)}`)).toBeUndefined()
  })
})

describe.each([
  ['node:crypto', new NodeP256Verifier()],
  ['node:crypto (threadpool)', new ThreadpoolP256Verifier()],
  ['@noble/curves', new NobleP256Verifier()],
])('public key validation with %s', (_name, verifier) => {
  const point = (prefix: number, x: Buffer) =>
    encodePublicKey(Buffer.concat([Buffer.from([prefix]), x]))
  const p = Buffer.from('ffffffff00000001000000000000000000000000ffffffffffffffffffffffff', 'hex')

  it('accepts real keys', () => {
    expect(verifier.isValidPublicKey(NodeSigningKey.generate().publicKeyText)).toBe(true)
  })

  it('refuses x with no square root, x ≥ p, and malformed texts', () => {
    const one = Buffer.alloc(32)
    one[31] = 1
    expect(verifier.isValidPublicKey(point(2, one))).toBe(false)
    expect(verifier.isValidPublicKey(point(2, p))).toBe(false)
    expect(verifier.isValidPublicKey(point(3, Buffer.alloc(32, 0xff)))).toBe(false)
    expect(verifier.isValidPublicKey('1AAI')).toBe(false)
    expect(verifier.isValidPublicKey(`1AAIAA${'A'.repeat(42)}`)).toBe(false)
  })

  it('agrees with an independent implementation on random x coordinates', () => {
    const reference = new NobleP256Verifier()
    let valid = 0
    for (let i = 0; i < 200; i++) {
      const text = point(2 + (i % 2), randomBytes(32))
      const expected = reference.isValidPublicKey(text)
      expect([text, verifier.isValidPublicKey(text)]).toEqual([text, expected])
      if (expected) valid++
    }
    // About half of all x have a point; both outcomes were exercised.
    expect(valid).toBeGreaterThan(50)
    expect(valid).toBeLessThan(150)
  })

  it('verifies with a key it first only checked', async () => {
    const key = NodeSigningKey.generate()
    const message = Buffer.from('checked, then used')
    expect(verifier.isValidPublicKey(key.publicKeyText)).toBe(true)
    expect(await verifier.verify(message, key.signSync(message), key.publicKeyText)).toBe(true)
    expect(
      await verifier.verify(message, key.signSync(Buffer.from('other')), key.publicKeyText)
    ).toBe(false)
  })

  it('never throws on malformed signatures and refuses them', async () => {
    const key = NodeSigningKey.generate()
    const message = Buffer.from('hello')
    const good = key.signSync(message)
    expect(await verifier.verify(message, good, key.publicKeyText)).toBe(true)
    const zero = encodeSignature(new Uint8Array(64))
    const n = Buffer.from('ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551', 'hex')
    const rIsN = encodeSignature(Buffer.concat([n, (decodeSignature(good) as Buffer).subarray(32)]))
    for (const bad of [zero, rIsN, 'garbage', '', good.slice(0, 80)]) {
      expect(await verifier.verify(message, bad, key.publicKeyText)).toBe(false)
    }
  })

  it('accepts the high-S twin of a signature (both are valid ECDSA)', async () => {
    const key = NodeSigningKey.generate()
    const message = Buffer.from('malleable')
    const rs = decodeSignature(key.signSync(message)) as Buffer
    const n = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551')
    const s = BigInt(`0x${rs.subarray(32).toString('hex')}`)
    const twin = Buffer.concat([
      rs.subarray(0, 32),
      Buffer.from((n - s).toString(16).padStart(64, '0'), 'hex'),
    ])
    expect(await verifier.verify(message, encodeSignature(twin), key.publicKeyText)).toBe(true)
  })
})

describe('nonces', () => {
  it('are valid 128-bit nonces, distinct across refills of the random pool', () => {
    const noncer = new RandomNoncer()
    const seen = new Set<string>()
    // Three refills of the 4 KiB pool (256 nonces each) and a part of a fourth.
    for (let i = 0; i < 900; i++) {
      const nonce = noncer.generate128()
      expect(decodeNonce(nonce)).toHaveLength(16)
      seen.add(nonce)
    }
    expect(seen.size).toBe(900)
  })

  it('draw every byte from the CSPRNG once (no slice is handed out twice)', () => {
    const calls: number[] = []
    const real = globalThis.crypto.getRandomValues.bind(globalThis.crypto)
    const spy = jest
      .spyOn(globalThis.crypto, 'getRandomValues')
      .mockImplementation(<T extends ArrayBufferView | null>(array: T): T => {
        calls.push((array as unknown as Uint8Array).length)
        return real(array as unknown as Uint8Array) as unknown as T
      })
    try {
      const noncer = new RandomNoncer()
      for (let i = 0; i < 513; i++) noncer.generate128()
      expect(calls).toEqual([4096, 4096, 4096])
    } finally {
      spy.mockRestore()
    }
  })
})

describe('noble signing key', () => {
  it('produces signatures node:crypto verifies, and the reverse', async () => {
    const noble = NobleSigningKey.generate()
    const node = NodeSigningKey.generate()
    const message = Buffer.from('interop')
    expect(
      new NodeP256Verifier().verify(message, await noble.sign(message), noble.publicKeyText)
    ).toBe(true)
    expect(
      new NobleP256Verifier().verify(message, node.signSync(message), node.publicKeyText)
    ).toBe(true)
  })
})

describe('the parsed-key cache of NodeP256Verifier', () => {
  it('keeps at most cacheSize keys, the least recently used out first', () => {
    const verifier = new NodeP256Verifier({ cacheSize: 2 })
    const [a, b, c] = [1, 2, 3].map(() => NodeSigningKey.generate().publicKeyText) as [
      string,
      string,
      string,
    ]
    const ka = verifier.keyObject(a)
    const kb = verifier.keyObject(b)
    expect(verifier.keyObject(a)).toBe(ka) // cached, and now the most recently used
    verifier.keyObject(c) // evicts b
    expect(verifier.keyObject(a)).toBe(ka)
    const again = verifier.keyObject(b)
    expect(again).not.toBe(kb) // parsed anew
    expect(again?.equals(kb as KeyObject)).toBe(true)
  })

  it('remembers texts that are not keys, and still refuses them', () => {
    const verifier = new NodeP256Verifier({ cacheSize: 4 })
    const one = encodePublicKey(Uint8Array.from([2, ...new Array<number>(31).fill(0), 1]))
    for (let i = 0; i < 3; i++) {
      expect(verifier.isValidPublicKey(one)).toBe(false)
      expect(verifier.keyObject(one)).toBeUndefined()
      expect(verifier.verify(Buffer.from('m'), `0I${'A'.repeat(86)}`, one)).toBe(false)
    }
  })
})

describe('timestamps', () => {
  it('parses RFC 3339 with any fraction and offsets', () => {
    const ms = Date.parse('2025-10-19T17:26:07.097Z')
    expect(parseTimestamp('2025-10-19T17:26:07.097Z')).toBe(ms)
    expect(parseTimestamp('2025-10-19T17:26:07.097999999Z')).toBe(ms)
    expect(parseTimestamp('2025-10-19T17:26:07.9Z')).toBe(ms - 97 + 900)
    expect(parseTimestamp('2025-10-19T17:26:07Z')).toBe(ms - 97)
    expect(parseTimestamp('2025-10-19t17:26:07.097z')).toBe(ms)
    expect(parseTimestamp('2025-10-19T19:26:07.097+02:00')).toBe(ms)
    expect(parseTimestamp('2025-10-19T15:26:07.097-02:00')).toBe(ms)
    expect(parseTimestamp('2016-12-31T23:59:60Z')).toBe(Date.parse('2016-12-31T23:59:59.999Z'))
    expect(parseTimestamp('2024-02-29T00:00:00Z')).toBe(Date.parse('2024-02-29T00:00:00Z'))
    expect(parseTimestamp('0050-01-01T00:00:00Z')).toBe(Date.parse('0050-01-01T00:00:00Z'))
  })

  it('refuses what is not RFC 3339', () => {
    for (const text of [
      'not-a-timestamp',
      '',
      '2025-10-19',
      '2025-10-19 17:26:07Z',
      '2025-10-19T17:26:07',
      '2025-13-19T17:26:07Z',
      '2025-02-29T00:00:00Z',
      '2025-10-32T00:00:00Z',
      '2025-10-19T24:00:00Z',
      '2025-10-19T17:60:00Z',
      '2025-10-19T17:26:61Z',
      '2025-10-19T17:26:07.Z',
      '2025-10-19T17:26:07.097+2:00',
      '+02025-10-19T17:26:07Z',
      '1760894767097',
      `2025-10-19T17:26:07.${'1'.repeat(100)}Z`,
    ]) {
      expect([text, parseTimestamp(text)]).toEqual([text, NaN])
    }
    expect(parseTimestamp(1760894767097)).toBeNaN()
  })

  it('formats UTC with millisecond precision', () => {
    expect(formatTimestamp(Date.UTC(2025, 9, 19, 17, 26, 7, 97))).toBe('2025-10-19T17:26:07.097Z')
  })
})

describe('strict JSON', () => {
  it('parses like JSON.parse on valid input and records payload spans', () => {
    const text = '{"payload":{"a":[1,2.5e3,-1.5,true,false,null],"b":"\\u00e9\\n"},"signature":"x"}'
    const { value, payloadSpans } = parseStrictJson(text)
    expect(value).toEqual(JSON.parse(text))
    const [start, end] = payloadSpans.get('payload') as [number, number]
    expect(text.slice(start, end)).toBe('{"a":[1,2.5e3,-1.5,true,false,null],"b":"\\u00e9\\n"}')
  })

  it('reads only numbers that re-serialize as they verify: -0 as 0, no Infinity', () => {
    expect(Object.is(parseStrictJson('[-0]').value, 0)).toBe(false)
    expect(Object.is((parseStrictJson('[-0]').value as number[])[0], 0)).toBe(true)
    expect(() => parseStrictJson('{"amount":1e400}')).toThrow(/out of range/)
    expect(() => parseStrictJson('[-1e309]')).toThrow(/out of range/)
    expect(parseStrictJson('[1e308]').value).toEqual([1e308])
  })

  it('records nested payload spans by path', () => {
    const text = '{"payload":{"request":{"link":{"payload":{"x":1},"signature":"s"}}}}'
    const spans = parseStrictJson(text).payloadSpans
    const [s, e] = spans.get('payload.request.link.payload') as [number, number]
    expect(text.slice(s, e)).toBe('{"x":1}')
  })

  it.each([
    ['duplicate keys', '{"a":1,"a":2}'],
    ['duplicate keys spelled differently', '{"a":1,"\\u0061":2}'],
    ['a __proto__ key', '{"__proto__":{"polluted":true}}'],
    ['an escaped __proto__ key', '{"\\u005f_proto__":1}'],
    ['trailing commas', '{"a":1,}'],
    ['single quotes', "{'a':1}"],
    ['comments', '{"a":1 /* x */}'],
    ['leading zeros', '{"a":01}'],
    ['NaN', '{"a":NaN}'],
    ['control characters in strings', '{"a":"\u0001"}'],
    ['bad escapes', '{"a":"\\x41"}'],
    ['unterminated strings', '{"a":"abc'],
    ['trailing data', '{"a":1} {}'],
    ['a BOM', '\ufeff{"a":1}'],
    ['nesting deeper than the limit', `${'['.repeat(40)}${']'.repeat(40)}`],
  ])('refuses %s', (_name, text) => {
    expect(() => parseStrictJson(text)).toThrow(expect.objectContaining({ code: 'BA101' }))
  })

  it('allows the configured depth and no more', () => {
    const nested = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`
    expect(() => parseStrictJson(nested(32))).not.toThrow()
    expect(() => parseStrictJson(nested(33))).toThrow()
    expect(() => parseStrictJson(nested(5), { maxDepth: 4 })).toThrow()
    expect(Object.prototype).not.toHaveProperty('polluted')
  })
})

describe('gzip', () => {
  it('computes CRC-32', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926)
  })

  it('refuses a decompression bomb without inflating it', () => {
    const bomb = gzipSync(Buffer.alloc(16 * 1024 * 1024), { level: 9 })
    expect(() => gunzipBounded(bomb, 65536)).toThrow(/beyond 65536/)
  })

  it('refuses multiple members, trailing data and corruption', () => {
    const one = gzipSync('{"a":1}')
    expect(gunzipBounded(one, 100).toString()).toBe('{"a":1}')
    expect(() => gunzipBounded(Buffer.concat([one, gzipSync('{}')]), 100)).toThrow(
      /after the gzip member/
    )
    expect(() => gunzipBounded(Buffer.concat([one, Buffer.from([0])]), 100)).toThrow()
    const badCrc = Buffer.from(one)
    badCrc.writeUInt8((badCrc.readUInt8(badCrc.length - 8) ^ 1) & 0xff, badCrc.length - 8)
    expect(() => gunzipBounded(badCrc, 100)).toThrow(/CRC/)
    expect(() => gunzipBounded(Buffer.from('not gzip at all, really'), 100)).toThrow(/not gzip/)
  })

  it('compresses to the bytes of zlib defaults, whatever the output size (1 KB chunks)', () => {
    // Random hex text (about half its size once compressed): below, at and well over one chunk.
    for (const length of [0, 40, 437, 1500, 4000, 60_000]) {
      const data = Buffer.from(
        randomBytes(Math.ceil(length / 2))
          .toString('hex')
          .slice(0, length)
      )
      for (const level of [1, 6, 9]) {
        const compressed = gzip(data, level)
        expect(compressed.equals(gzipSync(data, { level }))).toBe(true)
        expect(gunzipBounded(compressed, 65536).equals(data)).toBe(true)
      }
    }
  })
})

describe('tokens', () => {
  const key = NodeSigningKey.generate()
  const claims = {
    serverIdentity: key.publicKeyText,
    device: hash('d'),
    identity: hash('i'),
    publicKey: NodeSigningKey.generate().publicKeyText,
    rotationHash: hash('r'),
    issuedAt: '2025-10-19T17:26:07.097Z',
    expiry: '2025-10-19T17:41:07.097Z',
    refreshExpiry: '2025-10-20T05:26:07.097Z',
    attributes: { roles: ['a'] },
  }

  it('round-trips in the protocol key order', () => {
    const json = serializeClaims(claims)
    const token = encodeToken(key.signSync(Buffer.from(json)), json)
    const decoded = decodeToken(token)
    expect(decoded.json).toBe(json)
    expect(decoded).toMatchObject(claims)
    expect(decoded.expiryMs - decoded.issuedAtMs).toBe(15 * 60 * 1000)
  })

  it('caps the encoded length before decoding', () => {
    expect(() => decodeToken(`0I${'A'.repeat(20000)}`)).toThrow(/longer than 16384/)
  })

  it('refuses a gzip bomb quickly', () => {
    const bomb = encodeBase64Url(gzipSync(Buffer.alloc(4 * 1024 * 1024, 0x20), { level: 9 }))
    const sig = encodeSignature(new Uint8Array(64))
    expect(() => decodeToken(sig + bomb, { maxTokenLength: 1 << 20 })).toThrow(/beyond/)
  })

  it('refuses non-canonical base64url, junk, missing fields and bad timestamps', () => {
    const json = serializeClaims(claims)
    const token = encodeToken(key.signSync(Buffer.from(json)), json)
    expect(() => decodeToken(`${token}=`)).toThrow(expect.objectContaining({ code: 'BA402' }))
    expect(() => decodeToken(token.replace(/-/g, '+'))).toThrow(
      expect.objectContaining({ code: 'BA402' })
    )
    expect(() => decodeToken(token.slice(0, 88))).toThrow(/too short/)
    expect(() => decodeToken(`XX${token.slice(2)}`)).toThrow(/signature/)
    const sign = (j: string) => encodeToken(key.signSync(Buffer.from(j)), j)
    const { attributes: _a, ...withoutAttributes } = claims
    expect(() => decodeToken(sign(JSON.stringify(withoutAttributes)))).toThrow(/attributes/)
    expect(() => decodeToken(sign(JSON.stringify({ ...claims, expiry: 'soon' })))).toThrow(/expiry/)
    expect(() => decodeToken(sign('[1,2]'))).toThrow(/not a JSON object/)
    expect(() => decodeToken(sign('{"a":1,"a":2}'))).toThrow(/duplicate/)
  })
})
