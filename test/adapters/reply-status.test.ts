/**
 * The `status` option of the handler-style protected routes (the standalone server's `protect`,
 * the fetch adapter's `requireAccess`): the status of the handler's replies in both forms, signed
 * as such in the header form; anything but a 2xx with a body refused when the route is made.
 */
import { betterAuth } from '../../adapters/fetch'
import { createServer } from '../../adapters/node'
import { signHeaderRequest, verifyResponse } from '../../src/binding'
import { NodeP256Verifier } from '../../src/crypto/node'
import { parseEnvelope } from '../../src/messages/envelope'
import { listenerTarget, session } from '../../testing/adapter-contract'
import { accessBody, makeContractServer, nonce, type ContractServer } from '../../testing/fixtures'

let server: ContractServer
beforeEach(() => {
  server = makeContractServer()
})

type Send = (request: Request) => Promise<Response>

/** A classic and a header-form request to `url`, each answered by `send`. */
async function bothForms(send: Send, url: string) {
  const creds = await session(server)
  const id = nonce()
  const classic = await send(
    new Request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: accessBody(creds.token, creds.key, { nonce: id, at: server.clock.ms }),
    })
  )
  // The envelope's response, checked to echo the nonce (a Response the handler made is no envelope).
  const text = await classic.text()
  let classicResponse: unknown
  if (text.startsWith('{"payload":')) {
    const envelope = parseEnvelope(text)
    expect((envelope.payload.access as { nonce: string }).nonce).toBe(id)
    classicResponse = envelope.payload.response
  }
  const body = '{"text":"hi"}'
  const signed = await signHeaderRequest({
    method: 'POST',
    url,
    body: new TextEncoder().encode(body),
    token: creds.token,
    signer: creds.key,
    nonce: nonce(),
    timestamp: server.clock.ms,
  })
  const header = await send(
    new Request(url, {
      method: 'POST',
      headers: { ...signed.headers, 'content-type': 'application/json' },
      body,
    })
  )
  const bytes = new Uint8Array(await header.arrayBuffer())
  const verifies = await verifyResponse(
    {
      status: header.status,
      headers: header.headers,
      body: bytes,
      requestSignature: signed.signature,
    },
    new NodeP256Verifier(),
    await server.auth.responsePublicKey()
  )
  return {
    classic: { status: classic.status, response: classicResponse },
    header: {
      status: header.status,
      response: JSON.parse(new TextDecoder().decode(bytes)),
      verifies,
    },
  }
}

const INVALID = [204, 205, 206, 199, 300, 404, 200.5, Number.NaN]

describe('the status of a protected route', () => {
  it('fetch requireAccess: the status in both forms, signed as such in the header form', async () => {
    const auth = betterAuth(server.auth)
    const created = auth.requireAccess(({ data }) => ({ got: data }), { status: 201 })
    const answers = await bothForms(request => created(request), 'http://h/notes')
    expect(answers.classic).toEqual({ status: 201, response: { got: { foo: 'bar', bar: 'foo' } } })
    expect(answers.header).toEqual({
      status: 201,
      response: { got: { text: 'hi' } },
      verifies: true,
    })
    // Without the option, 200; a Response the handler returns keeps its own status.
    const plain = await bothForms(
      auth.requireAccess(() => ({ ok: true })),
      'http://h/x'
    )
    expect([plain.classic.status, plain.header.status]).toEqual([200, 200])
    const own = auth.requireAccess(() => Response.json({ own: true }, { status: 202 }), {
      status: 201,
    })
    expect((await bothForms(own, 'http://h/own')).header).toEqual({
      status: 202,
      response: { own: true },
      verifies: true,
    })
  })

  it('standalone protect: the status in both forms, signed as such in the header form', async () => {
    const standalone = createServer(server.auth)
    standalone.protect('/notes', ({ request }) => ({ got: request }), { status: 201 })
    standalone.protect('/plain', () => ({ ok: true }))
    const target = listenerTarget(standalone.listener)
    const port = await (target.listen as () => Promise<number>)()
    try {
      const send: Send = request => fetch(request)
      const answers = await bothForms(send, `http://127.0.0.1:${port}/notes`)
      expect(answers.classic).toEqual({
        status: 201,
        response: { got: { foo: 'bar', bar: 'foo' } },
      })
      expect(answers.header).toEqual({
        status: 201,
        response: { got: { text: 'hi' } },
        verifies: true,
      })
      const plain = await bothForms(send, `http://127.0.0.1:${port}/plain`)
      expect([plain.classic.status, plain.header.status]).toEqual([200, 200])
    } finally {
      await target.close?.()
    }
  })

  it('is refused when the route is made unless it is a 2xx with a body', () => {
    const auth = betterAuth(server.auth)
    const standalone = createServer(server.auth)
    for (const status of INVALID) {
      expect(() => auth.requireAccess(() => ({}), { status })).toThrow(TypeError)
      expect(() => standalone.protect(`/s${status}`, () => ({}), { status })).toThrow(TypeError)
    }
    expect(() => auth.requireAccess(() => ({}), { status: 207 })).not.toThrow()
  })
})
