/**
 * The server's reply signer (src/server/header-replies.ts) against `signResponse`, which it
 * replaces on the server's hot path: the same fields for any status, body, key id and time, and
 * a signature the client's `verifyResponse` accepts.
 */
import fc from 'fast-check'
import { signResponse, verifyResponse } from '../../src/binding'
import { sha256 as nobleSha256 } from '@noble/hashes/sha2'
import { sha256, sha256Base64 } from '../../src/crypto/node'
import { NodeP256Verifier, NodeSigningKey, ecdsaScheduler } from '../../src/crypto/node'
import { HeaderReplySigner } from '../../src/server/header-replies'

const RUNS = Math.max(1, Number(process.env.FUZZ_RUNS ?? 1000)) / 10
const SEED = process.env.FUZZ_SEED === undefined ? 20251019 : Number(process.env.FUZZ_SEED)

const key = NodeSigningKey.generate()
const verifier = new NodeP256Verifier()

describe('server reply signer', () => {
  it.each(['inline', 'threadpool'] as const)(
    'makes the fields signResponse makes, and they verify (ECDSA %s)',
    async placement => {
      const signer = new HeaderReplySigner(ecdsaScheduler(placement))
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 100, max: 999 }),
          fc.uint8Array({ maxLength: 300 }),
          fc.uint8Array({ minLength: 64, maxLength: 64 }),
          fc.integer({ min: 0, max: 4_102_444_800_000 }),
          fc.constantFrom(key.publicKeyText, '1AAI' + 'A'.repeat(44)),
          async (status, body, requestSignature, now, keyid) => {
            const ours = await signer.sign({ status, body, requestSignature }, key, keyid, now)
            const theirs = await signResponse(
              { status, body, requestSignature, timestamp: now, keyid, sha256 },
              key
            )
            expect(Object.keys(ours)).toEqual(Object.keys(theirs))
            expect(ours['content-digest']).toBe(theirs['content-digest'])
            expect(ours['signature-input']).toBe(theirs['signature-input'])
            const response = { status, headers: ours, body, requestSignature }
            if (keyid === key.publicKeyText) {
              await expect(verifyResponse(response, verifier, key.publicKeyText)).resolves.toBe(
                true
              )
            }
          }
        ),
        { numRuns: RUNS, seed: SEED }
      )
    }
  )

  it('replies signed at once across a second each carry the parameters they were signed with', async () => {
    // The parameters and their Signature-Input value are kept per second: a reply whose signing
    // is still on the threadpool when the next one moves the kept second on keeps its own.
    const signer = new HeaderReplySigner(ecdsaScheduler('threadpool'))
    const requestSignature = new Uint8Array(64).fill(7)
    const body = new TextEncoder().encode('{"ok":true}')
    const times = [1_796_288_404_000, 1_796_288_405_000, 1_796_288_404_500, 1_796_288_406_999]
    const replies = await Promise.all(
      times.map(now =>
        signer.sign({ status: 200, body, requestSignature }, key, key.publicKeyText, now)
      )
    )
    for (let i = 0; i < times.length; i++) {
      const reply = replies[i] as Record<string, string>
      const created = Math.floor((times[i] as number) / 1000)
      expect(reply['signature-input']).toContain(`;created=${created};`)
      const response = { status: 200, headers: reply, body, requestSignature }
      await expect(verifyResponse(response, verifier, key.publicKeyText)).resolves.toBe(true)
    }
  })

  it('refuses what signResponse refuses', async () => {
    const signer = new HeaderReplySigner(ecdsaScheduler('threadpool'))
    const requestSignature = new Uint8Array(64)
    for (const headers of [
      { signature: 'x' },
      { 'Content-Digest': ['a'] },
      new Headers({ 'signature-input': 'y' }),
    ]) {
      await expect(
        signer.sign({ status: 200, headers, requestSignature }, key, key.publicKeyText, 0)
      ).rejects.toThrow(TypeError)
    }
    for (const status of [99, 1000, 200.5]) {
      await expect(
        signer.sign({ status, requestSignature }, key, key.publicKeyText, 0)
      ).rejects.toThrow(TypeError)
    }
  })
})

describe("the server's SHA-256 (Content-Digest)", () => {
  it('equals @noble/hashes on any bytes, views into a larger buffer included', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 2000 }),
        fc.nat(16),
        fc.nat(16),
        (bytes, before, after) => {
          const backing = new Uint8Array(before + bytes.length + after).fill(0xaa)
          backing.set(bytes, before)
          const view = backing.subarray(before, before + bytes.length)
          const expected = Buffer.from(nobleSha256(bytes)).toString('hex')
          expect(Buffer.from(sha256(bytes)).toString('hex')).toBe(expected)
          expect(Buffer.from(sha256(view)).toString('hex')).toBe(expected)
          const base64 = Buffer.from(nobleSha256(bytes)).toString('base64')
          expect(sha256Base64(bytes)).toBe(base64)
          expect(sha256Base64(view)).toBe(base64)
        }
      ),
      { numRuns: RUNS, seed: SEED }
    )
  })
})
