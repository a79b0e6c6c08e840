import {
  checkContentDigest,
  contentDigest,
  hasHeaderAccess,
  readHeaderAccess,
  serverTarget,
  signHeaderRequest,
  signResponse,
  verifyHeaderAccess,
  verifyResponse,
} from '../../src/binding'
import { NodeP256Verifier, NodeSigningKey, sha256, sha256Base64 } from '../../src/crypto/node'
import { RandomNoncer } from '../../src/crypto/nonce'
import { AccessFieldLines, type AccessFieldName } from '../../src/binding/request'
import { fieldsLines } from '../../src/binding/fields'
import { outcome, vectors } from './pipeline'
import { session } from '../../testing/adapter-contract'
import { makeContractServer } from '../../testing/fixtures'

const verifier = new NodeP256Verifier()
const access = NodeSigningKey.from(vectors.keys.access.privateKeyPem)
const responseKey = NodeSigningKey.from(vectors.keys.response.privateKeyPem)
const noncer = new RandomNoncer()
const body = new TextEncoder().encode('{"hello":"world"}')

async function signed(method: string, url: string, withBody: boolean) {
  return signHeaderRequest({
    method,
    url,
    ...(withBody ? { body } : {}),
    token: vectors.token.text,
    signer: access,
    nonce: noncer.generate128(),
    timestamp: Date.now(),
  })
}

