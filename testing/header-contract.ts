/**
 * The header form of the access request (HTTP Message Signatures, docs/http-binding.md) on an
 * adapter: run with `headerFormContract(name, build)` against an app that has, besides the routes
 * of the adapter contract (`POST /foo/bar` protected in either form):
 *
 * - `GET /items` (protected; replies `{"identity":…,"query":<the query string, "?" included>}`);
 * - `DELETE /notes/:id` (protected; replies `{"deleted":<id>}`);
 * - `PUT /notes/:id` (protected; the app parses JSON; replies `{"id":<id>,"body":<parsed body>}`);
 * - `GET /stream` (protected in the header form; replies `text/plain`, the chunks of
 *   `streamedChunks()` as the framework streams them), unless `streamsReplies` is false.
 *
 * The target must be able to `listen` (requests go over a real connection).
 */
import { gzipSync } from 'node:zlib'
import { signHeaderRequest, verifyResponse } from '../src/binding'
import { NodeP256Verifier, NodeSigningKey } from '../src/crypto/node'
import {
  errorCode,
  rawRequest,
  session,
  type Build,
  type Reply,
  type Target,
} from './adapter-contract'
import {
  accessBody,
  hash,
  makeContractServer,
  nonce as newNonce,
  type ContractServer,
} from './fixtures'
import { testGlobals } from './globals'

const verifier = new NodeP256Verifier()

interface Call {
  method: string
  path: string
  headers: Record<string, string>
  body?: string
  signature: Uint8Array
}

/** What the header-form suite needs to know of an adapter. */
export interface HeaderFormContractOptions {
  /**
   * The adapter routes on the URL as parsed (a fetch handler gets a `Request`, whose URL is
   * parsed already), so a path URL parsing resolves (`/notes/./7`) is routed as the path it
   * resolves to, the one signed; node:http adapters route the path as sent, and refuse it.
   */
  routesParsedUrl?: boolean
  /**
   * The adapter sees no body on a `GET` (a fetch `Request` cannot carry one), so it refuses a
   * `GET` with a body even when the signature covers it (400 BA101), having nothing to check.
   */
  dropsGetBody?: boolean
  /** The adapter has no way for a handler to stream its reply (`GET /stream` is not served). */
  streamsReplies?: boolean
}

/** What `GET /stream` sends: three chunks, each after a turn of the event loop. */
export const STREAMED_CHUNKS = ['chunk 1\n', 'chunk 2\n', 'chunk 3\n'] as const

/** The chunks of `GET /stream`, produced one at a time across turns of the event loop. */
export async function* streamedChunks(): AsyncGenerator<Buffer> {
  for (const chunk of STREAMED_CHUNKS) {
    await new Promise(resolve => setImmediate(resolve))
    yield Buffer.from(chunk)
  }
}

