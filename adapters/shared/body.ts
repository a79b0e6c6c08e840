/** Reading a raw request body from a node:http request, with a size limit. */
import type { IncomingMessage } from 'node:http'
import { InvalidMessageError, PayloadTooLargeError } from '../../src/errors'

/**
 * Reads the whole body (at most `limit` bytes; more is refused early with BA603). A client that
 * goes away before the body is complete is a client's mistake, not the server's: BA101, which the
 * core logs at debug level, rather than an internal error.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'])
    if (Number.isFinite(declared) && declared > limit) {
      req.resume()
      reject(new PayloadTooLargeError(limit))
      return
    }
    const chunks: Buffer[] = []
    let size = 0
    let settled = false
    const fail = (error: Error): void => {
      if (settled) return
      settled = true
      chunks.length = 0
      reject(error)
    }
    // 'close' follows every request, complete or not: the error is built only when it is needed.
    const incomplete = (cause?: unknown): void => {
      if (settled) return
      fail(
        new InvalidMessageError('body', 'the connection closed before it was complete', { cause })
      )
    }
    req.on('data', (chunk: Buffer) => {
      if (settled) return
      size += chunk.length
      if (size > limit) {
        fail(new PayloadTooLargeError(limit))
        return
      }
      chunks.push(chunk)
    })
    req.on('end', () => {
      if (settled) return
      settled = true
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size))
    })
    req.on('error', incomplete)
    req.on('close', () => incomplete())
  })
}