describe('header form round trip', () => {
  it.each([
    ['get', 'https://a.example/x?y=1', false],
    ['PATCH', 'https://a.example:8443/', true],
    ['post', 'http://localhost:3000/p/%7Efoo?', true],
  ] as const)('%s %s signs and verifies (fetch Headers)', async (method, url, withBody) => {
    const request = await signed(method, url, withBody)
    const headers = new Headers(request.headers)
    expect(hasHeaderAccess(headers)).toBe(true)
    const read = readHeaderAccess({
      method: request.method,
      url,
      headers,
      ...(withBody ? { body } : {}),
    })
    expect(read.signatureBase).toBe(request.signatureBase)
    await expect(verifyHeaderAccess(read, verifier, access.publicKeyText)).resolves.toBeUndefined()

    const replyBody = new TextEncoder().encode('{"ok":true}')
    const reply = await signResponse(
      { status: 200, body: replyBody, requestSignature: read.signature },
      responseKey
    )
    await expect(
      verifyResponse(
        {
          status: 200,
          headers: new Headers(reply),
          body: replyBody,
          requestSignature: request.signature,
        },
        verifier,
        responseKey.publicKeyText
      )
    ).resolves.toBe(true)
  })

  it('normalizes methods as fetch does', async () => {
    expect((await signed('delete', 'https://a.example/', false)).method).toBe('DELETE')
    expect((await signed('patch', 'https://a.example/', false)).method).toBe('patch')
  })

  it('refuses to sign over headers it would duplicate', async () => {
    await expect(
      signHeaderRequest({
        method: 'GET',
        url: 'https://a.example/',
        headers: { Authorization: 'Bearer x' },
        token: vectors.token.text,
        signer: access,
        nonce: noncer.generate128(),
        timestamp: Date.now(),
      })
    ).rejects.toThrow(TypeError)
  })

  it('skips the character check of a token the server knows, and only of that one', async () => {
    const request = await signed('GET', 'https://a.example/', false)
    const asked: string[] = []
    const read = readHeaderAccess({
      method: 'GET',
      url: 'https://a.example/',
      headers: request.headers,
      knownToken: token => (asked.push(token), true),
    })
    expect(read.token).toBe(vectors.token.text)
    expect(asked).toEqual([vectors.token.text])

    // A token with a character outside base64url is refused when the predicate does not know it
    // (a server's cache holds only texts that decoded as tokens).
    const bad = {
      ...request.headers,
      authorization: `BetterAuth ${vectors.token.text.slice(0, -1)}!`,
    }
    const unknown = (): boolean => false
    expect(
      await outcome(async () =>
        readHeaderAccess({
          method: 'GET',
          url: 'https://a.example/',
          headers: bad,
          knownToken: unknown,
        })
      )
    ).toBe('BA101')
  })

  it("reads an adapter's own field record as the same headers in a plain record", async () => {
    const request = await signed('POST', 'https://a.example/notes?x=1', true)
    const record = new AccessFieldLines()
    for (const [name, value] of Object.entries(request.headers)) {
      const key = name.toLowerCase()
      if (key in record) record[key as AccessFieldName] = [value as string]
    }
    const input = { method: 'POST', url: 'https://a.example/notes?x=1', body }
    const fromRecord = readHeaderAccess({ ...input, headers: record, sha256, sha256Base64 })
    const fromPlain = readHeaderAccess({ ...input, headers: request.headers, sha256, sha256Base64 })
    expect(fromRecord).toEqual(fromPlain)
    expect(fromRecord.components).toContain('"content-digest"')

    // Its lines are read as they are: two lines of one field are still two.
    const twice = new AccessFieldLines()
    Object.assign(twice, record, { signature: [...record.signature, ...record.signature] })
    expect(await outcome(async () => readHeaderAccess({ ...input, headers: twice, sha256 }))).toBe(
      'BA101'
    )
    // A copy with one more key is a plain record, read field by field: the key is seen.
    const copy = { ...record, Authorization: record.authorization }
    expect(await outcome(async () => readHeaderAccess({ ...input, headers: copy, sha256 }))).toBe(
      'BA101'
    )
    // Other lists of names are read from it field by field, as from any record.
    expect(fieldsLines(record, ['signature', 'content-type'])).toEqual({
      signature: record.signature,
      'content-type': [],
    })
  })

  it('sees duplicate lines in a record whatever the case of the names', async () => {
    const request = await signed('GET', 'https://a.example/', false)
    const headers = { ...request.headers, Signature: request.headers.signature as string }
    expect(
      await outcome(async () =>
        readHeaderAccess({ method: 'GET', url: 'https://a.example/', headers })
      )
    ).toBe('BA101')
  })

  it.each([
    ['authorization', (v: string) => v.replace('BetterAuth ', 'BetterAuth \u0001')],
    ['authorization', (v: string) => v + '\u0007'],
    ['authorization', (v: string) => v.replace('BetterAuth ', 'Better\u001fAuth ')],
    ['signature-input', (v: string) => v.replace('"@method"', '"@me\u0002thod"')],
    ['signature', (v: string) => v.replace('ba=:', 'ba=:\u007f')],
    ['content-digest', (v: string) => v.replace('sha-256=', 'sha-256=\u0010')],
  ] as const)('refuses control characters in %s (BA101)', async (name, change) => {
    const request = await signed('POST', 'https://a.example/', true)
    const headers = { ...request.headers, [name]: change(request.headers[name] as string) }
    expect(headers[name]).not.toBe(request.headers[name])
    let error: unknown
    try {
      readHeaderAccess({ method: 'POST', url: 'https://a.example/', headers, body })
    } catch (caught) {
      error = caught
    }
    expect(error).toMatchObject({ code: 'BA101' })
    expect(String((error as Error).message)).toContain(`${name} contains control characters`)
  })

  it('takes the URL as text, a URL of any realm, or its covered parts', async () => {
    const url = 'http://api.example.com:8080/a/b?c=1'
    const request = await signed('GET', url, false)
    // What a URL made in another realm (a vm context) looks like here: not `instanceof URL`.
    const foreign = { href: url, toString: () => url } as unknown as URL
    expect(foreign instanceof URL).toBe(false)
    const bases = [
      url,
      new URL(url),
      foreign,
      serverTarget('api.example.com:8080', '/a/b?c=1'),
    ].map(u => readHeaderAccess({ method: 'GET', url: u, headers: request.headers }).signatureBase)
    for (const base of bases) expect(base).toBe(request.signatureBase)
  })

  it('uses the expected authority instead of the Host', async () => {
    const request = await signed('GET', 'https://api.example.com/a', false)
    const read = readHeaderAccess({
      method: 'GET',
      url: 'http://10.1.2.3:8080/a',
      headers: request.headers,
      expectedAuthority: 'API.example.com',
    })
    await expect(verifyHeaderAccess(read, verifier, access.publicKeyText)).resolves.toBeUndefined()
  })

  it('checks Content-Digest', () => {
    const digest = contentDigest(body)
    expect(digest).toMatch(/^sha-256=:[A-Za-z0-9+/]{43}=:$/)
    expect(() => checkContentDigest(digest, body)).not.toThrow()
    expect(() => checkContentDigest(`sha-512=:AAAA:, ${digest}`, body)).not.toThrow()
    expect(() => checkContentDigest(digest, new Uint8Array(1))).toThrow(
      expect.objectContaining({ code: 'BA201' })
    )
    expect(() => checkContentDigest('sha-256=:AAAA:', body)).toThrow(
      expect.objectContaining({ code: 'BA101' })
    )
    expect(() => checkContentDigest(`${digest}, ${digest}`, body)).toThrow(
      expect.objectContaining({ code: 'BA101' })
    )
  })

  it("reads Content-Digest the same with a base64 SHA-256 (the server's) as without", async () => {
    const request = await signed('POST', 'https://a.example/', true)
    const digest = request.headers['content-digest'] as string
    const b64 = digest.slice('sha-256=:'.length, -1)
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
    // The same 32 bytes with a padding bit set in the last character: not the canonical text.
    const last = alphabet[alphabet.indexOf(b64[42] as string) ^ 1] as string
    const variants = [
      digest,
      `sha-256=:${b64.slice(0, 42)}${last}=:`,
      `sha-256=:${b64.slice(0, 42)}${b64[42] === 'A' ? 'E' : 'A'}=:`,
      'sha-256=:AAAA:',
      `sha-512=:AAAA:, ${digest}`,
      `${digest}, ${digest}`,
    ]
    const outcomes = []
    for (const value of variants) {
      const headers = { ...request.headers, 'content-digest': value }
      const read = (fast: boolean) =>
        outcome(async () =>
          readHeaderAccess({
            method: 'POST',
            url: 'https://a.example/',
            headers,
            body,
            sha256,
            ...(fast ? { sha256Base64 } : {}),
          })
        )
      const [withText, withBytes] = [await read(true), await read(false)]
      expect(withText).toBe(withBytes)
      outcomes.push(withText)
    }
    expect(outcomes[0]).toBe('ok')
    expect(outcomes[2]).toBe('BA201')
    expect(outcomes[3]).toBe('BA101')
  })

  it('lets an error reply be unsigned, not a success', async () => {
    const requestSignature = new Uint8Array(64)
    const unsigned = { headers: {}, requestSignature }
    await expect(
      verifyResponse({ ...unsigned, status: 422 }, verifier, responseKey.publicKeyText)
    ).resolves.toBe(false)
    expect(
      await outcome(() =>
        verifyResponse({ ...unsigned, status: 200 }, verifier, responseKey.publicKeyText)
      )
    ).toBe('BA204')
  })
})

