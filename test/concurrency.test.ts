/** Concurrent duplicates: exactly one of each wins, in the core over the default store. */
import { NodeSigningKey } from '../src'
import {
  accessBody,
  challenge,
  createdAccount,
  createSessionBody,
  hash,
  makeServer as makeTestServer,
  nonce,
  openSession,
  signed,
} from './helpers'

const N = 50

// These tests are about atomicity; rate limits (tested on their own) would answer some with 429.
const makeServer = () => makeTestServer({ rateLimit: false })

async function statuses(results: Promise<{ status: number }>[]): Promise<number[]> {
  return (await Promise.all(results)).map(r => r.status)
}

function count(list: number[], status: number): number {
  return list.filter(s => s === status).length
}

describe(`${N} concurrent duplicates`, () => {
  it('rotations revealing the same key: exactly one succeeds', async () => {
    const server = makeServer()
    const a = await createdAccount(server)
    // Distinct messages (fresh nonces, different next commitments), all revealing the same key.
    const bodies = Array.from({ length: N }, () =>
      signed(
        {
          access: { nonce: nonce() },
          request: {
            authentication: {
              ...a.first.rotating(),
              rotationHash: hash(NodeSigningKey.generate().publicKeyText),
            },
          },
        },
        a.first.next
      )
    )
    const results = await statuses(bodies.map(b => server.call('rotateDevice', b)))
    expect(count(results, 200)).toBe(1)
    expect(count(results, 401)).toBe(N - 1)
  })

  it('session answers to one challenge: exactly one token is issued', async () => {
    const server = makeServer()
    const a = await createdAccount(server)
    const c = await challenge(server, a.identity)
    const key = NodeSigningKey.generate()
    // Distinct messages (fresh nonces) answering the same challenge.
    const results = await statuses(
      Array.from({ length: N }, () =>
        server.call('createSession', createSessionBody(a.first, c, key, key))
      )
    )
    expect(count(results, 200)).toBe(1)
    expect(count(results, 401)).toBe(N - 1)
  })

  it('refreshes with the same key: exactly one succeeds', async () => {
    const server = makeServer()
    const a = await createdAccount(server)
    const s = await openSession(server, a.first)
    const results = await statuses(
      Array.from({ length: N }, () =>
        server.call(
          'refreshSession',
          signed(
            {
              access: { nonce: nonce() },
              request: {
                access: {
                  publicKey: s.next.publicKeyText,
                  rotationHash: hash(NodeSigningKey.generate().publicKeyText),
                  token: s.token,
                },
              },
            },
            s.next
          )
        )
      )
    )
    expect(count(results, 200)).toBe(1)
    expect(count(results, 401)).toBe(N - 1)
  })

  it('access requests with the same nonce: exactly one is served', async () => {
    const server = makeServer()
    const a = await createdAccount(server)
    const s = await openSession(server, a.first)
    const n = nonce()
    // Different timestamps give different bodies and signatures with the same nonce.
    const results = await statuses(
      Array.from({ length: N }, (_, i) =>
        server.access(accessBody(s.token, s.key, { nonce: n, at: server.clock.ms - i }))
      )
    )
    expect(count(results, 200)).toBe(1)
    expect(count(results, 401)).toBe(N - 1)
  })
})
