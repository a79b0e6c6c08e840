/**
 * `writeResult` (adapters/shared/node.ts), the way the standalone server, its metrics and health
 * listeners and Nest's error answers write a core answer: every field in one `writeHead`, with an
 * explicit length unless the answer gives one, merged with fields set on the response before.
 * Read from the wire (`rawHeaders`), so that a field sent twice would show.
 */
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { writeResult } from '../../adapters/shared/node'
import type { HandlerResult } from '../../src'

/** Answers one request with `answer`, and gives the reply's raw field lines and its body. */
async function exchange(
  answer: (res: ServerResponse) => void,
  method = 'GET'
): Promise<{ status: number; lines: [string, string][]; body: string }> {
  const server = createServer((_req, res) => answer(res))
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  try {
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      request({ host: '127.0.0.1', port, method, path: '/' }, resolve).on('error', reject).end()
    })
    const chunks: Buffer[] = []
    for await (const chunk of res) chunks.push(chunk as Buffer)
    const lines: [string, string][] = []
    for (let i = 0; i < res.rawHeaders.length; i += 2) {
      lines.push([(res.rawHeaders[i] as string).toLowerCase(), res.rawHeaders[i + 1] as string])
    }
    return { status: res.statusCode ?? 0, lines, body: Buffer.concat(chunks).toString() }
  } finally {
    server.closeAllConnections()
    await new Promise(resolve => server.close(resolve))
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