describe('the core refuses a coded body in the header form (docs/http-binding.md §2.7)', () => {
  it('415 BA606 from verifyHeaderAccess, the nonce left unused; identity and no body pass', async () => {
    const server = makeContractServer()
    const { key, token } = await session(server)
    const url = 'https://api.example.com/notes/7'
    const request = async (method: string, withBody: boolean, coding?: string) => {
      const nonce = noncer.generate128()
      const signed = await signHeaderRequest({
        method,
        url,
        ...(withBody ? { body } : {}),
        token,
        signer: key,
        nonce,
        timestamp: server.clock.ms,
      })
      const call = (headers: Record<string, string>) =>
        server.auth.verifyHeaderAccess({
          method: signed.method,
          url,
          headers,
          ...(withBody ? { body } : {}),
          parsed: undefined,
        })
      return { nonce, call, headers: signed.headers, coding }
    }
    const coded = await request('PUT', true)
    for (const coding of ['gzip', 'GZIP', 'identity, br']) {
      await expect(
        coded.call({ ...coded.headers, 'content-encoding': coding })
      ).rejects.toMatchObject({ code: 'BA606', status: 415 })
    }
    // The refused request's nonce was not used: the same request, uncoded, goes through.
    await expect(coded.call(coded.headers)).resolves.toMatchObject({ nonce: coded.nonce })
    const identity = await request('PUT', true)
    await expect(
      identity.call({ ...identity.headers, 'content-encoding': ' Identity ' })
    ).resolves.toMatchObject({ nonce: identity.nonce })
    const bodiless = await request('DELETE', false)
    await expect(
      bodiless.call({ ...bodiless.headers, 'content-encoding': 'gzip' })
    ).resolves.toMatchObject({ nonce: bodiless.nonce })
    await server.auth.close()
  })
})

describe('the core refuses a body announced but not received (docs/http-binding.md §2.6, step 0)', () => {
  it('400 BA101 for a Content-Length above zero with no body, the nonce left unused', async () => {
    const server = makeContractServer()
    const { key, token } = await session(server)
    const url = 'https://api.example.com/items'
    const nonce = noncer.generate128()
    const signed = await signHeaderRequest({
      method: 'GET',
      url,
      token,
      signer: key,
      nonce,
      timestamp: server.clock.ms,
    })
    const call = (headers: Record<string, string | string[]>) =>
      server.auth.verifyHeaderAccess({ method: 'GET', url, headers, parsed: undefined })
    const extras: Record<string, string | string[]>[] = [
      { 'content-length': '8' },
      { 'Content-Length': '0008' },
      { 'content-length': ['0', '8'] },
      { 'content-length': '0, 8' },
    ]
    for (const extra of extras) {
      await expect(call({ ...signed.headers, ...extra })).rejects.toMatchObject({
        code: 'BA101',
        status: 400,
      })
    }
    // Nothing consumed. A length of zero (on one line or several, as a `Headers` object joins
    // them) announces no body, and neither does a chunked body that arrived empty.
    await expect(call({ ...signed.headers, 'content-length': ['0', '00'] })).resolves.toMatchObject(
      { nonce }
    )
    const empty: Record<string, string>[] = [
      { 'content-length': '0, 0' },
      { 'transfer-encoding': 'chunked' },
    ]
    for (const extra of empty) {
      const again = await signHeaderRequest({
        method: 'GET',
        url,
        token,
        signer: key,
        nonce: noncer.generate128(),
        timestamp: server.clock.ms,
      })
      await expect(call({ ...again.headers, ...extra })).resolves.toHaveProperty('identity')
    }
    await server.auth.close()
  })
})
