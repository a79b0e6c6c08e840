/**
 * The token service's look-ups (src/server/tokens.ts): `known` (the header form asks it before
 * reading the token) and `verify` right after it take the same token, and what `known` found is
 * never given for another text.
 */
import type { TokenService } from '../src/server/tokens'
import { createdAccount, makeServer, openSession } from './helpers'

async function twoTokens() {
  const server = makeServer()
  const first = await createdAccount(server)
  const second = await createdAccount(server)
  const a = await openSession(server, first.first)
  const b = await openSession(server, second.first)
  const tokens = (server.auth as unknown as { tokens: TokenService }).tokens
  return { tokens, a: a.token, b: b.token }
}

describe('TokenService: known, then verify', () => {
  it('verify after known of the same text gives the token verify gives alone', async () => {
    const { tokens, a } = await twoTokens()
    const alone = await tokens.verify(a)
    expect(tokens.known(a)).toBe(true)
    // The same text as a new string (not the object known saw): equal text is enough.
    const copy = (' ' + a).slice(1)
    expect(await tokens.verify(copy)).toBe(alone)
  })

  it('verify of another text after known gives that text’s own token', async () => {
    const { tokens, a, b } = await twoTokens()
    const tokenA = await tokens.verify(a)
    const tokenB = await tokens.verify(b)
    expect(tokenA.identity).not.toBe(tokenB.identity)
    expect(tokens.known(a)).toBe(true)
    expect(await tokens.verify(b)).toBe(tokenB)
    // And what known found is not kept for a later verify of that text by another path.
    expect(await tokens.verify(a)).toBe(tokenA)
  })

  it('known of a text not verified yet is false, and verify still checks it in full', async () => {
    const { tokens, a } = await twoTokens()
    // A token with one character of its signature changed: never verified, so not cached.
    const forged = a.slice(0, 10) + (a[10] === 'A' ? 'B' : 'A') + a.slice(11)
    expect(tokens.known(forged)).toBe(false)
    await expect(tokens.verify(forged)).rejects.toMatchObject({
      code: expect.stringMatching(/^BA/),
    })
    expect(tokens.known(forged)).toBe(false)
  })
})
