/** The specification's example messages, Wycheproof ECDSA P-256 and BLAKE3 vectors. */
import {
  Blake3Hasher,
  NodeP256Verifier,
  ThreadpoolP256Verifier,
  blake3Digest,
  decodeToken,
  encodePublicKey,
  encodeSignature,
  parseEnvelope,
  verifySigned,
  type Verifier,
} from '../src'
import { NobleP256Verifier } from '../src/noble'
import spec from './fixtures/spec-examples.json'
import wycheproof from './fixtures/wycheproof-ecdsa-p256-sha256-p1363.json'
import blake3Vectors from './fixtures/blake3-test-vectors.json'

type Message = { payload: Record<string, unknown>; signature?: string }
type Example = { operation: string; kind: string; signedBy: string | null; message: Message }

const examples = spec.messages as unknown as Example[]
const hasher = new Blake3Hasher()
const verifiers: [string, Verifier][] = [
  ['node:crypto', new NodeP256Verifier()],
  ['node:crypto (threadpool)', new ThreadpoolP256Verifier()],
  ['@noble/curves', new NobleP256Verifier()],
]

function at(object: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], object)
}

/** Flips one character in the middle of the first long string value. */
function tamper(text: string): string {
  const m = /"([A-Za-z0-9_-]{20,})"/.exec(text) as RegExpExecArray
  const i = m.index + 10
  return text.slice(0, i) + (text[i] === 'A' ? 'B' : 'A') + text.slice(i + 1)
}

const signed = examples.filter(e => e.signedBy !== null)
const tokens: { where: string; token: string }[] = []
for (const e of examples) {
  const text = JSON.stringify(e.message)
  for (const m of text.matchAll(/"token":"([^"]+)"/g)) {
    if (!tokens.some(t => t.token === m[1])) {
      tokens.push({ where: `${e.operation} ${e.kind}`, token: m[1] as string })
    }
  }
}

function signerKey(example: Example): string {
  const message = example.message
  if (example.signedBy?.startsWith('payload.')) return at(message, example.signedBy) as string
  if (example.operation === 'access') {
    const token = at(message, 'payload.access.token') as string
    return decodeToken(token).publicKey
  }
  // createSession is signed by the device's registered key, which the document does not hold.
  return ''
}

describe('specification examples', () => {
  it('holds 21 signed messages with a named signer and 3 distinct tokens', () => {
    expect(examples).toHaveLength(23)
    expect(signed.filter(e => signerKey(e) !== '')).toHaveLength(21)
    expect(tokens).toHaveLength(3)
  })

  describe.each(verifiers)('signatures verify with %s', (_name, verifier) => {
    it.each(signed.filter(e => signerKey(e) !== '').map(e => [`${e.operation} ${e.kind}`, e]))(
      '%s',
      async (_label, example) => {
        const e = example as Example
        const body = JSON.stringify(e.message)
        const envelope = parseEnvelope(body)
        await expect(verifySigned(verifier, envelope, signerKey(e))).resolves.toBeUndefined()
        // …and a single flipped character in the payload breaks it.
        const text = tamper(envelope.text)
        const tampered = { payload: JSON.parse(text), text, signature: envelope.signature }
        await expect(verifySigned(verifier, tampered, signerKey(e))).rejects.toMatchObject({
          code: 'BA201',
        })
      }
    )

    it.each(tokens.map(t => [t.where, t.token]))('token in %s verifies', async (_w, token) => {
      const decoded = decodeToken(token as string)
      expect(
        await verifier.verify(Buffer.from(decoded.json), decoded.signature, decoded.serverIdentity)
      ).toBe(true)
      const other = decoded.json.replace('"issuedAt":"2', '"issuedAt":"3')
      expect(
        await verifier.verify(Buffer.from(other), decoded.signature, decoded.serverIdentity)
      ).toBe(false)
    })

    it('the link container verifies inside the linkDevice request', async () => {
      const e = examples.find(x => x.operation === 'linkDevice' && x.kind === 'request') as Example
      const body = JSON.stringify(e.message)
      const envelope = parseEnvelope(body)
      const span = envelope.spans.get('payload.request.link.payload') as [number, number]
      const link = at(e.message, 'payload.request.link') as Message
      const key = at(link, 'payload.authentication.publicKey') as string
      expect(
        await verifier.verify(Buffer.from(body.slice(...span)), link.signature as string, key)
      ).toBe(true)
    })
  })

  it('derives the documented device and identity hashes', () => {
    const create = examples.find(e => e.operation === 'createAccount' && e.kind === 'request')
    const a = at(create?.message, 'payload.request.authentication') as Record<string, string>
    expect(hasher.sum(`${a.publicKey}${a.rotationHash}`)).toBe(a.device)
    expect(hasher.sum(`${a.publicKey}${a.rotationHash}${a.recoveryHash}`)).toBe(a.identity)

    const recover = examples.find(e => e.operation === 'recoverAccount' && e.kind === 'request')
    const r = at(recover?.message, 'payload.request.authentication') as Record<string, string>
    expect(hasher.sum(`${r.publicKey}${r.rotationHash}`)).toBe(r.device)

    const link = examples.find(e => e.operation === 'linkDevice' && e.kind === 'linkContainer')
    const l = at(link?.message, 'payload.authentication') as Record<string, string>
    expect(hasher.sum(`${l.publicKey}${l.rotationHash}`)).toBe(l.device)
  })

  it('rotation hashes commit to the next key across the rotate example', () => {
    // The rotateDevice request reveals the key whose hash createAccount committed to.
    const create = examples.find(e => e.operation === 'createAccount' && e.kind === 'request')
    const rotate = examples.find(e => e.operation === 'rotateDevice' && e.kind === 'request')
    const c = at(create?.message, 'payload.request.authentication') as Record<string, string>
    const r = at(rotate?.message, 'payload.request.authentication') as Record<string, string>
    expect(r.device).toBe(c.device)
    expect(hasher.sum(r.publicKey as string)).toBe(c.rotationHash)
  })

  it('the refresh request key matches the rotation hash of its token', () => {
    const refresh = examples.find(e => e.operation === 'refreshSession' && e.kind === 'request')
    const access = at(refresh?.message, 'payload.request.access') as Record<string, string>
    const token = decodeToken(access.token as string)
    expect(hasher.sum(access.publicKey as string)).toBe(token.rotationHash)
  })

  it('tokens decode to the documented fields', () => {
    // The documented token is the one the refresh response issues.
    const refresh = examples.find(e => e.operation === 'refreshSession' && e.kind === 'response')
    const token = decodeToken(at(refresh?.message, 'payload.response.access.token') as string)
    const { signature, json, issuedAtMs, expiryMs, refreshExpiryMs, ...claims } = token
    expect(claims).toEqual(spec.decodedTokenExample)
    expect(Object.keys(JSON.parse(json))).toEqual([
      'serverIdentity',
      'device',
      'identity',
      'publicKey',
      'rotationHash',
      'issuedAt',
      'expiry',
      'refreshExpiry',
      'attributes',
    ])
    expect(signature).toMatch(/^0I/)
    expect(expiryMs - issuedAtMs).toBe(15 * 60 * 1000)
    expect(refreshExpiryMs - Date.parse('2025-10-19T17:26:07.092Z')).toBe(12 * 3600 * 1000)
  })

  it('the access example carries a nanosecond timestamp that parses', () => {
    const access = examples.find(e => e.operation === 'access' && e.kind === 'request')
    const text = at(access?.message, 'payload.access.timestamp') as string
    expect(text).toBe('2025-10-10T07:00:29.423000000Z')
  })
})

