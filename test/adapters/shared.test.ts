/** Pieces every adapter shares. */
import { carriesCredentials, normalizePrefix, openapiPath } from '../../adapters/shared/access'
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
    expect(carriesCredentials('')).toBe(false)
    expect(carriesCredentials(' \n')).toBe(false)
    expect(carriesCredentials(new Uint8Array())).toBe(false)
    expect(carriesCredentials('name=value')).toBe(false)
    expect(carriesCredentials('{}')).toBe(false)
    expect(carriesCredentials('null')).toBe(false)
    expect(carriesCredentials('{"payload":{"request":{}}}')).toBe(false)
    expect(carriesCredentials('{"payload":{"access":{"nonce":"x"}}}')).toBe(false)
    expect(carriesCredentials('{"payload":{"access":{"token":""}}}')).toBe(true)
    expect(carriesCredentials(Buffer.from('{"payload":{"access":{"token":1}}}'))).toBe(true)
  })

  it('mounts under a prefix written without its leading slash', async () => {
    const server = makeServer()
    const auth = betterAuth(server.auth, { prefix: 'auth/' })
    const reply = await auth.fetch(new Request('http://h/auth/key/response'))
    expect(await reply.text()).toBe(await server.auth.responsePublicKey())
  })
})
