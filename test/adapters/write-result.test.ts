/**
 * `writeResult` (adapters/shared/node.ts), the way the standalone server, its metrics and health
 * listeners and Nest's error answers write a core answer: every field in one `writeHead`, with an
 * explicit length unless the answer gives one, merged with fields set on the response before.
 * Read from the wire (every line of the head), so that a field sent twice would show.
 */
import type { ServerResponse } from 'node:http'
import { writeResult } from '../../adapters/shared/node'
import type { HandlerResult } from '../../src'
import { listening, rawRequest } from '../../testing/adapter-contract'

/** Answers one request with `answer`, and gives the reply's field lines (from the wire) and body. */
async function exchange(
  answer: (res: ServerResponse) => void,
  method = 'GET'
): Promise<{ status: number; lines: [string, string][]; body: string }> {
  const server = listening((_req, res) => answer(res))
  try {
    const reply = await rawRequest(
      await server.port(),
      `${method} / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`
    )
    // Every line of the head as sent (`reply.headers` keeps one value per name).
    const end = reply.raw.indexOf('\r\n\r\n')
    const lines = reply.raw
      .slice(0, end)
      .split('\r\n')
      .slice(1)
      .map((line): [string, string] => {
        const colon = line.indexOf(':')
        return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()]
      })
    return { status: reply.status, lines, body: reply.text }
  } finally {
    await server.close()
  }
}

const named = (lines: [string, string][], name: string): string[] =>
  lines.filter(([n]) => n === name).map(([, v]) => v)

describe('writeResult', () => {
  it('sends the status, every field once and the body with its byte length', async () => {
    const result: HandlerResult = {
      status: 201,
      headers: { 'content-type': 'application/json', 'x-one': 'a', signature: 'ba=:AAAA:' },
      body: '{"é":1}',
    }
    const { status, lines, body } = await exchange(res => writeResult(res, result))
    expect(status).toBe(201)
    expect(body).toBe('{"é":1}')
    expect(named(lines, 'content-length')).toEqual([String(Buffer.byteLength('{"é":1}'))])
    expect(named(lines, 'content-type')).toEqual(['application/json'])
    expect(named(lines, 'x-one')).toEqual(['a'])
    expect(named(lines, 'signature')).toEqual(['ba=:AAAA:'])
    expect(named(lines, 'transfer-encoding')).toEqual([])
  })

  it('keeps a length the answer gives (in any case) instead of adding its own', async () => {
    const result: HandlerResult = { status: 200, headers: { 'Content-Length': '2' }, body: 'ok' }
    const { lines, body } = await exchange(res => writeResult(res, result))
    expect(named(lines, 'content-length')).toEqual(['2'])
    expect(body).toBe('ok')
  })

  it('merges with fields set before: both kept, the answer replacing one of the same name', async () => {
    const result: HandlerResult = {
      status: 200,
      headers: { 'content-type': 'text/plain', vary: 'Accept' },
      body: 'hi',
    }
    const { lines } = await exchange(res => {
      res.setHeader('vary', 'Origin')
      res.setHeader('access-control-allow-origin', 'https://app.example')
      writeResult(res, result)
    })
    expect(named(lines, 'access-control-allow-origin')).toEqual(['https://app.example'])
    expect(named(lines, 'vary')).toEqual(['Accept'])
    expect(named(lines, 'content-type')).toEqual(['text/plain'])
    expect(named(lines, 'content-length')).toEqual(['2'])
  })

  it('answers HEAD with the length and no body, and an empty answer with length 0', async () => {
    const result: HandlerResult = { status: 200, headers: {}, body: 'four' }
    const head = await exchange(res => writeResult(res, result), 'HEAD')
    expect(named(head.lines, 'content-length')).toEqual(['4'])
    expect(head.body).toBe('')
    const empty = await exchange(res => writeResult(res, { status: 404, headers: {}, body: '' }))
    expect(empty.status).toBe(404)
    expect(named(empty.lines, 'content-length')).toEqual(['0'])
  })

  it('refuses a field value node refuses, as before (nothing sent)', async () => {
    let thrown: unknown
    const { status } = await exchange(res => {
      try {
        writeResult(res, { status: 200, headers: { 'x-bad': 'a\r\nb' }, body: 'x' })
      } catch (error) {
        thrown = error
        res.writeHead(500).end()
      }
    })
    expect((thrown as { code?: string }).code).toBe('ERR_INVALID_CHAR')
    expect(status).toBe(500)
  })
})
