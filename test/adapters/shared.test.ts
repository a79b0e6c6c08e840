/** Pieces every adapter shares. */
import { normalizePrefix, openapiPath } from '../../adapters/shared/access'
import { lacksCredentials } from '../../src/messages/envelope'
import { betterAuth } from '../../adapters/fetch'
import { makeServer } from '../helpers'

describe('adapter helpers', () => {
  it('normalizes mount prefixes and the OpenAPI path', () => {
    expect(['', '/', undefined, 'auth', '/auth/', '//auth//v1/'].map(normalizePrefix)).toEqual([
      '',
      '',
      '',
      '/auth',
      '/auth',
      '/auth//v1',
    ])
    expect(openapiPath('auth/', true)).toBe('/auth/openapi.json')
    expect(openapiPath('', 'docs.json')).toBe('/docs.json')
    expect(openapiPath('/a', false)).toBeUndefined()
    expect(openapiPath('/a', undefined)).toBeUndefined()
  })

  it('tells a missing access request from a malformed one', () => {
    expect(lacksCredentials('')).toBe(true)
    expect(lacksCredentials(' \n')).toBe(true)
    expect(lacksCredentials(new Uint8Array())).toBe(true)
    expect(lacksCredentials('{}')).toBe(true)
    expect(lacksCredentials('{"payload":{"request":{}}}')).toBe(true)
    expect(lacksCredentials('{"payload":{"access":{"nonce":"x"}}}')).toBe(true)
    // Malformed or carrying a token: not "missing", so refused as they are (BA101 …).
    expect(lacksCredentials('name=value')).toBe(false)
    expect(lacksCredentials('null')).toBe(false)
    expect(lacksCredentials('[{"payload":{}}]')).toBe(false)
    expect(lacksCredentials('{"payload":{"access":{"token":""}}}')).toBe(false)
    expect(lacksCredentials(Buffer.from('{"payload":{"access":{"token":1}}}'))).toBe(false)
  })

  it('mounts under a prefix written without its leading slash', async () => {
    const server = makeServer()
    const auth = betterAuth(server.auth, { prefix: 'auth/' })
    const reply = await auth.fetch(new Request('http://h/auth/key/response'))
    expect(await reply.text()).toBe(await server.auth.responsePublicKey())
  })
})
