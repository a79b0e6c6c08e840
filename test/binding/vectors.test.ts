import { createSignatureBase, formatSignatureBase } from 'http-message-signatures/lib/httpbis'
import { encodeSignature } from '../../src/codec/cesr'
import { readResponseSignature, verifyResponse, type HeaderRecord } from '../../src/binding'
import { outcome, utf8, vectors, verifier, verifyRequest, bodyOf } from './pipeline'

const requestSignature = (name: string): Uint8Array => {
  const request = vectors.requests.find(r => r.name === name)
  if (request?.signature === undefined) throw new Error(`no request ${name}`)
  return new Uint8Array(Buffer.from(request.signature, 'base64'))
}

describe('http-binding vectors: valid requests', () => {
  it('has every kind of request', () => {
    expect(vectors.requests.map(r => r.method)).toEqual(
      expect.arrayContaining(['GET', 'DELETE', 'PUT', 'POST'])
    )
  })

  it.each(vectors.requests.map(r => [r.name, r] as const))('%s verifies', async (_name, r) => {
    const base = await verifyRequest(r, new Set())
    expect(base).toBe(r.signatureBase)
    // The signature in the vector verifies over the vector's base (independently of the reader).
    const sig = Buffer.from(r.signature as string, 'base64')
    expect(verifier.verify(utf8(base), encodeSignature(sig), vectors.keys.access.publicKey)).toBe(
      true
    )
  })

  it.each(
    vectors.requests.filter(r => r.expectedAuthority === undefined).map(r => [r.name, r] as const)
  )('%s: the base agrees with http-message-signatures', (_name, r) => {
    const input = (r.headers['signature-input'] as string).slice('ba='.length)
    const fields = [...input.slice(1, input.indexOf(')')).matchAll(/"([^"]+)"/g)].map(
      m => m[1] as string
    )
    const lines = createSignatureBase(
      { fields },
      { method: r.method, url: r.url, headers: r.headers }
    )
    expect(formatSignatureBase(lines) + '\n"@signature-params": ' + input).toBe(r.signatureBase)
  })
})

describe('http-binding vectors: invalid requests', () => {
  it.each(vectors.invalidRequests.map(r => [r.name, r.error, r] as const))(
    '%s → %s',
    async (_name, error, r) => {
      const nonces = new Set<string>()
      if (r.presentTwice === true) await verifyRequest(r, nonces)
      expect(await outcome(() => verifyRequest(r, nonces))).toBe(error)
    }
  )
})

describe('http-binding vectors: replies', () => {
  it.each(vectors.responses.map(r => [r.name, r] as const))('%s verifies', async (_name, r) => {
    const response = {
      status: r.status,
      headers: r.headers as HeaderRecord,
      ...(r.body === undefined ? {} : { body: bodyOf(r) as Uint8Array }),
      requestSignature: requestSignature(r.request),
    }
    expect(await verifyResponse(response, verifier, vectors.keys.response.publicKey)).toBe(r.signed)
    if (r.signed === true)
      expect(readResponseSignature(response)?.signatureBase).toBe(r.signatureBase)
  })

  it.each(vectors.invalidResponses.map(r => [r.name, r.error, r] as const))(
    '%s → %s',
    async (_name, error, r) => {
      const response = {
        status: r.status,
        headers: r.headers as HeaderRecord,
        ...(r.body === undefined ? {} : { body: bodyOf(r) as Uint8Array }),
        requestSignature: requestSignature(r.request),
      }
      expect(
        await outcome(() => verifyResponse(response, verifier, vectors.keys.response.publicKey))
      ).toBe(error)
    }
  )
})
