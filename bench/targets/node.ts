/**
 * Bare `node:http`: read the body, parse it, answer a same-size JSON envelope. The ceiling.
 *
 * On the protected route's path it also answers both forms of bench/forms.ts with no protocol
 * work: a classic request with the same-size envelope, a header-form one (an `Authorization`
 * field) with the handler's JSON and the three reply fields of the real lengths. The difference
 * of the two is what node:http itself charges for the header form's fields, a floor under the
 * protected routes' difference (docs/performance.md).
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import {
  BARE_PATH,
  BARE_SIGNATURE_FIELDS,
  PROTECTED_PATH,
  bareEnvelope,
  fooBar,
  type FooBar,
  type Start,
} from './common'

export const start: Start = async port => {
  const server = createServer((req, res) => {
    if (req.method !== 'POST' || (req.url !== BARE_PATH && req.url !== PROTECTED_PATH)) {
      res.writeHead(404).end()
      return
    }
    const headerForm = req.url === PROTECTED_PATH && req.headers.authorization !== undefined
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      let reply: string
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString()) as unknown
        reply = JSON.stringify(headerForm ? fooBar(body as FooBar) : bareEnvelope(body))
      } catch {
        res.writeHead(400).end()
        return
      }
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(reply),
        ...(headerForm ? BARE_SIGNATURE_FIELDS : {}),
      })
      res.end(reply)
    })
  })
  await new Promise<void>(resolve => server.listen(port, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise(resolve => server.close(() => resolve())),
  }
}
