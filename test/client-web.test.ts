/**
 * The client on web APIs only, run in Node: Buffer-free codecs agree with the server's, WebCrypto
 * keys interoperate with the server's verifier, the whole flow, recovery key text, fetch binding.
 */
import { ECDH, createPrivateKey, createPublicKey } from 'node:crypto'
import fc from 'fast-check'
import {
  DEFAULT_PATHS,
  NodeP256Verifier,
  NodeSigningKey,
  decodeBase64Url,
  decodeHash,
  decodeNonce,
  decodePublicKey,
  decodeSignature,
  encodeBase64Url,
  encodeHash,
  encodeNonce,
  encodePublicKey,
  encodeSignature,
  parseEnvelope,
  verifySigned,
} from '../src'
import { fromBase64Url, toBase64Url } from '../src/codec/bytes'
import {
  qualifyHash,
  qualifyNonce,
  qualifyPublicKey,
  qualifySignature,
  unqualifyHash,
  unqualifyNonce,
  unqualifyPublicKey,
  unqualifySignature,
} from '../src/codec/qualified'
import {
  BetterAuthClient,
  CLIENT_DEFAULT_PATHS,
  FetchNetwork,
  WebCryptoSigningKey,
  WebCryptoVerifier,
  Blake3Hasher,
  decompressPoint,
  exportRecoveryKey,
  generateRecoveryKey,
  importRecoveryKey,
  readTokenClaims,
} from '../src/client'
import spec from './fixtures/spec-examples.json'
import { InProcessNetwork, hash, makeServer } from './helpers'

const bytes = (max = 80) => fc.uint8Array({ minLength: 0, maxLength: max })

describe('Buffer-free codecs agree with the server codecs', () => {
  it('base64url: same text, same strict decoding', () => {
    fc.assert(
      fc.property(bytes(), data => {
        const text = toBase64Url(data)
        expect(text).toBe(encodeBase64Url(data))
        expect(fromBase64Url(text)).toEqual(new Uint8Array(data))
      })
    )
    fc.assert(
      fc.property(fc.string({ maxLength: 12, unit: fc.constantFrom(...'AQgw_-=+/ Zz09é') }), t => {
        const mine = fromBase64Url(t)
        const server = decodeBase64Url(t)
        expect(mine === undefined).toBe(server === undefined)
        if (mine !== undefined) expect(Array.from(mine)).toEqual(Array.from(server as Buffer))
      })
    )
  })

  it('qualified forms: same text and same decoding, including refusals', () => {
    const pairs = [
      [qualifyHash, unqualifyHash, encodeHash, decodeHash, 32],
      [qualifyNonce, unqualifyNonce, encodeNonce, decodeNonce, 16],
      [qualifySignature, unqualifySignature, encodeSignature, decodeSignature, 64],
      [qualifyPublicKey, unqualifyPublicKey, encodePublicKey, decodePublicKey, 33],
    ] as const
    for (const [encode, decode, serverEncode, serverDecode, size] of pairs) {
      fc.assert(
        fc.property(fc.uint8Array({ minLength: size, maxLength: size }), fc.nat(), (raw, at) => {
          if (size === 33) raw[0] = 2 + ((raw[0] as number) % 2)
          const text = encode(raw)
          expect(text).toBe(serverEncode(raw))
          expect(Array.from(decode(text) as Uint8Array)).toEqual(Array.from(raw))
          const i = at % text.length
          const altered = text.slice(0, i) + (text[i] === 'A' ? '_' : 'A') + text.slice(i + 1)
          expect(decode(altered) === undefined).toBe(serverDecode(altered) === undefined)
        }),
        { numRuns: 200 }
      )
    }
  })

  it('decompresses P-256 points as OpenSSL does, and refuses x off the curve', () => {
    for (let i = 0; i < 40; i++) {
      const ecdh = ECDH.convertKey(
        createPublicKey(NodeSigningKey.generate().privateKey)
          .export({ format: 'der', type: 'spki' })
          .subarray(-65),
        'prime256v1',
        undefined,
        undefined,
        'compressed'
      ) as Buffer
      const point = decompressPoint(ecdh)
      expect(Buffer.from(point as Uint8Array)).toEqual(
        ECDH.convertKey(ecdh, 'prime256v1', undefined, undefined, 'uncompressed')
      )
    }
    let refused = 0
    for (let x = 1; x < 40; x++) {
      const compressed = new Uint8Array(33)
      compressed[0] = 2
      compressed[32] = x
      let onCurve = true
      try {
        ECDH.convertKey(compressed, 'prime256v1')
      } catch {
        onCurve = false
      }
      expect(decompressPoint(compressed) !== undefined).toBe(onCurve)
      if (!onCurve) refused++
    }
    expect(refused).toBeGreaterThan(0)
    const p = new Uint8Array(33).fill(0xff)
    p[0] = 3
    expect(decompressPoint(p)).toBeUndefined()
  })

  it('the client default paths are the server defaults', () => {
    expect(CLIENT_DEFAULT_PATHS).toEqual(DEFAULT_PATHS)
  })
})

