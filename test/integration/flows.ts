/**
 * The conformance flows: every operation through our client, plus the failures every server
 * must report. Used by `make test-integration` (against any server) and by the jest suite
 * (against our servers in process).
 */
import {
  BetterAuthClient,
  BetterAuthError,
  Blake3Hasher,
  FetchNetwork,
  NodeSigningKey,
  type Network,
} from '../../src'

const hasher = new Blake3Hasher()

/** Records what was sent, so a test can replay a request verbatim. */
class RecordingNetwork implements Network {
  last: { path: string; body: string } | undefined
  constructor(private readonly inner: Network) {}
  async send(path: string, body: string) {
    if (body !== '') this.last = { path, body }
    return this.inner.send(path, body)
  }
}

async function accessFooBar(client: BetterAuthClient): Promise<void> {
  const reply = await client.accessRequest<{ wasFoo: string; wasBar: string }>('/foo/bar', {
    foo: 'bar',
    bar: 'foo',
  })
  if (reply.wasFoo !== 'bar' || reply.wasBar !== 'foo') {
    throw new Error(`unexpected reply ${JSON.stringify(reply)}`)
  }
}

async function flow(client: BetterAuthClient): Promise<void> {
  await client.rotateDevice()
  await client.createSession()
  await client.refreshSession()
  await accessFooBar(client)
}

async function expectFailure(what: string, action: () => Promise<unknown>, code?: string) {
  try {
    await action()
  } catch (error) {
    if (code !== undefined && (error as BetterAuthError).code !== code) {
      throw new Error(`${what}: expected ${code}, got ${String((error as Error).message)}`)
    }
    return
  }
  throw new Error(`${what}: expected a failure`)
}

/** The named flows against the server at `baseUrl`. */
export function conformanceFlows(baseUrl: string): Record<string, () => Promise<void>> {
  const network = new RecordingNetwork(new FetchNetwork(baseUrl))
  const newClient = (): BetterAuthClient => new BetterAuthClient({ network })

  async function newAccount(): Promise<{ client: BetterAuthClient; recovery: NodeSigningKey }> {
    const client = newClient()
    const recovery = NodeSigningKey.generate()
    await client.createAccount(hasher.sum(recovery.publicKeyText))
    return { client, recovery }
  }

  /** Re-sends the last recorded request; the server must refuse it. */
  async function expectReplayRefused(what: string): Promise<void> {
    const last = network.last
    if (last === undefined) throw new Error('nothing recorded')
    const reply = await network.send(last.path, last.body)
    if (reply.body.includes('"payload"')) throw new Error(`${what}: replay was accepted`)
  }

  return {
    async 'completes auth flows'() {
      const { client } = await newAccount()
      await flow(client)
      await client.deleteAccount()
      await expectFailure('session after delete', () => client.createSession())
    },

    async 'recovers from loss'() {
      const { client } = await newAccount()
      const identity = await client.identity()
      const recovery = NodeSigningKey.generate()
      const next = NodeSigningKey.generate()
      await client.changeRecoveryKey(hasher.sum(recovery.publicKeyText))
      const recovered = newClient()
      await recovered.recoverAccount(identity, recovery, hasher.sum(next.publicKeyText))
      await flow(recovered)
      await expectFailure('old device after recovery', () => client.createSession())
    },

    async 'links another device'() {
      const { client } = await newAccount()
      const linked = newClient()
      const container = await linked.generateLinkContainer(await client.identity())
      await client.linkDevice(container)
      await client.createSession()
      await flow(linked)
      await linked.unlinkDevice(await client.device())
      await expectFailure('refresh of an unlinked device', () => client.refreshSession())
      await linked.refreshSession()
      await accessFooBar(linked)
    },

    async 'detects mismatched access nonce'() {
      const { client } = await newAccount()
      await client.createSession()
      await expectFailure(
        'bad nonce',
        () => client.accessRequest('/bad/nonce', { foo: 'bar', bar: 'foo' }),
        'BA203'
      )
    },

    async 'refuses replayed access requests'() {
      const { client } = await newAccount()
      await client.createSession()
      await accessFooBar(client)
      await expectReplayRefused('access request')
    },

    async 'refuses replayed refreshes and rotations'() {
      const { client } = await newAccount()
      await client.createSession()
      await client.refreshSession()
      await expectReplayRefused('refresh')
      await client.rotateDevice()
      await expectReplayRefused('rotation')
    },
  }
}
