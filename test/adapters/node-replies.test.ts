/**
 * Signed replies of the header form on node:http (adapters/shared/node.ts, `signNodeReplies`):
 * held through hooks on ServerResponse.prototype, or through replacements on the response when
 * something shadows them. Whatever way the handler writes, and whatever ran before or after the
 * check, the reply is signed over what is sent; every other response in the process is untouched.
 */
import express from 'express'
import { createServer, ServerResponse, type RequestListener, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { expressServerOptions, requireAccess } from '../../adapters/express'
import { hasJsonRoute } from '../../adapters/shared/express-json'
import { hasHeldReply } from '../../adapters/shared/node'
import { signHeaderRequest, verifyResponse } from '../../src/binding'
import { NodeP256Verifier } from '../../src/crypto/node'
import { session } from '../../testing/adapter-contract'
import { accessBody, makeContractServer, nonce, type ContractServer } from '../../testing/fixtures'
import { parseEnvelope } from '../../src/messages/envelope'

const verifier = new NodeP256Verifier()

let server: ContractServer
let listening: Server[] = []

beforeEach(() => {
  server = makeContractServer()
})
afterEach(async () => {
  for (const s of listening) {
    s.closeAllConnections()
    await new Promise(resolve => s.close(resolve))
  }
  listening = []
})

async function listen(handler: RequestListener): Promise<string> {
  return listenOn(createServer(handler))
}

async function listenOn(s: Server): Promise<string> {
  listening.push(s)
  await new Promise<void>(resolve => s.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`
}

interface Answer {
  status: number
  headers: Headers
  text: string
  /** Whether the reply carries a signature that verifies as the answer to this request. */
  verifies: boolean
}

/** Sends a header-form request for `method url` and checks the reply's signature. */
async function call(
  method: string,
  url: string,
  body?: string,
  extra: Record<string, string> = {}
): Promise<Answer> {
  const creds = await session(server)
  const bytes = body === undefined ? undefined : new TextEncoder().encode(body)
  const signed = await signHeaderRequest({
    method,
    url,
    ...(bytes === undefined ? {} : { body: bytes }),
    token: creds.token,
    signer: creds.key,
    nonce: nonce(),
    timestamp: server.clock.ms,
  })
  const response = await fetch(url, {
    method,
    headers: {
      ...signed.headers,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...extra,
    },
    ...(body === undefined ? {} : { body }),
  })
  const reply = new Uint8Array(await response.arrayBuffer())
  const verifies =
    response.headers.has('signature') &&
    (await verifyResponse(
      {
        status: response.status,
        headers: response.headers,
        body: reply,
        requestSignature: signed.signature,
      },
      verifier,
      await server.auth.responsePublicKey()
    ))
  return {
    status: response.status,
    headers: response.headers,
    text: new TextDecoder().decode(reply),
    verifies,
  }
}

describe('signed replies of the header form on node:http', () => {
  it('signs a reply written after writeHead in several chunks, strings and buffers', async () => {
    const app = express()
    app.post('/parts', requireAccess(server.auth), (_req, res) => {
      res.writeHead(201, 'Made', { 'content-type': 'application/json', 'x-part': 'head' })
      res.write('{"a":')
      res.write(Buffer.from('"é'))
      res.end('"}')
    })
    const base = await listen(app)
    const answer = await call('POST', `${base}/parts`, '{}')
    expect(answer.status).toBe(201)
    expect(answer.text).toBe('{"a":"é"}')
    expect(answer.headers.get('x-part')).toBe('head')
    expect(answer.headers.get('content-length')).toBe(String(Buffer.byteLength('{"a":"é"}')))
    expect(answer.verifies).toBe(true)
  })

  it('signs text with characters beyond ASCII sent in one piece, with its length in bytes', async () => {
    const app = express()
    app.get('/text', requireAccess(server.auth), (_req, res) => {
      res.type('text/plain').send('héllo ✓ — 👋')
    })
    const answer = await call('GET', `${await listen(app)}/text`)
    expect(answer.status).toBe(200)
    expect(answer.text).toBe('héllo ✓ — 👋')
    expect(answer.headers.get('content-length')).toBe(String(Buffer.byteLength('héllo ✓ — 👋')))
    expect(answer.verifies).toBe(true)
  })

  it('signs through a middleware that replaced res.end on the response before the check', async () => {
    const app = express()
    app.use((_req, res, next) => {
      const end = res.end
      res.end = function (this: ServerResponse, ...args: unknown[]) {
        this.setHeader('x-wrapped', 'yes')
        return (end as (...a: unknown[]) => ServerResponse).apply(this, args)
      } as typeof res.end
      next()
    })
    app.get('/me', requireAccess(server.auth), (_req, res) => {
      res.json({ me: true })
    })
    const answer = await call('GET', `${await listen(app)}/me`)
    expect(answer.status).toBe(200)
    expect(answer.headers.get('x-wrapped')).toBe('yes')
    expect(JSON.parse(answer.text)).toEqual({ me: true })
    expect(answer.verifies).toBe(true)
  })

  it('signs when a sub-application after the check gives the response another prototype', async () => {
    const sub = express()
    sub.get('/me', (_req, res) => {
      res.json({ from: 'sub' })
    })
    const app = express()
    app.use('/api', requireAccess(server.auth), sub)
    const answer = await call('GET', `${await listen(app)}/api/me`)
    expect(answer.status).toBe(200)
    expect(JSON.parse(answer.text)).toEqual({ from: 'sub' })
    expect(answer.verifies).toBe(true)
  })

  it('holds an Express response without setting a property on it (each would copy its layout)', async () => {
    const app = express()
    let own: string[] = []
    let before: string[] = []
    app.use((_req, res, next) => {
      before = Object.keys(res)
      next()
    })
    app.get('/me', requireAccess(server.auth), (_req, res) => {
      own = Object.keys(res).filter(name => !before.includes(name))
      res.json({ me: true })
    })
    const answer = await call('GET', `${await listen(app)}/me`)
    expect(answer.verifies).toBe(true)
    expect(own).toEqual([])
  })

  it('sends no Content-Length beside a Transfer-Encoding the handler chose', async () => {
    const app = express()
    app.get('/chunked', requireAccess(server.auth), (_req, res) => {
      res.set('Transfer-Encoding', 'chunked').json({ chunked: true })
    })
    const answer = await call('GET', `${await listen(app)}/chunked`)
    expect(answer.headers.get('transfer-encoding')).toBe('chunked')
    expect(answer.headers.get('content-length')).toBeNull()
    expect(JSON.parse(answer.text)).toEqual({ chunked: true })
    expect(answer.verifies).toBe(true)
  })

  it('leaves every other response of the process as it was written', async () => {
    const app = express()
    app.get('/me', requireAccess(server.auth), (_req, res) => {
      res.json({ me: true })
    })
    app.get('/open', (_req, res) => {
      res.writeHead(202, { 'content-type': 'text/plain', 'x-open': '1' })
      res.write('op')
      res.end('en')
    })
    const base = await listen(app)
    // A signed reply first, so that the hooks are in place for what follows.
    expect((await call('GET', `${base}/me`)).verifies).toBe(true)
    const plainBase = await listen((_req, res) => {
      res.setHeader('content-type', 'text/plain')
      res.end('plain')
    })
    for (const [url, status, text] of [
      [`${base}/open`, 202, 'open'],
      [plainBase, 200, 'plain'],
    ] as const) {
      const response = await fetch(url)
      expect(response.status).toBe(status)
      expect(await response.text()).toBe(text)
      expect(response.headers.get('signature')).toBeNull()
      expect(response.headers.get('signature-input')).toBeNull()
      expect(response.headers.get('content-digest')).toBeNull()
    }
    // A failed check leaves its refusal unsigned too, and the next request is signed again.
    const refused = await fetch(`${base}/me`, { headers: { authorization: 'BetterAuth x' } })
    expect(refused.status).toBe(400)
    expect(refused.headers.get('signature')).toBeNull()
    expect((await call('GET', `${base}/me`)).verifies).toBe(true)
  })

  describe("Express's res.json of a signed reply", () => {
    /** An app with the same JSON reply behind the check and on an open route. */
    let ownJson: boolean[] = []
    function jsonApp(configure: (app: express.Express) => void = () => undefined) {
      ownJson = []
      const app = express()
      configure(app)
      const reply = (req: express.Request, res: express.Response) => {
        ownJson.push(Object.hasOwn(res, 'json'))
        res.status(req.method === 'GET' ? 200 : 201).json({ text: 'é ✓', n: 1 })
      }
      app.post('/json', requireAccess(server.auth), reply)
      app.get('/json', requireAccess(server.auth), reply)
      app.post('/open', reply)
      return app
    }

    it('is sent as res.send would send it, signed, without an ETag and with no property set', async () => {
      const base = await listen(jsonApp())
      const answer = await call('POST', `${base}/json`, '{}')
      const open = await fetch(`${base}/open`, { method: 'POST' })
      expect(answer.status).toBe(201)
      expect(answer.verifies).toBe(true)
      expect(answer.text).toBe(await open.text())
      expect(answer.headers.get('content-type')).toBe(open.headers.get('content-type'))
      expect(answer.headers.get('content-type')).toBe('application/json; charset=utf-8')
      expect(answer.headers.get('content-length')).toBe(open.headers.get('content-length'))
      // The open route still goes through res.send, ETag included; the signed reply has none.
      expect(open.headers.get('etag')).not.toBeNull()
      expect(answer.headers.get('etag')).toBeNull()
      // The classic form's envelope: signed through the same hook, again with no property set.
      const creds = await session(server)
      const id = nonce()
      const classic = await fetch(`${base}/json`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: accessBody(creds.token, creds.key, { nonce: id, at: server.clock.ms }),
      })
      expect(classic.status).toBe(201)
      const envelope = parseEnvelope(await classic.text())
      expect((envelope.payload.access as { nonce: string }).nonce).toBe(id)
      expect(envelope.payload.response).toEqual({ text: 'é ✓', n: 1 })
      expect(ownJson).toEqual([false, false, false])
    })

    it("keeps Express's freshness check for a conditional request", async () => {
      const base = await listen(jsonApp())
      const conditional = await call('GET', `${base}/json`, undefined, { 'if-none-match': '"x"' })
      expect(conditional.status).toBe(200)
      expect(conditional.headers.get('etag')).not.toBeNull()
      expect(conditional.verifies).toBe(true)
      const fresh = await call('GET', `${base}/json`, undefined, {
        'if-none-match': conditional.headers.get('etag') as string,
        'cache-control': 'max-age=0', // else fetch adds no-cache, and Express then never says 304
      })
      // Express answers a matching validator with a 304, signed as any reply below 400.
      expect(fresh.status).toBe(304)
      expect(fresh.text).toBe('')
      expect(fresh.verifies).toBe(true)
    })

    it("goes through Express's res.json with the app's JSON settings or the handler's type", async () => {
      const spaced = await listen(jsonApp(a => a.set('json spaces', 2)))
      const answer = await call('POST', `${spaced}/json`, '{}')
      expect(answer.text).toBe(JSON.stringify({ text: 'é ✓', n: 1 }, null, 2))
      expect(answer.verifies).toBe(true)
      const app = express()
      app.post('/problem', requireAccess(server.auth), (_req, res) => {
        res.type('application/problem+json').json({ title: 'x' })
      })
      const typed = await call('POST', `${await listen(app)}/problem`, '{}')
      expect(typed.headers.get('content-type')).toBe('application/problem+json; charset=utf-8')
      expect(typed.verifies).toBe(true)
    })

    it('leaves a refusal of 400 or more unsigned, as Express sends it', async () => {
      const app = express()
      app.post('/bad', requireAccess(server.auth), (_req, res) => {
        res.status(422).json({ error: 'no' })
      })
      const answer = await call('POST', `${await listen(app)}/bad`, '{}')
      expect(answer.status).toBe(422)
      expect(JSON.parse(answer.text)).toEqual({ error: 'no' })
      expect(answer.headers.get('signature')).toBeNull()
      expect(answer.headers.get('etag')).not.toBeNull()
    })
  })
})

/**
 * A WeakMap entry keyed by a young response keeps it, its request and all they reach through V8's
 * young-generation collections until a full one: each protected request's objects were copied
 * and promoted (~7.5 KB per classic request on Express, ~10.5 KB per header-form one). Once a
 * reply is sent, its entries go.
 */
describe('what a sent reply leaves in the WeakMaps keyed by responses', () => {
  const state = (res: ServerResponse) => ({ held: hasHeldReply(res), routed: hasJsonRoute(res) })

  for (const [label, make] of [
    ['http.createServer(app)', (app: express.Express) => createServer(app)],
    [
      'expressServerOptions(app)',
      (app: express.Express) => createServer(expressServerOptions(app), app),
    ],
  ] as const) {
    it(`${label}: a header-form reply held through the prototype, and a classic one`, async () => {
      const app = express()
      const during: ReturnType<typeof state>[] = []
      const responses: ServerResponse[] = []
      const handler: express.RequestHandler = (_req, res) => {
        responses.push(res)
        during.push(state(res))
        res.json({ ok: true })
      }
      app.post('/either', requireAccess(server.auth), handler)
      const base = await listenOn(make(app))

      const header = await call('POST', `${base}/either`, '{}')
      expect([header.status, header.verifies]).toEqual([200, true])
      const creds = await session(server)
      const n = nonce()
      const classic = await fetch(`${base}/either`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: accessBody(creds.token, creds.key, { at: server.clock.ms, nonce: n }),
      })
      expect(classic.status).toBe(200)
      const envelope = parseEnvelope(await classic.text())
      expect((envelope.payload.access as { nonce: string }).nonce).toBe(n)

      // While the handler ran, both were routed (the header form's reply held as well) …
      expect(during).toEqual([
        { held: true, routed: true },
        { held: false, routed: true },
      ])
      // … and nothing is left once they were sent.
      expect(responses.map(state)).toEqual([
        { held: false, routed: false },
        { held: false, routed: false },
      ])
    })
  }

  it('keeps the entry of a reply held by replacements on the response, which read it', async () => {
    const app = express()
    const responses: ServerResponse[] = []
    app.use((_req, res, next) => {
      const end = res.end
      res.end = function (this: ServerResponse, ...args: unknown[]) {
        return (end as (...a: unknown[]) => ServerResponse).apply(this, args)
      } as typeof res.end
      next()
    })
    app.get('/me', requireAccess(server.auth), (_req, res) => {
      responses.push(res)
      res.json({ me: true })
    })
    const answer = await call('GET', `${await listen(app)}/me`)
    expect([answer.status, answer.verifies]).toEqual([200, true])
    expect(responses.map(r => hasHeldReply(r))).toEqual([true])
  })
})