describe('WebCrypto keys', () => {
  const message = new TextEncoder().encode('{"access":{"nonce":"x"}}')

  it('are generated non-extractable, with a compressed 1AAI… key and 0I… signatures', async () => {
    const key = await WebCryptoSigningKey.generate()
    expect(key.extractable).toBe(false)
    expect(key.privateKey.extractable).toBe(false)
    expect(key.publicKeyText).toMatch(/^1AAI[A-Za-z0-9_-]{44}$/)
    await expect(key.exportPkcs8()).rejects.toThrow(/not extractable/)
    const signature = await key.sign(message)
    expect(signature).toMatch(/^0I[A-Za-z0-9_-]{86}$/)
  })

  it("sign what the server's verifier accepts, and verify what node:crypto signs", async () => {
    const server = new NodeP256Verifier()
    const web = new WebCryptoVerifier()
    for (let i = 0; i < 20; i++) {
      const key = await WebCryptoSigningKey.generate()
      const signature = await key.sign(message)
      expect(server.verify(message, signature, key.publicKeyText)).toBe(true)
      expect(await web.verify(message, signature, key.publicKeyText)).toBe(true)
      expect(server.verify(new Uint8Array(3), signature, key.publicKeyText)).toBe(false)
      const node = NodeSigningKey.generate()
      expect(await web.verify(message, node.signSync(message), node.publicKeyText)).toBe(true)
      expect(await web.verify(message, node.signSync(message), key.publicKeyText)).toBe(false)
    }
    expect(web.isValidPublicKey('1AAI' + 'A'.repeat(44))).toBe(false)
    expect(await web.verify(message, 'nonsense', 'nonsense')).toBe(false)
  })

  it('the WebCrypto verifier accepts every signed specification example', async () => {
    const verifier = new WebCryptoVerifier()
    const examples = spec.messages as unknown as {
      signedBy: string | null
      message: { payload: Record<string, unknown> }
    }[]
    let checked = 0
    for (const e of examples) {
      if (e.signedBy === null || !e.signedBy.startsWith('payload.')) continue
      const key = e.signedBy
        .split('.')
        .reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], e.message) as string
      await verifySigned(verifier, parseEnvelope(JSON.stringify(e.message)), key)
      checked++
    }
    expect(checked).toBeGreaterThan(10)
  })

  it('a recovery key exports as documented text and imports back, also into node:crypto', async () => {
    const { key, text, hash: recoveryHash } = await generateRecoveryKey()
    expect(text).toMatch(/^bap-recovery-1:[A-Za-z0-9_-]+$/)
    expect(recoveryHash).toBe(new Blake3Hasher().sum(key.publicKeyText))
    const wrapped = text.replace(/(.{40})/g, '$1\n  ')
    const back = await importRecoveryKey(wrapped)
    expect(back.publicKeyText).toBe(key.publicKeyText)
    expect(back.extractable).toBe(false)
    const der = Buffer.from(text.slice('bap-recovery-1:'.length), 'base64url')
    const node = new NodeSigningKey(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }))
    expect(node.publicKeyText).toBe(key.publicKeyText)
    expect(await exportRecoveryKey(key)).toBe(text)
    await expect(importRecoveryKey('bap-recovery-1:AAAA')).rejects.toThrow(/not a recovery key/)
    await expect(importRecoveryKey('hello')).rejects.toThrow(/not a recovery key/)
  })
})

