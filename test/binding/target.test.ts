/**
 * serverTarget: the covered parts of a request from its Host and request target, which skips the
 * URL parser for the common shapes. Whatever it is given, it must give exactly what the URL parser
 * gives (or throw where the parser throws), or a signature made by a client over the parsed URL
 * would fail on the server, or worse, two different targets would share a signature base.
 */
import fc from 'fast-check'
import { serverTarget, targetOfUrl, type RequestTarget } from '../../src/binding'
import { resolvesAway } from '../../src/binding/base'
import { InvalidMessageError } from '../../src/errors'

const RUNS = Math.max(1, Number(process.env.FUZZ_RUNS ?? 1000))
const SEED = process.env.FUZZ_SEED === undefined ? 20261202 : Number(process.env.FUZZ_SEED)

/** What the URL parser makes of the same request (the server's previous code). */
function parsed(host: string | undefined, target: string): RequestTarget | 'throws' {
  try {
    return targetOfUrl(`http://${host === undefined || host === '' ? 'localhost' : host}${target}`)
  } catch {
    return 'throws'
  }
}

function fast(host: string | undefined, target: string): RequestTarget | 'throws' | 'refused' {
  try {
    return serverTarget(host, target)
  } catch (error) {
    return error instanceof InvalidMessageError ? 'refused' : 'throws'
  }
}

/** What serverTarget must give: the parser's result, unless the path has a part it resolves. */
function expected(host: string | undefined, target: string): RequestTarget | 'throws' | 'refused' {
  return resolvesAway(target.split('?', 1)[0] as string) ? 'refused' : parsed(host, target)
}

