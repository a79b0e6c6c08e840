/** The client checks every response: signature, server identity, nonce; and reports errors. */
import { BetterAuthClient, NodeSigningKey, type Network } from '../src'
import { InProcessNetwork, hash, makeClient, makeServer, type TestServer } from './helpers'

/** Passes requests to the server and lets a test rewrite the reply. */
class TamperingNetwork implements Network {
  rewrite: ((body: string) => string | Promise<string>) | undefined
  private readonly inner: InProcessNetwork
  constructor(server: TestServer) {
    this.inner = new InProcessNetwork(server)
  }
  readonly sentPaths: string[] = []
  readonly statuses: number[] = []
  async send(path: string, body: string) {
    const reply = await this.inner.send(path, body)
    this.sentPaths.push(path)
    this.statuses.push(reply.status)
    return {
      status: reply.status,
      body: this.rewrite ? await this.rewrite(reply.body) : reply.body,
    }
  }
}

async function setup() {
  const server = makeServer()
  const network = new TamperingNetwork(server)
  const client = makeClient(server, network)
  await client.createAccount(hash(NodeSigningKey.generate().publicKeyText))
  return { server, network, client }
}

describe('client response checks', () => {
  it('rejects a response whose payload was altered (BA201) and does not rotate', async () => {
    const { network, client, server } = await setup()
    network.rewrite = body => body.replace('"response":{}', '"response":{"x":1}')
    await expect(client.rotateDevice()).rejects.toMatchObject({ code: 'BA201' })
    network.rewrite = undefined
    // The server rotated but the client did not: revealing the same key again is refused as a
    // reused rotation (BA104), so the client settles its pending chain on the other outcome
    // (the key after it) before rotating: three requests, and the chain works.
    const sent = network.sentPaths.length
    await client.rotateDevice()
    expect(network.sentPaths.slice(sent)).toEqual([
      '/device/rotate',
      '/device/rotate',
      '/device/rotate',
    ])
    expect(network.statuses.slice(sent)).toEqual([401, 200, 200])
    await client.createSession()
    expect(Object.keys(server.store.dump().accounts)).toEqual([await client.identity()])
  })

  it('rejects a response nonce that differs from the request (BA203)', async () => {
    const { network, client, server } = await setup()
    // A correctly signed reply that echoes another nonce.
    network.rewrite = body =>
      body.startsWith('{"payload"')
        ? server.auth.respond(`0A${'A'.repeat(22)}`, JSON.parse(body).payload.response)
        : body
    await expect(client.createSession()).rejects.toMatchObject({ code: 'BA203' })
  })

  it('rejects a response from another server key (BA204)', async () => {
    const server = makeServer()
    const other = makeServer()
    const client = new BetterAuthClient({
      network: new InProcessNetwork(server),
      responseKey: await other.auth.responsePublicKey(),
    })
    await expect(client.createAccount(hash('r'))).rejects.toMatchObject({ code: 'BA204' })
  })

  it('fetches the response key once when none is pinned', async () => {
    const server = makeServer()
    const network = new InProcessNetwork(server)
    const client = new BetterAuthClient({ network })
    expect(await client.responseKey()).toBe(await server.auth.responsePublicKey())
    await client.responseKey()
    expect(network.sent.filter(s => s.path === '/key/response')).toHaveLength(1)
  })

  it('surfaces server errors with their code and status', async () => {
    const { client, server } = await setup()
    await expect(makeClient(makeServer()).createSession()).rejects.toThrow(/no identity stored/)
    const lost = makeClient(server)
    const wrongRecoveryKey = NodeSigningKey.generate()
    await expect(
      lost.recoverAccount(await client.identity(), wrongRecoveryKey, hash('next'))
    ).rejects.toMatchObject({ code: 'BA104', status: 401 })
  })

  it('reports a non-JSON or payload-less reply as BA204', async () => {
    const { network, client } = await setup()
    network.rewrite = () => '<html>oops</html>'
    await expect(client.rotateDevice()).rejects.toMatchObject({ code: 'BA204' })
    network.rewrite = () => '{"error":"an error occurred"}'
    await expect(client.rotateDevice()).rejects.toMatchObject({ code: 'BA204' })
  })

  it('sends exactly the bytes it signed, in the protocol key order', async () => {
    const server = makeServer()
    const network = new InProcessNetwork(server)
    const client = makeClient(server, network)
    await client.createAccount(hash('recovery'))
    const body = network.sent.find(s => s.path === '/account/create')?.body as string
    expect(body).toMatch(
      /^\{"payload":\{"access":\{"nonce":"0A[^"]+"\},"request":\{"authentication":\{"device":"E[^"]+","identity":"E[^"]+","publicKey":"1AAI[^"]+","recoveryHash":"E[^"]+","rotationHash":"E[^"]+"\}\}\},"signature":"0I[^"]+"\}$/
    )
  })
})
