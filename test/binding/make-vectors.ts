/**
 * Writes test/fixtures/http-binding-vectors.json: the header form's test vectors, and their
 * document, docs/http-binding-vectors.md.
 *
 *   npx tsx test/binding/make-vectors.ts
 *
 * ECDSA signatures are randomized, so a run writes new signatures: the vectors are verifiable,
 * not reproducible. The keys are kept from the existing file when there is one, so a re-run
 * changes signatures only. Invalid cases are made by signing what a conforming client would
 * not (an extra component, a wrong tag …) with the right key, or by altering a valid request
 * after it was signed; each names the error code a server must answer.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { DOCUMENT_PATH, readVectors, renderVectors } from './vectors-doc'
import { join } from 'node:path'
import {
  byteSequence,
  joinBase,
  serializeSignatureParams,
  signatureBase,
  type ComponentId,
  type SignatureParams,
} from '../../src/binding/base'
import { contentDigest } from '../../src/binding/digest'
import { signHeaderRequest } from '../../src/binding/request'
import { signResponse } from '../../src/binding/response'
import { encodeNonce, decodeSignature } from '../../src/codec/cesr'
import { formatTimestamp } from '../../src/codec/timestamp'
import { Blake3Hasher } from '../../src/crypto/blake3'
import { NodeSigningKey } from '../../src/crypto/node'
import { encodeToken, serializeClaims, type AccessTokenClaims } from '../../src/messages/token'

const FILE = join(__dirname, '..', 'fixtures', 'http-binding-vectors.json')
const KEY_NAMES = ['serverAccess', 'access', 'response', 'other'] as const
type KeyName = (typeof KEY_NAMES)[number]

/** 2025-10-19T17:26:30.000Z: the fixed "now" of every vector unless a case says otherwise. */
const NOW = Date.UTC(2025, 9, 19, 17, 26, 30)
const CREATED = NOW - 2000

interface KeyEntry {
  privateKeyPem: string
  publicKey: string
}

function loadKeys(): Record<KeyName, NodeSigningKey> {
  const old = existsSync(FILE)
    ? (JSON.parse(readFileSync(FILE, 'utf8')) as { keys?: Record<string, KeyEntry> }).keys
    : undefined
  const keys = {} as Record<KeyName, NodeSigningKey>
  for (const name of KEY_NAMES) {
    const pem = old?.[name]?.privateKeyPem
    keys[name] = pem === undefined ? NodeSigningKey.generate() : NodeSigningKey.from(pem)
  }
  return keys
}

/** A nonce from a fixed byte pattern, so that the vectors read easily. */
const nonceOf = (n: number): string => encodeNonce(new Uint8Array(16).fill(n))

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text)

interface RequestVector {
  name: string
  description: string
  method: string
  url: string
  expectedAuthority?: string
  headers: Record<string, string | string[]>
  body?: string
  nonce?: string
  created?: number
  signatureBase?: string
  signature?: string
  now?: string
  /** For an invalid case: present it twice; the second time fails. */
  presentTwice?: boolean
  error?: string
}

interface ResponseVector {
  name: string
  description: string
  request: string
  status: number
  headers: Record<string, string | string[]>
  body?: string
  signatureBase?: string
  signature?: string
  /** For a valid case: false when the reply is legitimately unsigned (status ≥ 400). */
  signed?: boolean
  error?: string
}

