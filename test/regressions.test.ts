/**
 * Regressions: bugs found by the attack suite and the fuzz test, one test (or a few) each, named
 * after what went wrong.
 */
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { NodeSigningKey, parseStrictJson } from '../src'
import { TestDevice, hash, linkContainer, makeServer } from './helpers'
import { created, expectRejected, linkBody, rotatingPayload, signedText } from './scenario'
import type { TestAccount, TestServer } from './helpers'

interface World {
  server: TestServer
  account: TestAccount
}

async function world(): Promise<World> {
  const server = makeServer()
  return { server, account: await created(server) }
}

describe('signed spans are bound to the parsed payload they belong to', () => {
  /**
   * Regression: payload spans were recorded by dotted path, so a key spelled "request.link" (or
   * "payload.request" at the root) could make the link signature be checked over another text
   * than the parsed container payload: here, a payload the victim's key once signed, while the
   * parsed container registers the victim's key with a rotation commitment of our choosing.
   */
  function smuggle(w: World) {
    const victim = new TestDevice()
    const victimPayload = linkContainer(victim, w.account.identity).payload
    const victimText = JSON.stringify(victimPayload)
    const chosen = hash(NodeSigningKey.generate().publicKeyText)
    const container = {
      payload: {
        authentication: {
          device: hash(victim.current.publicKeyText + chosen),
          identity: w.account.identity,
          publicKey: victim.current.publicKeyText,
          rotationHash: chosen,
        },
      },
      signature: victim.current.signSync(Buffer.from(victimText)),
    }
    return { victimText, container }
  }

  it('a link signature over other text, smuggled under an unsigned dotted root key (BA201)', async () => {
    const w = await world()
    const { victimText, container } = smuggle(w)
    const body = linkBody(w.account, container)
    const smuggled = `${body.slice(0, -1)},"payload.request":{"link":{"payload":${victimText}}}}`
    await expectRejected(w.server, 'linkDevice', smuggled, 'BA201', 401)
  })

  it('a link signature over other text, smuggled under a signed dotted key (BA201)', async () => {
    const w = await world()
    const { victimText, container } = smuggle(w)
    const payload = rotatingPayload(w.account.first, {}, { link: container })
    const text = JSON.stringify(payload).replace(/}$/, `,"request.link":{"payload":${victimText}}}`)
    await expectRejected(
      w.server,
      'linkDevice',
      signedText(text, w.account.first.next),
      'BA201',
      401
    )
  })

  it('the strict parser records no span through dotted keys or arrays', () => {
    const spans = parseStrictJson(
      '{"payload":{"request":{"link":{"payload":1}}},"payload.request":{"link":{"payload":2}},' +
        '"x":[{"payload":3}]}'
    ).payloadSpans
    expect([...spans.keys()].sort()).toEqual(['payload', 'payload.request.link.payload'])
    const text =
      '{"payload":{"request":{"link":{"payload":1}}},"payload.request":{"link":{"payload":2}}}'
    const [start, end] = parseStrictJson(text).payloadSpans.get('payload.request.link.payload') as [
      number,
      number,
    ]
    expect(text.slice(start, end)).toBe('1')
  })
})

describe('key generation', () => {
  it('generating many signing keys under heavy garbage collection does not deadlock', () => {
    // On Node 20 a KeyObject fresh from generateKeyPairSync could deadlock its first JWK export
    // when a collection ran in the middle of it; with a 1 MiB young generation the old code
    // hung within a few thousand keys. A hang shows as the child being killed.
    const root = join(__dirname, '..')
    const child = spawnSync(
      process.execPath,
      ['--max-semi-space-size=1', '--import', 'tsx', 'test/fixtures/keygen-stress.ts', '30000'],
      { cwd: root, encoding: 'utf8', timeout: 120_000 }
    )
    expect({ signal: child.signal, status: child.status }).toEqual({ signal: null, status: 0 })
    expect(child.stdout).toBe('generated 30000\n')
  }, 150_000)
})