describe('the client on WebCrypto keys against the server', () => {
  it('runs every operation, recovery by exported key text included', async () => {
    const server = makeServer()
    const network = new InProcessNetwork(server)
    const make = () => new BetterAuthClient({ network, now: server.clock.now })
    const alice = make()
    const recovery = await generateRecoveryKey()
    await alice.createAccount(recovery.hash)
    await alice.createSession()
    const claims = await alice.session()
    expect(claims?.identity).toBe(await alice.identity())
    expect(await alice.accessRequest('/foo/bar', { foo: 'foo', bar: 'bar' })).toEqual({
      wasFoo: 'foo',
      wasBar: 'bar',
    })
    await alice.refreshSession()
    await alice.rotateDevice()
    // A second device links with a text container.
    const phone = make()
    const container = await phone.generateLinkContainer(await alice.identity())
    expect(typeof container).toBe('string')
    await alice.linkDevice(container)
    await phone.createSession()
    expect(await phone.accessRequest('/foo/bar', { foo: 1, bar: 2 })).toEqual({
      wasFoo: 1,
      wasBar: 2,
    })
    await alice.unlinkDevice(await phone.device())
    await expect(phone.rotateDevice()).rejects.toMatchObject({ code: 'BA301' })
    // Sign out, then sign in again.
    await alice.signOut()
    await expect(alice.accessRequest('/foo/bar', {})).rejects.toThrow(/no access token/)
    await alice.createSession()
    // Recover on a new device from the recovery key's text, and set the next one.
    const laptop = make()
    const next = await generateRecoveryKey()
    await laptop.recoverAccount(
      await alice.identity(),
      await importRecoveryKey(recovery.text),
      next.hash
    )
    await laptop.createSession()
    expect(await laptop.accessRequest('/foo/bar', { foo: 3, bar: 4 })).toEqual({
      wasFoo: 3,
      wasBar: 4,
    })
    await expect(alice.rotateDevice()).rejects.toMatchObject({ code: 'BA301' })
    await laptop.changeRecoveryKey(hash('another'))
    await laptop.deleteAccount()
    expect(server.store.dump().accounts).toEqual({})
    // …and each token the server issued decodes on the client.
    expect(network.sent.some(s => s.path === '/session/refresh')).toBe(true)
  })
})

describe('FetchNetwork', () => {
  // Browsers and workers throw "Illegal invocation" when fetch runs with another receiver.
  function strictFetch(calls: string[]): typeof fetch {
    return function (this: unknown, input: RequestInfo | URL) {
      if (this !== globalThis && this !== undefined) throw new TypeError('Illegal invocation')
      if (this === undefined) throw new TypeError('Illegal invocation (no receiver)')
      calls.push(String(input))
      return Promise.resolve(new Response('{"ok":true}', { status: 200 }))
    } as typeof fetch
  }

  it('calls a given fetch with globalThis as its receiver', async () => {
    const calls: string[] = []
    const network = new FetchNetwork('http://127.0.0.1:1/', strictFetch(calls))
    await expect(network.send('/a', '{}')).resolves.toEqual({ status: 200, body: '{"ok":true}' })
    expect(calls).toEqual(['http://127.0.0.1:1/a'])
  })

  it('calls the global fetch bound, even when it is replaced after construction', async () => {
    const original = globalThis.fetch
    const calls: string[] = []
    const network = new FetchNetwork('http://127.0.0.1:1')
    globalThis.fetch = strictFetch(calls)
    try {
      await expect(network.send('/b', '{}')).resolves.toMatchObject({ status: 200 })
    } finally {
      globalThis.fetch = original
    }
    expect(calls).toEqual(['http://127.0.0.1:1/b'])
  })
})

describe('readTokenClaims', () => {
  it('reads a server token and refuses what is not one', async () => {
    const server = makeServer()
    const client = new BetterAuthClient({
      network: new InProcessNetwork(server),
      now: server.clock.now,
    })
    await client.createAccount(hash('r'))
    await client.createSession()
    const token = await client.accessToken()
    const claims = await readTokenClaims(token)
    expect(claims.publicKey).toMatch(/^1AAI/)
    expect(claims.expiryMs - claims.issuedAtMs).toBe(900_000)
    await expect(readTokenClaims(token.slice(0, -4))).rejects.toThrow()
    await expect(readTokenClaims('0I' + 'A'.repeat(86) + 'H4sI')).rejects.toThrow()
    await expect(readTokenClaims('nonsense')).rejects.toThrow(/signature/)
  })
})