async function main(): Promise<void> {
  const keys = loadKeys()
  const pub = (name: KeyName): string => keys[name].publicKeyText
  const hasher = new Blake3Hasher()
  const rotationHash = hasher.sum(pub('other'))
  const claims: AccessTokenClaims = {
    serverIdentity: pub('serverAccess'),
    device: hasher.sum(pub('access') + rotationHash),
    identity: hasher.sum('identity of the test vectors'),
    publicKey: pub('access'),
    rotationHash,
    issuedAt: formatTimestamp(NOW - 60_000),
    expiry: formatTimestamp(NOW + 14 * 60_000),
    refreshExpiry: formatTimestamp(NOW + 12 * 3600_000),
    attributes: { permissionsByRole: { admin: ['read', 'write'] } },
  }
  const json = serializeClaims(claims)
  const token = encodeToken(await keys.serverAccess.sign(utf8(json)), json)

  const requests: RequestVector[] = []
  const signed = new Map<string, { vector: RequestVector; signature: Uint8Array }>()

  async function request(
    name: string,
    description: string,
    method: string,
    url: string,
    nonceByte: number,
    options: {
      headers?: Record<string, string>
      body?: string
      keyid?: boolean
      signedUrl?: string
      expectedAuthority?: string
    } = {}
  ): Promise<RequestVector> {
    const body = options.body === undefined ? undefined : utf8(options.body)
    const nonce = nonceOf(nonceByte)
    const result = await signHeaderRequest({
      method,
      url: options.signedUrl ?? url,
      ...(body === undefined ? {} : { body }),
      token,
      signer: keys.access,
      nonce,
      timestamp: CREATED,
      ...(options.keyid === true ? { keyid: pub('access') } : {}),
    })
    const vector: RequestVector = {
      name,
      description,
      method: result.method,
      url,
      ...(options.expectedAuthority === undefined
        ? {}
        : { expectedAuthority: options.expectedAuthority }),
      headers: { ...options.headers, ...result.headers },
      ...(options.body === undefined ? {} : { body: options.body }),
      nonce,
      created: Math.floor(CREATED / 1000),
      signatureBase: result.signatureBase,
      signature: Buffer.from(result.signature).toString('base64'),
    }
    requests.push(vector)
    signed.set(name, { vector, signature: result.signature })
    return vector
  }

  const get = await request(
    'get-with-query',
    'GET with a query string; no body, so no Content-Digest',
    'GET',
    'https://api.example.com/items?limit=10&cursor=abc%20def',
    1
  )
  await request(
    'delete',
    'DELETE without a query: @query is "?"',
    'DELETE',
    'https://api.example.com/items/42',
    2
  )
  const put = await request(
    'put-json',
    'PUT with a JSON body: Content-Digest is covered; keyid names the access key',
    'PUT',
    'https://api.example.com/items/42',
    3,
    {
      headers: { 'content-type': 'application/json' },
      body: '{"name":"widget","tags":["a","b"],"price":12.5}',
      keyid: true,
    }
  )
  await request(
    'post-form',
    'POST of an HTML form (application/x-www-form-urlencoded) to a path with a query',
    'POST',
    'https://api.example.com:8443/session/login?next=%2Fhome',
    4,
    {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'user=alice&note=two+words&x=%C3%A9',
    }
  )
  await request(
    'behind-proxy',
    'Signed for https://api.example.com; the server behind its proxy sees http://10.0.0.5:8080 and verifies with expectedAuthority',
    'GET',
    'http://10.0.0.5:8080/items',
    5,
    { signedUrl: 'https://api.example.com/items', expectedAuthority: 'api.example.com' }
  )

  // Invalid requests ------------------------------------------------------------------------
  const invalid: RequestVector[] = []
  const base = (v: RequestVector) => ({
    method: v.method,
    url: v.url,
    headers: { ...v.headers },
    ...(v.body === undefined ? {} : { body: v.body }),
  })
  const bad = (
    name: string,
    description: string,
    error: string,
    from: RequestVector,
    change: Partial<RequestVector> = {}
  ): void => {
    invalid.push({ name, description, ...base(from), ...change, error })
  }

  /** Signs, with the access key (or `key`), whatever components and parameters a case needs. */
  async function custom(
    from: RequestVector,
    components: ComponentId[],
    params: SignatureParams,
    key: KeyName = 'access',
    extraHeaders: Record<string, string> = {}
  ): Promise<Record<string, string | string[]>> {
    const headers: Record<string, string | string[]> = { ...from.headers, ...extraHeaders }
    const text = signatureBase({ method: from.method, url: from.url, headers }, components, params)
    const signature = decodeSignature(await keys[key].sign(utf8(text))) as Uint8Array
    headers['signature-input'] = 'ba=' + serializeSignatureParams(components, params)
    headers['signature'] = 'ba=' + byteSequence(signature)
    return headers
  }
  const stdParams = (over: Record<string, string | number> = {}): Map<string, string | number> =>
    new Map<string, string | number>(
      Object.entries({
        created: Math.floor(CREATED / 1000),
        nonce: nonceOf(9),
        alg: 'ecdsa-p256-sha256',
        tag: 'better-auth',
        ...over,
      })
    )
  const STD: ComponentId[] = ['@method', '@authority', '@path', '@query', 'authorization']

  bad('changed-method', 'get-with-query sent as POST', 'BA201', get, { method: 'POST' })
  bad('changed-path', 'get-with-query to another path', 'BA201', get, {
    url: 'https://api.example.com/other?limit=10&cursor=abc%20def',
  })
  bad('changed-query', 'get-with-query with another query', 'BA201', get, {
    url: 'https://api.example.com/items?limit=1000&cursor=abc%20def',
  })
  bad('changed-authority', 'get-with-query sent to another host', 'BA201', get, {
    url: 'https://evil.example.net/items?limit=10&cursor=abc%20def',
  })
  bad(
    'wrong-expected-authority',
    'behind-proxy verified for another expected authority',
    'BA201',
    signed.get('behind-proxy')!.vector,
    { expectedAuthority: 'admin.example.com' }
  )
  bad('changed-body', 'put-json with another body (the digest no longer matches)', 'BA201', put, {
    body: '{"name":"widget","tags":["a","b"],"price":0.5}',
  })
  const newBody = '{"name":"gadget"}'
  bad(
    'changed-body-and-digest',
    'put-json with another body and its digest (the signature no longer matches)',
    'BA201',
    put,
    {
      body: newBody,
      headers: { ...put.headers, 'content-digest': contentDigest(utf8(newBody)) },
    }
  )
  bad(
    'body-not-covered',
    'a body added to get-with-query: content-digest is not covered',
    'BA101',
    get,
    {
      body: 'smuggled',
    }
  )
  bad('missing-content-digest-field', 'put-json without its Content-Digest field', 'BA101', put, {
    headers: Object.fromEntries(
      Object.entries(put.headers).filter(([k]) => k !== 'content-digest')
    ),
  })
  bad(
    'malformed-content-digest',
    'put-json whose Content-Digest is not a dictionary',
    'BA101',
    put,
    {
      headers: { ...put.headers, 'content-digest': 'sha-256=abc' },
    }
  )
  bad('missing-component', 'signed without "@query"', 'BA101', get, {
    headers: await custom(get, ['@method', '@authority', '@path', 'authorization'], stdParams()),
  })
  bad('missing-authorization-component', 'signed without "authorization"', 'BA101', get, {
    headers: await custom(get, ['@method', '@authority', '@path', '@query'], stdParams()),
  })
  bad('extra-component', 'also covers "content-type"', 'BA101', put, {
    headers: await custom(put, [...STD, 'content-digest', 'content-type'], stdParams()),
  })
  bad('unknown-derived-component', 'covers "@target-uri"', 'BA101', get, {
    headers: await custom(get, [...STD, '@target-uri'], stdParams()),
  })
  bad('component-with-parameters', '"@query";req', 'BA101', get, {
    headers: {
      ...get.headers,
      'signature-input': (get.headers['signature-input'] as string).replace(
        '"@query"',
        '"@query";req'
      ),
    },
  })
  bad('wrong-alg', 'alg="ecdsa-p384-sha384"', 'BA101', get, {
    headers: await custom(get, STD, stdParams({ alg: 'ecdsa-p384-sha384' })),
  })
  bad('missing-alg', 'no alg parameter', 'BA101', get, {
    headers: await custom(get, STD, new Map([...stdParams()].filter(([k]) => k !== 'alg'))),
  })
  bad('wrong-tag', 'tag="better-auth-response" on a request', 'BA101', get, {
    headers: await custom(get, STD, stdParams({ tag: 'better-auth-response' })),
  })
  bad('missing-tag', 'no tag parameter', 'BA101', get, {
    headers: await custom(get, STD, new Map([...stdParams()].filter(([k]) => k !== 'tag'))),
  })
  bad('missing-nonce', 'no nonce parameter', 'BA101', get, {
    headers: await custom(get, STD, new Map([...stdParams()].filter(([k]) => k !== 'nonce'))),
  })
  bad('malformed-nonce', 'nonce is not a qualified 128-bit nonce', 'BA101', get, {
    headers: await custom(get, STD, stdParams({ nonce: 'not-a-nonce' })),
  })
  bad('unknown-parameter', 'an expires parameter (the window governs)', 'BA101', get, {
    headers: await custom(get, STD, stdParams({ expires: Math.floor(CREATED / 1000) + 60 })),
  })
  bad('another-key', "signed by a key that is not the token's access key", 'BA201', get, {
    headers: await custom(get, STD, stdParams(), 'other'),
  })
  bad(
    'keyid-mismatch',
    'keyid names another key (the signature itself is by the access key)',
    'BA201',
    get,
    {
      headers: await custom(get, STD, stdParams({ keyid: pub('other') })),
    }
  )
  bad('stale', 'now is 31 s after created', 'BA501', get, {
    now: formatTimestamp(CREATED + 31_000),
  })
  bad('future', 'now is 6 s before created (skew is 5 s)', 'BA502', get, {
    now: formatTimestamp(CREATED - 6_000),
  })
  bad('expired-token', 'now is after the token expiry (checked before the window)', 'BA401', get, {
    now: formatTimestamp(NOW + 15 * 60_000),
  })
  bad('future-token', 'now is before the token issuedAt by more than the skew', 'BA403', get, {
    now: formatTimestamp(NOW - 70_000),
  })
  bad('malformed-token', 'the token is base64url but not a token', 'BA402', get, {
    headers: await custom(get, STD, stdParams(), 'access', {
      authorization: 'BetterAuth AAAAAAAA',
    }),
  })
  bad('replay', 'get-with-query presented twice: the nonce is already reserved', 'BA304', get, {
    presentTwice: true,
  })
  const withDecimal = await custom(get, STD, stdParams())
  bad('decimal-created', 'created=1760894788.0 is not an integer', 'BA101', get, {
    headers: {
      ...withDecimal,
      'signature-input': (withDecimal['signature-input'] as string).replace(
        /created=(\d+)/,
        'created=$1.0'
      ),
    },
  })
  bad('string-created', 'created is a string', 'BA101', get, {
    headers: await custom(get, STD, stdParams({ created: String(Math.floor(CREATED / 1000)) })),
  })
  bad('repeated-parameter', 'created given twice', 'BA101', get, {
    headers: {
      ...get.headers,
      'signature-input': (get.headers['signature-input'] as string) + ';created=1',
    },
  })
  bad('no-authorization', 'no Authorization field', 'BA404', get, {
    headers: Object.fromEntries(Object.entries(get.headers).filter(([k]) => k !== 'authorization')),
  })
  bad('other-scheme', 'Authorization: Bearer …', 'BA404', get, {
    headers: { ...get.headers, authorization: 'Bearer abc' },
  })
  bad('missing-signature', 'no Signature field', 'BA101', get, {
    headers: Object.fromEntries(Object.entries(get.headers).filter(([k]) => k !== 'signature')),
  })
  bad('missing-signature-input', 'no Signature-Input field', 'BA101', get, {
    headers: Object.fromEntries(
      Object.entries(get.headers).filter(([k]) => k !== 'signature-input')
    ),
  })
  bad('malformed-signature-input', 'Signature-Input is not a structured dictionary', 'BA101', get, {
    headers: { ...get.headers, 'signature-input': 'ba=("@method" "@path"' },
  })
  bad('signature-input-not-inner-list', 'the ba member is a string', 'BA101', get, {
    headers: { ...get.headers, 'signature-input': 'ba="@method"' },
  })
  bad('malformed-signature', 'Signature is not a byte sequence', 'BA101', get, {
    headers: { ...get.headers, signature: 'ba="abc"' },
  })
  bad('short-signature', 'Signature is 63 bytes', 'BA101', get, {
    headers: { ...get.headers, signature: 'ba=' + byteSequence(new Uint8Array(63).fill(7)) },
  })
  bad('cesr-signature', "the protocol's 0I… text instead of a byte sequence", 'BA101', get, {
    headers: { ...get.headers, signature: 'ba="0I' + 'A'.repeat(86) + '"' },
  })
  bad('duplicated-signature', 'two Signature field lines', 'BA101', get, {
    headers: {
      ...get.headers,
      signature: [get.headers.signature as string, get.headers.signature as string],
    },
  })
  bad(
    'duplicated-signature-input-joined',
    'two Signature-Input lines as a Headers object joins them',
    'BA101',
    get,
    {
      headers: {
        ...get.headers,
        'signature-input': `${get.headers['signature-input'] as string}, ${get.headers['signature-input'] as string}`,
      },
    }
  )
  bad('duplicated-authorization', 'two Authorization field lines', 'BA101', get, {
    headers: {
      ...get.headers,
      authorization: [get.headers.authorization as string, 'BetterAuth abc'],
    },
  })
  bad('multiple-signatures', 'a second signature, labelled other, beside ba', 'BA101', get, {
    headers: {
      ...get.headers,
      'signature-input': `${get.headers['signature-input'] as string}, other=("@method");created=1`,
      signature: `${get.headers.signature as string}, other=:AAAA:`,
    },
  })
  bad('wrong-label', 'the signature is labelled sig1', 'BA101', get, {
    headers: {
      ...get.headers,
      'signature-input': (get.headers['signature-input'] as string).replace(/^ba=/, 'sig1='),
      signature: (get.headers.signature as string).replace(/^ba=/, 'sig1='),
    },
  })
  bad(
    'oversized-signature-input',
    'Signature-Input longer than 1024 characters, and valid but for its length (spaces between the components)',
    'BA101',
    get,
    {
      headers: {
        ...get.headers,
        'signature-input': (get.headers['signature-input'] as string).replace(
          '"@method" ',
          `"@method"${' '.repeat(1100)}`
        ),
      },
    }
  )
  bad(
    'body-not-received',
    'Content-Length announces a body that did not reach the check (a runtime that drops the body of a GET)',
    'BA101',
    get,
    { headers: { ...get.headers, 'content-length': '8' } }
  )
  bad(
    'authorization-two-schemes',
    'two Authorization field lines, BetterAuth and Bearer: duplicated, whatever the schemes',
    'BA101',
    get,
    {
      headers: {
        ...get.headers,
        authorization: [get.headers.authorization as string, 'Bearer abc'],
      },
    }
  )

  // Replies -------------------------------------------------------------------------------
  const responses: ResponseVector[] = []
  const invalidResponses: ResponseVector[] = []
  async function reply(
    name: string,
    description: string,
    requestName: string,
    status: number,
    body?: string,
    headers: Record<string, string> = {}
  ): Promise<ResponseVector> {
    const req = signed.get(requestName)!
    const added = await signResponse(
      {
        status,
        ...(body === undefined ? {} : { body: utf8(body) }),
        requestSignature: req.signature,
        timestamp: NOW - 1000,
        keyid: pub('response'),
      },
      keys.response
    )
    const sigB64 = /^ba=:(.*):$/.exec(added.signature as string)![1] as string
    const parsedBase = reconstructReplyBase(status, added, req.signature)
    const vector: ResponseVector = {
      name,
      description,
      request: requestName,
      status,
      headers: { ...headers, ...added },
      ...(body === undefined ? {} : { body }),
      signatureBase: parsedBase,
      signature: sigB64,
      signed: true,
    }
    responses.push(vector)
    return vector
  }
  const ok = await reply(
    'put-json-200',
    'a JSON reply to put-json',
    'put-json',
    200,
    '{"id":42,"name":"widget"}',
    {
      'content-type': 'application/json',
    }
  )
  const empty = await reply('delete-204', 'an empty reply to delete', 'delete', 204)
  responses.push({
    name: 'get-401-unsigned',
    description: 'an error reply (status 400 or more) may be unsigned',
    request: 'get-with-query',
    status: 401,
    headers: { 'content-type': 'application/json', 'www-authenticate': 'BetterAuth' },
    body: '{"error":{"code":"BA201","message":"request signature does not verify"}}',
    signed: false,
  })

  const badReply = (
    name: string,
    description: string,
    error: string,
    from: ResponseVector,
    change: Partial<ResponseVector>
  ): void => {
    const { signatureBase: _b, signature: _s, signed: _d, ...rest } = from
    invalidResponses.push({
      ...rest,
      headers: { ...from.headers },
      ...change,
      name,
      description,
      error,
    })
  }
  badReply('changed-status', 'put-json-200 with status 201', 'BA201', ok, { status: 201 })
  badReply('changed-body', 'put-json-200 with another body', 'BA201', ok, {
    body: '{"id":43,"name":"widget"}',
  })
  badReply('other-request', 'put-json-200 presented as the reply to post-form', 'BA201', ok, {
    request: 'post-form',
  })
  badReply('unsigned-200', 'a 2xx reply without a signature', 'BA204', empty, {
    headers: {},
  })
  badReply('keyid-mismatch', 'keyid names another key', 'BA201', empty, {
    headers: {
      ...empty.headers,
      'signature-input': (empty.headers['signature-input'] as string).replace(
        pub('response'),
        pub('other')
      ),
    },
  })
  // Replies signed by the wrong key, or with a wrong tag or component set.
  const customReply = async (
    from: ResponseVector,
    components: ComponentId[],
    params: SignatureParams,
    key: KeyName = 'response'
  ): Promise<Record<string, string | string[]>> => {
    const req = signed.get(from.request)!
    const text = signatureBase(
      { status: from.status, headers: from.headers, requestSignature: req.signature },
      components,
      params
    )
    const signature = decodeSignature(await keys[key].sign(utf8(text))) as Uint8Array
    return {
      ...from.headers,
      'signature-input': 'ba=' + serializeSignatureParams(components, params),
      signature: 'ba=' + byteSequence(signature),
    }
  }
  const BOUND: ComponentId = [
    'signature',
    new Map<string, string | boolean>([
      ['req', true],
      ['key', 'ba'],
    ]),
  ]
  const replyParams = (over: Record<string, string | number> = {}): Map<string, string | number> =>
    new Map<string, string | number>(
      Object.entries({
        created: Math.floor(NOW / 1000),
        alg: 'ecdsa-p256-sha256',
        tag: 'better-auth-response',
        ...over,
      })
    )
  badReply('another-key', 'signed by a key that is not the response key', 'BA201', ok, {
    headers: await customReply(ok, ['@status', 'content-digest', BOUND], replyParams(), 'other'),
  })
  badReply('wrong-tag', 'tag="better-auth" on a reply', 'BA204', ok, {
    headers: await customReply(
      ok,
      ['@status', 'content-digest', BOUND],
      replyParams({ tag: 'better-auth' })
    ),
  })
  badReply('missing-status', 'does not cover "@status"', 'BA204', ok, {
    headers: await customReply(ok, ['content-digest', BOUND], replyParams()),
  })
  badReply('not-bound', 'does not cover the request signature', 'BA204', ok, {
    headers: await customReply(ok, ['@status', 'content-digest'], replyParams()),
  })
  badReply('body-not-covered', 'a body without "content-digest" covered', 'BA204', ok, {
    headers: await customReply(ok, ['@status', BOUND], replyParams()),
  })

  const vectors = {
    description:
      'Test vectors of the header form of the Better Auth access request (docs/http-binding.md). ' +
      'Generated by test/binding/make-vectors.ts; ECDSA signatures are randomized, so they are ' +
      'verifiable, not reproducible. Bodies are UTF-8 text. "now" applies to every case without ' +
      'its own; the window is 30 s and the clock skew 5 s. Header names are lower case; an array ' +
      'value is several field lines.',
    now: formatTimestamp(NOW),
    accessWindowSeconds: 30,
    clockSkewSeconds: 5,
    keys: Object.fromEntries(
      KEY_NAMES.map(name => [name, { privateKeyPem: keys[name].toPem(), publicKey: pub(name) }])
    ),
    keyRoles: {
      serverAccess: "the server's access key: signs the token (token.serverIdentity)",
      access: "the client's access key: token.publicKey, signs the requests",
      response: "the server's response key: signs the replies",
      other: 'an unrelated key, for signatures that must fail',
    },
    token: { claims, text: token },
    requests,
    invalidRequests: invalid,
    responses,
    invalidResponses,
  }
  writeFileSync(FILE, JSON.stringify(vectors, null, 2) + '\n')
  process.stdout.write(
    `wrote ${FILE}: ${requests.length} requests, ${invalid.length} invalid, ${responses.length} replies, ${invalidResponses.length} invalid replies\n`
  )
}

/** The base a reply was signed over, rebuilt from its headers (as a verifier would). */
function reconstructReplyBase(
  status: number,
  headers: Record<string, string>,
  requestSignature: Uint8Array
): string {
  const input = (headers['signature-input'] as string).slice(3)
  const lines: [string, string][] = [['"@status"', String(status)]]
  if (headers['content-digest'] !== undefined)
    lines.push(['"content-digest"', headers['content-digest']])
  lines.push(['"signature";req;key="ba"', byteSequence(requestSignature)])
  return joinBase(lines, input)
}

main()
  .then(() => {
    // The document of the vectors follows them (docs/http-binding-vectors.md).
    writeFileSync(DOCUMENT_PATH, renderVectors(readVectors()))
  })
  .catch(error => {
    console.error(error)
    process.exit(1)
  })