/** The header-form suite. */
export function headerFormContract(
  name: string,
  build: Build,
  options: HeaderFormContractOptions = {}
): void {
  const { describe, it, expect, beforeEach, afterEach } = testGlobals()
  describe(`${name}: header-form access requests`, () => {
    let server: ContractServer
    let target: Target
    let port: number
    let creds: Awaited<ReturnType<typeof session>>

    beforeEach(async () => {
      server = makeContractServer()
      target = await build(server.auth)
      if (target.listen === undefined) throw new Error('the header-form suite needs listen()')
      port = await target.listen()
      creds = await session(server)
    })
    afterEach(async () => {
      await target.close?.()
    })

    const at = (offsetSeconds = 0) => server.clock.ms + offsetSeconds * 1000

    async function sign(
      method: string,
      path: string,
      options: {
        body?: string
        nonce?: string
        at?: number
        authority?: string
        key?: NodeSigningKey
        headers?: Record<string, string>
      } = {}
    ): Promise<Call> {
      const body = options.body
      const signed = await signHeaderRequest({
        method,
        url: `http://${options.authority ?? `127.0.0.1:${port}`}${path}`,
        ...(body === undefined ? {} : { body: new TextEncoder().encode(body) }),
        token: creds.token,
        signer: options.key ?? creds.key,
        nonce: options.nonce ?? newNonce(),
        timestamp: options.at ?? at(),
      })
      const headers: Record<string, string> = { ...options.headers, ...signed.headers }
      if (body !== undefined) headers['content-type'] ??= 'application/json'
      return {
        method,
        path,
        headers,
        ...(body === undefined ? {} : { body }),
        signature: signed.signature,
      }
    }

    async function send(call: Omit<Call, 'signature'>): Promise<Reply & { bytes: Uint8Array }> {
      const response = await fetch(`http://127.0.0.1:${port}${call.path}`, {
        method: call.method,
        headers: call.headers,
        ...(call.body === undefined ? {} : { body: call.body }),
      })
      const headers: Record<string, string> = {}
      response.headers.forEach((value, key) => (headers[key] = value))
      const bytes = new Uint8Array(await response.arrayBuffer())
      return { status: response.status, headers, text: new TextDecoder().decode(bytes), bytes }
    }

    /** Whether a reply's signature verifies with the pinned response key, as the call's answer. */
    async function replyVerifies(reply: Reply & { bytes: Uint8Array }, call: Call) {
      return verifyResponse(
        {
          status: reply.status,
          headers: reply.headers,
          body: reply.bytes,
          requestSignature: call.signature,
        },
        verifier,
        await server.auth.responsePublicKey()
      )
    }

    /** Sends a signed call and checks the reply's signature with the pinned response key. */
    async function verified(call: Call): Promise<unknown> {
      const reply = await send(call)
      expect(reply.status).toBe(200)
      expect(await replyVerifies(reply, call)).toBe(true)
      // No validator the app did not set (docs/http-binding.md §3, "Caches"; Express adds one).
      expect(reply.headers.etag).toBeUndefined()
      return JSON.parse(reply.text)
    }

    /** A call's header fields as raw request lines. */
    const lines = (call: Call): string[] =>
      Object.entries(call.headers).map(([k, v]) => `${k}: ${v}`)

    /** A refusal, after which the same request (same nonce) still goes through. */
    async function refused(
      good: Call,
      bad: Omit<Call, 'signature'>,
      status: number,
      code: string
    ): Promise<void> {
      const reply = await send(bad)
      expect([reply.status, errorCode(reply)]).toEqual([status, code])
      expect(reply.headers.signature).toBeUndefined()
      expect((await send(good)).status).toBe(200)
    }

    it('takes a GET with a query, covered, and signs the reply', async () => {
      const call = await sign('GET', '/items?limit=10&cursor=abc%20def')
      expect(await verified(call)).toEqual({
        identity: hash('identity'),
        query: '?limit=10&cursor=abc%20def',
      })
    })

    it('takes a DELETE and a PUT with a body the app parsed', async () => {
      expect(await verified(await sign('DELETE', '/notes/7'))).toEqual({ deleted: '7' })
      const put = await sign('PUT', '/notes/7', { body: '{"text":"hello","n":1}' })
      expect(await verified(put)).toEqual({ id: '7', body: { text: 'hello', n: 1 } })
    })

    it('takes both forms on one route', async () => {
      const classic = await target.post(
        '/foo/bar',
        accessBody(creds.token, creds.key, { at: at() })
      )
      expect(classic.status).toBe(200)
      const call = await sign('POST', '/foo/bar', { body: '{"foo":"x","bar":"y"}' })
      expect((await send(call)).status).toBe(200)
    })

    it('refuses a request without credentials with 401 BA404', async () => {
      const reply = await send({ method: 'GET', path: '/items', headers: {} })
      expect([reply.status, errorCode(reply)]).toEqual([401, 'BA404'])
    })

    it('refuses a changed method, path, query, authority or body (401 BA201)', async () => {
      const changes: [
        string,
        string,
        string | undefined,
        (call: Call) => Omit<Call, 'signature'>,
      ][] = [
        ['DELETE', '/notes/7', undefined, call => ({ ...call, method: 'PUT' })],
        ['DELETE', '/notes/7', undefined, call => ({ ...call, path: '/notes/8' })],
        ['GET', '/items?limit=10', undefined, call => ({ ...call, path: '/items?limit=11' })],
        ['GET', '/items', undefined, call => ({ ...call, path: '/items?x=1' })],
        ['PUT', '/notes/7', '{"text":"hello"}', call => ({ ...call, body: '{"text":"hellO"}' })],
      ]
      for (const [method, path, body, change] of changes) {
        const call = await sign(method, path, body === undefined ? {} : { body })
        await refused(call, change(call), 401, 'BA201')
      }
      const elsewhere = await sign('GET', '/items', { authority: 'api.example.com' })
      const reply = await send(elsewhere)
      expect([reply.status, errorCode(reply)]).toEqual([401, 'BA201'])
    })

    it('refuses a missing or extra covered component, a wrong alg or tag (400 BA101)', async () => {
      const variants: ((input: string) => string)[] = [
        input => input.replace(' "authorization"', ''),
        input => input.replace('"authorization"', '"authorization" "content-type"'),
        input => input.replace('ecdsa-p256-sha256', 'ecdsa-p384-sha384'),
        input => input.replace('tag="better-auth"', 'tag="other"'),
        input => input.replace(';alg="ecdsa-p256-sha256"', ''),
      ]
      for (const change of variants) {
        const call = await sign('GET', '/items')
        const input = call.headers['signature-input'] as string
        expect(change(input)).not.toBe(input)
        const bad = { ...call, headers: { ...call.headers, 'signature-input': change(input) } }
        await refused(call, bad, 400, 'BA101')
      }
    })

    it('refuses a signature by another key (401 BA201)', async () => {
      const good = await sign('DELETE', '/notes/1')
      const nonce = /nonce="([^"]+)"/.exec(good.headers['signature-input'] as string)?.[1]
      const other = await sign('DELETE', '/notes/1', {
        key: NodeSigningKey.generate(),
        ...(nonce === undefined ? {} : { nonce }),
      })
      await refused(good, other, 401, 'BA201')
    })

    it('refuses a created outside the window (422 BA501) or in the future (422 BA502)', async () => {
      const stale = await send(await sign('GET', '/items', { at: at(-31) }))
      expect([stale.status, errorCode(stale)]).toEqual([422, 'BA501'])
      const future = await send(await sign('GET', '/items', { at: at(10) }))
      expect([future.status, errorCode(future)]).toEqual([422, 'BA502'])
      expect((await send(await sign('GET', '/items', { at: at(-29) }))).status).toBe(200)
    })

    it('refuses a reused nonce (401 BA304), also across the two forms', async () => {
      const call = await sign('GET', '/items')
      expect((await send(call)).status).toBe(200)
      const again = await send(call)
      expect([again.status, errorCode(again)]).toEqual([401, 'BA304'])

      const n1 = newNonce()
      const classic = accessBody(creds.token, creds.key, { at: at(), nonce: n1 })
      expect((await target.post('/foo/bar', classic)).status).toBe(200)
      const header = await send(await sign('GET', '/items', { nonce: n1 }))
      expect([header.status, errorCode(header)]).toEqual([401, 'BA304'])

      const n2 = newNonce()
      expect((await send(await sign('GET', '/items', { nonce: n2 }))).status).toBe(200)
      const reused = await target.post(
        '/foo/bar',
        accessBody(creds.token, creds.key, { at: at(), nonce: n2 })
      )
      expect([reused.status, errorCode(reused)]).toEqual([401, 'BA304'])
    })

    it('refuses malformed structured fields and an oversized field (400 BA101)', async () => {
      const changes: ((headers: Record<string, string>) => Record<string, string>)[] = [
        headers => ({ ...headers, signature: 'ba=not-bytes' }),
        headers => ({ ...headers, 'signature-input': 'ba=("@method"' }),
        headers => ({ ...headers, signature: `${headers.signature as string}, x=:AAAA:` }),
        headers => ({
          ...headers,
          'signature-input': `${headers['signature-input'] as string};x="${'a'.repeat(1100)}"`,
        }),
      ]
      for (const change of changes) {
        const call = await sign('GET', '/items')
        await refused(call, { ...call, headers: change(call.headers) }, 400, 'BA101')
      }
    })

    it('never routes a path URL parsing resolves as another than the one signed', async () => {
      // Each signed for the path a URL parser makes of it (what `@path` covers) and sent as it is:
      // a node:http router would take `/notes/%2e%2e` for a note, where `/` was signed.
      const cases: [sent: string, parsed: string][] = [
        ['/notes/%2e%2e', '/'],
        ['/notes/x/%2E./7', '/notes/7'],
        ['/notes/./7', '/notes/7'],
        ['/notes/.%2e/notes/7', '/notes/7'],
        ['/notes\\7', '/notes/7'],
      ]
      let refusedCount = 0
      for (const [sent, parsed] of cases) {
        const call = await sign('DELETE', parsed)
        const head = [`DELETE ${sent} HTTP/1.1`, `Host: 127.0.0.1:${port}`, ...lines(call)]
        const reply = await rawRequest(port, [...head, 'Connection: close', '', ''].join('\r\n'))
        if (options.routesParsedUrl === true) {
          // Routed as parsed, which is what was signed: no note at `/`, note 7 otherwise.
          if (parsed === '/') expect([sent, reply.status]).toEqual([sent, 404])
          else
            expect([sent, reply.status, JSON.parse(reply.text)]).toEqual([
              sent,
              200,
              { deleted: '7' },
            ])
        } else if (reply.status === 404) {
          // The router took it for no route: nothing protected ran.
          expect(reply.headers.signature).toBeUndefined()
        } else {
          expect([sent, reply.status, errorCode(reply)]).toEqual([sent, 400, 'BA101'])
          refusedCount++
          // Nothing consumed: the same request at the path it was signed for goes through.
          if (parsed !== '/') expect((await send(call)).status).toBe(200)
        }
      }
      // Routers differ on which of them reach the route; each node:http adapter has some that do.
      if (options.routesParsedUrl !== true) expect(refusedCount).toBeGreaterThan(0)
    })

    it('refuses a body with a content coding (415 BA606), and takes identity', async () => {
      const json = '{"text":"hello"}'
      const coded = new Uint8Array(gzipSync(json))
      for (const method of ['PUT', 'DELETE']) {
        const url = `http://127.0.0.1:${port}/notes/7`
        // The digest over the bytes as sent, as the spec says: refused all the same.
        const signed = await signHeaderRequest({
          method,
          url,
          body: coded,
          token: creds.token,
          signer: creds.key,
          nonce: newNonce(),
          timestamp: at(),
        })
        const headers = {
          ...signed.headers,
          'content-type': 'application/json',
          'content-encoding': 'gzip',
        }
        const reply = await fetch(url, { method, headers, body: coded })
        const text = await reply.text()
        // 415 BA606, from the adapter, or from its error handling where the platform's parser
        // refuses the coded bytes first (Nest on Fastify decodes no coding).
        expect([
          method,
          reply.status,
          errorCode({ status: reply.status, headers: {}, text }),
        ]).toEqual([method, 415, 'BA606'])
        expect(reply.headers.get('signature')).toBeNull()
      }
      const identity = await sign('PUT', '/notes/7', {
        body: json,
        headers: { 'content-encoding': 'identity' },
      })
      expect(await verified(identity)).toEqual({ id: '7', body: { text: 'hello' } })
    })

    it('refuses a GET whose body the signature does not cover (400 BA101)', async () => {
      const body = '{"a":1}'
      const raw = (call: Call, framing: string[], sent: string) =>
        rawRequest(
          port,
          [
            `GET /items HTTP/1.1`,
            `Host: 127.0.0.1:${port}`,
            ...lines(call),
            'Content-Type: application/json',
            ...framing,
            'Connection: close',
            '',
            sent,
          ].join('\r\n')
        )
      const hex = Buffer.byteLength(body).toString(16)
      const framings: [string[], string][] = [
        [[`Content-Length: ${Buffer.byteLength(body)}`], body],
        [['Transfer-Encoding: chunked'], `${hex}\r\n${body}\r\n0\r\n\r\n`],
      ]
      for (const [framing, sent] of framings) {
        const call = await sign('GET', '/items')
        const reply = await raw(call, framing, sent)
        expect([framing, reply.status, errorCode(reply)]).toEqual([framing, 400, 'BA101'])
        expect(reply.headers.signature).toBeUndefined()
        // Nothing consumed: the same signed request without the body goes through.
        expect((await send(call)).status).toBe(200)
      }
      // Covered, the body is checked like any other: taken, or refused where none reaches the check.
      const covered = await sign('GET', '/items', { body })
      const reply = await raw(covered, [`Content-Length: ${Buffer.byteLength(body)}`], body)
      if (options.dropsGetBody === true) {
        expect([reply.status, errorCode(reply)]).toEqual([400, 'BA101'])
      } else {
        expect(reply.status).toBe(200)
        expect(await replyVerifies({ ...reply, bytes: Buffer.from(reply.text) }, covered)).toBe(
          true
        )
      }
    })

    it('takes an empty chunked body for no body', async () => {
      const call = await sign('DELETE', '/notes/7')
      const head = [
        'DELETE /notes/7 HTTP/1.1',
        `Host: 127.0.0.1:${port}`,
        ...lines(call),
        // A type every platform takes (Fastify refuses a body without one).
        'Content-Type: text/plain',
        'Transfer-Encoding: chunked',
        'Connection: close',
        '',
        '0',
        '',
        '',
      ].join('\r\n')
      const reply = await rawRequest(port, head)
      expect([reply.status, JSON.parse(reply.text)]).toEqual([200, { deleted: '7' }])
    })

    it('answers a body that does not decode as its Content-Encoding says with 415 BA606', async () => {
      const json = '{"text":"hello"}'
      for (const coding of ['gzip', 'br', 'deflate']) {
        const call = await sign('PUT', '/notes/7', {
          body: json,
          headers: { 'content-encoding': coding },
        })
        const reply = await send(call)
        expect([coding, reply.status, errorCode(reply)]).toEqual([coding, 415, 'BA606'])
        expect(reply.headers['content-type']).toMatch(/^application\/json/)
        expect(reply.text).not.toContain(' at ')
        expect(reply.headers.signature).toBeUndefined()
      }
    })

    it('signs a streamed reply over all of its bytes, once it has ended', async () => {
      if (options.streamsReplies === false) return
      const call = await sign('GET', '/stream')
      const reply = await send(call)
      expect([reply.status, reply.text]).toEqual([200, STREAMED_CHUNKS.join('')])
      expect(reply.headers['content-type']).toMatch(/^text\/plain/)
      // Held until the end, then sent whole: its length is known, and covered by the digest.
      expect(reply.headers['content-length']).toBe(String(reply.bytes.length))
      expect(reply.headers['signature-input']).toContain('"content-digest"')
      expect(await replyVerifies(reply, call)).toBe(true)
    })

    it('signs a reply to HEAD over no body, where the route takes HEAD', async () => {
      const call = await sign('HEAD', '/items')
      const reply = await send(call)
      // Routers that take HEAD on a GET route answer it (Express, Koa, Nest); others do not.
      if (reply.status === 404 || reply.status === 405) return
      expect([reply.status, reply.bytes.length]).toEqual([200, 0])
      expect(reply.headers['signature-input']).not.toContain('content-digest')
      expect(await replyVerifies(reply, call)).toBe(true)
    })

    it('refuses duplicated header lines (400 BA101), whatever the case of their names', async () => {
      const call = await sign('GET', '/items')
      const head = (fields: string[]) =>
        ['GET /items HTTP/1.1', `Host: 127.0.0.1:${port}`, ...fields, 'Connection: close'].join(
          '\r\n'
        ) + '\r\n\r\n'
      for (const name of ['authorization', 'signature', 'signature-input']) {
        const title = name.replace(
          /(^|-)([a-z])/g,
          (_m, dash: string, c: string) => dash + c.toUpperCase()
        )
        for (const again of [name, name.toUpperCase(), title]) {
          const sent = lines(call)
          sent.push(`${again}: ${call.headers[name] as string}`)
          const reply = await rawRequest(port, head(sent))
          expect([again, reply.status, errorCode(reply)]).toEqual([again, 400, 'BA101'])
        }
      }
      // The same request with its field names in capitals is still the header form, and valid.
      const capitals = Object.entries(call.headers).map(([k, v]) => `${k.toUpperCase()}: ${v}`)
      const reply = await rawRequest(port, head(capitals))
      expect(reply.status).toBe(200)
      // A name that differs in more than the case of its letters is another field, not a second
      // line of this one.
      const near = [...lines(await sign('GET', '/items')), 'Signature_Input: ba=("@method")']
      expect((await rawRequest(port, head(near))).status).toBe(200)
    })
  })
}
