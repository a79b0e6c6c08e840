/**
 * The adapter contract, as the package ships it (`better-auth-protocol/testing`), and the
 * supertest target the adapter tests build their apps with.
 */
import request from 'supertest'
import type { RequestListener, Server } from 'node:http'
import { listening, type Reply, type Target } from '../../testing/adapter-contract'
import { makeServer } from '../helpers'

export * from '../../testing/adapter-contract'
export { makeServer }

/** A supertest target for a node:http request listener (Express app, Koa callback, Nest server). */
export function supertestTarget(
  app: Parameters<typeof request>[0],
  close?: () => Promise<void>
): Target {
  const server = listening(app as RequestListener | Server)
  const reply = (r: request.Response): Reply => ({
    status: r.status,
    headers: r.headers as Record<string, string>,
    text: r.text,
  })
  return {
    async post(path, body, headers = { 'content-type': 'application/json' }) {
      const req = request(app as Server)
        .post(path)
        .set(headers)
      return reply(await (body === undefined ? req : req.send(body)))
    },
    async get(path) {
      return reply(await request(app as Server).get(path))
    },
    async close() {
      await server.close()
      await close?.()
    },
    listen: () => server.port(),
  }
}
