/** Bare `node:http`: read the body, parse it, answer a same-size JSON envelope. The ceiling. */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { BARE_PATH, bareEnvelope, type Start } from './common'

export const start: Start = async port => {
  const server = createServer((req, res) => {
    if (req.method !== 'POST' || req.url !== BARE_PATH) {
      res.writeHead(404).end()
      return
    }
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      let reply: string
      try {
        reply = JSON.stringify(bareEnvelope(JSON.parse(Buffer.concat(chunks).toString())))
      } catch {
        res.writeHead(400).end()
        return
      }
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(reply),
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