describe('serverTarget', () => {
  it.each([
    ['127.0.0.1:8080', '/foo/bar', { authority: '127.0.0.1:8080', path: '/foo/bar', query: '?' }],
    ['api.example.com', '/a?b=1&c', { authority: 'api.example.com', path: '/a', query: '?b=1&c' }],
    ['api.example.com', '/a?', { authority: 'api.example.com', path: '/a', query: '?' }],
    [undefined, '/', { authority: 'localhost', path: '/', query: '?' }],
    ['', '/x', { authority: 'localhost', path: '/x', query: '?' }],
    // The parser's rewrites: each of these takes the slow path and gets them.
    ['API.Example.com', '/', { authority: 'api.example.com', path: '/', query: '?' }],
    ['example.com:80', '/', { authority: 'example.com', path: '/', query: '?' }],
    ['example.com:0080', '/', { authority: 'example.com', path: '/', query: '?' }],
    ['example.com:08080', '/', { authority: 'example.com:8080', path: '/', query: '?' }],
    ['127.1', '/', { authority: '127.0.0.1', path: '/', query: '?' }],
    ['0x7f.1:81', '/', { authority: '127.0.0.1:81', path: '/', query: '?' }],
    ['1.017', '/', { authority: '1.0.0.15', path: '/', query: '?' }],
    ['example.com', '/a b?c\\d', { authority: 'example.com', path: '/a%20b', query: '?c\\d' }],
    [
      'example.com',
      '/a/..b/.c./%2e%2ex',
      { authority: 'example.com', path: '/a/..b/.c./%2e%2ex', query: '?' },
    ],
    ['example.com', '/a?/../b', { authority: 'example.com', path: '/a', query: '?/../b' }],
    ['example.com', "/it's?it's", { authority: 'example.com', path: "/it's", query: '?it%27s' }],
    ['example.com', '/a#b?c', { authority: 'example.com', path: '/a', query: '?' }],
    ['example.com', '/é?é', { authority: 'example.com', path: '/%C3%A9', query: '?%C3%A9' }],
    [
      'example.com',
      '/.well-known/x',
      { authority: 'example.com', path: '/.well-known/x', query: '?' },
    ],
  ])('%s %s', (host, target, expected) => {
    expect(serverTarget(host, target)).toEqual(expected)
    expect(parsed(host, target)).toEqual(expected)
  })

  it.each([
    ['/a/./b/../c'],
    ['/a/%2E%2e/c'],
    ['/a/.%2E'],
    ['/a/%2e/'],
    ['/a b\\c'],
    ['/notes/%2e%2e'],
  ])('refuses a path URL parsing would resolve, the signed path not the routed one: %s', target => {
    expect(parsed('example.com', target)).not.toEqual(expect.objectContaining({ path: target }))
    expect(() => serverTarget('example.com', target)).toThrow(InvalidMessageError)
    expect(() => serverTarget('example.com', target)).toThrow(/"\." or "\.\." segment/)
  })

  it.each([
    ['example.com:65536', '/'],
    ['exa mple.com', '/'],
    ['[::1', '/'],
    ['256.0.0.1', '/'],
    ['a.017', '/'],
  ])('throws where the URL parser throws: %s %s', (host, target) => {
    expect(parsed(host, target)).toBe('throws')
    expect(() => serverTarget(host, target)).toThrow('Invalid URL')
  })

  it('gives what the URL parser gives, for any host and target (or refuses what it resolves)', () => {
    // Single characters, and pieces the parser reads specially.
    const pieces = (chars: string, more: string[]) => fc.constantFrom(...chars.split(''), ...more)
    const hostChars = pieces('aZz09-.:_[]@%x', ['xn--', '0x', '127', '255', '256', '80', '00', 'é'])
    const targetChars = pieces('/?#.%2eE-_~!$&\'()*+,;=:@ "<>`{}|\\^[]aZ09', [
      '%2e',
      '/./',
      '/../',
      'é',
      '\t',
    ])
    fc.assert(
      fc.property(
        fc.option(
          fc.array(hostChars, { maxLength: 12 }).map(a => a.join('')),
          { nil: undefined }
        ),
        fc.array(targetChars, { maxLength: 24 }).map(a => '/' + a.join('')),
        (host, target) => {
          expect(fast(host, target)).toEqual(expected(host, target))
        }
      ),
      { numRuns: RUNS, seed: SEED }
    )
  })

  it('gives what the URL parser gives for usual hosts and paths', () => {
    const label = fc.stringMatching(/^[a-z0-9-]{1,8}$/)
    const host = fc.tuple(
      fc.array(label, { minLength: 1, maxLength: 4 }),
      fc.option(fc.integer({ min: 0, max: 70000 }), { nil: undefined })
    )
    const segment = fc.stringMatching(/^[A-Za-z0-9._~%-]{0,6}$/)
    fc.assert(
      fc.property(
        host,
        fc.array(segment, { maxLength: 5 }),
        fc.option(fc.stringMatching(/^[A-Za-z0-9=&._~%-]{0,10}$/), { nil: undefined }),
        ([labels, port], segments, query) => {
          const h = labels.join('.') + (port === undefined ? '' : `:${port}`)
          const target = '/' + segments.join('/') + (query === undefined ? '' : `?${query}`)
          expect(fast(h, target)).toEqual(expected(h, target))
        }
      ),
      { numRuns: RUNS, seed: SEED }
    )
  })

  it('gives the same parts for a target it read before, and each host its own', () => {
    const first = serverTarget('api.example.com', '/notes/42?x=1')
    const again = serverTarget('api.example.com', '/notes/42?x=1')
    expect(again).toEqual({ authority: 'api.example.com', path: '/notes/42', query: '?x=1' })
    expect(again).toBe(first)
    // Kept parts are shared, so they cannot be changed by one caller for the next.
    expect(Object.isFrozen(again)).toBe(true)
    expect(() => {
      ;(again as { path: string }).path = '/elsewhere'
    }).toThrow(TypeError)
    expect(serverTarget('api.example.com', '/notes/42?x=1').path).toBe('/notes/42')
    expect(serverTarget('other.example.com', '/notes/42?x=1').authority).toBe('other.example.com')
    expect(serverTarget(undefined, '/notes/42?x=1').authority).toBe('localhost')
    expect(serverTarget('api.example.com', '/notes/43?x=1').path).toBe('/notes/43')
    expect(serverTarget('api.example.com', '/notes/42?x=2').query).toBe('?x=2')
    // A target the patterns do not admit is not kept: read through the parser (or refused) again.
    expect(() => serverTarget('api.example.com', '/notes/%2e%2e')).toThrow(InvalidMessageError)
    expect(() => serverTarget('api.example.com', '/notes/%2e%2e')).toThrow(InvalidMessageError)
  })

  it('gives what the URL parser gives when hosts and targets repeat in any order', () => {
    // Few hosts and targets, many calls: most are answered from the kept ones, with other
    // targets read in between (more than are kept).
    const hosts = ['a.example', 'b.example:8080', 'A.example', '127.0.0.1', undefined]
    const targets = ['/', '/me', '/notes/1', '/notes/1?q', '/x/./y', '/p?a=b', '/%41', '/é']
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom(...hosts), fc.constantFrom(...targets)), {
          minLength: 1,
          maxLength: 40,
        }),
        calls => {
          for (const [host, target] of calls) {
            expect(fast(host, target)).toEqual(expected(host, target))
          }
        }
      ),
      { numRuns: RUNS, seed: SEED }
    )
  })
})