interface WycheproofTest {
  tcId: number
  msg: string
  sig: string
  result: 'valid' | 'invalid' | 'acceptable'
}
interface WycheproofGroup {
  publicKey: { uncompressed: string }
  tests: WycheproofTest[]
}

const groups = (wycheproof as unknown as { testGroups: WycheproofGroup[] }).testGroups
const cases = groups.flatMap(group => {
  const point = Buffer.from(group.publicKey.uncompressed, 'hex')
  const compressed = Buffer.concat([
    Buffer.from([((point[64] as number) & 1) === 0 ? 2 : 3]),
    point.subarray(1, 33),
  ])
  const key = encodePublicKey(compressed)
  return group.tests.map(t => ({ key, ...t }))
})

describe.each(verifiers)('Wycheproof ECDSA P-256 (P1363) with %s', (_name, verifier) => {
  it('has all 262 cases', () => {
    expect(cases).toHaveLength(262)
    expect(cases.filter(c => c.result === 'valid')).toHaveLength(173)
  })

  it('agrees with every expected result', async () => {
    const disagreements: number[] = []
    for (const c of cases) {
      const sig = Buffer.from(c.sig, 'hex')
      let ok = false
      if (sig.length === 64) {
        ok = await verifier.verify(Buffer.from(c.msg, 'hex'), encodeSignature(sig), c.key)
      }
      if (ok !== (c.result === 'valid')) disagreements.push(c.tcId)
    }
    expect(disagreements).toEqual([])
  })
})

describe('BLAKE3 vectors', () => {
  const vectors = blake3Vectors as unknown as { cases: { input_len: number; hash: string }[] }
  it.each(vectors.cases.map(c => [c.input_len, c.hash]))(
    'input of %i bytes',
    (length, expected) => {
      const input = new Uint8Array(length as number)
      for (let i = 0; i < input.length; i++) input[i] = i % 251
      expect(Buffer.from(blake3Digest(input)).toString('hex')).toBe(
        (expected as string).slice(0, 64)
      )
    }
  )

  it('hashes strings as UTF-8, qualified with E', () => {
    const digest = Buffer.from(blake3Digest(Buffer.from('héllo', 'utf8')))
    const text = hasher.sum('héllo')
    expect(text).toHaveLength(44)
    expect(text[0]).toBe('E')
    expect(Buffer.from(`A${text.slice(1)}`, 'base64url').subarray(1)).toEqual(digest)
  })
})
