/**
 * gracefulShutdown's responses in flight: each response still unwritten when the shutdown begins
 * gets `Connection: close`, whatever order the earlier ones ended in; the ones that ended before
 * keep their connection. (The list of responses in flight is written by hand; see InFlight in
 * adapters/node.)
 */
import { Agent, createServer, request, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { gracefulShutdown } from '../../adapters/node'
import { InFlight } from '../../adapters/node/in-flight'
import { until } from '../helpers'

interface Reply {
  body: string
  connection: string | undefined
}

test('responses in flight when the shutdown begins close their connection; earlier ones do not', async () => {
  const waiting = new Map<string, ServerResponse>()
  const server = createServer((req, res) => void waiting.set((req.url ?? '/').slice(1), res))
  const shutdown = gracefulShutdown(server, { signals: [], deadlineMs: 5000 })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  const agent = new Agent({ keepAlive: true, maxSockets: 8 })
  const get = (id: string) =>
    new Promise<Reply>((resolve, reject) => {
      request({ host: '127.0.0.1', port, path: `/${id}`, agent }, res => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', chunk => (body += chunk))
        res.on('end', () => resolve({ body, connection: res.headers.connection }))
      })
        .on('error', reject)
        .end()
    })
  const answer = (id: string) => (waiting.get(id) as ServerResponse).end(id)
  try {
    // Five in flight, added in this order; then one from the middle, the last added and the
    // first added end before the shutdown.
    const ids = ['a', 'b', 'c', 'd', 'e']
    const replies = new Map(ids.map(id => [id, get(id)]))
    await until(() => waiting.size === ids.length)
    const before: Record<string, Reply> = {}
    for (const id of ['c', 'e', 'a']) {
      answer(id)
      before[id] = await (replies.get(id) as Promise<Reply>)
    }
    const closed = shutdown.close()
    answer('b')
    answer('d')
    const after = { b: await replies.get('b'), d: await replies.get('d') }
    await closed
    expect(Object.values(before).map(r => r.connection)).toEqual([
      'keep-alive',
      'keep-alive',
      'keep-alive',
    ])
    expect(after.b).toEqual({ body: 'b', connection: 'close' })
    expect(after.d).toEqual({ body: 'd', connection: 'close' })
    expect(server.listening).toBe(false)
  } finally {
    agent.destroy()
    server.closeAllConnections()
    if (server.listening) server.close()
  }
})

test('the list of responses in flight: any order of removal, removing twice, and never added', () => {
  const res = (name: string) => ({ name }) as unknown as ServerResponse
  const names = (list: InFlight) => list.all().map(r => (r as unknown as { name: string }).name)
  const list = new InFlight()
  const [a, b, c, d, e] = ['a', 'b', 'c', 'd', 'e'].map(res) as ServerResponse[]
  for (const r of [a, b, c, d, e]) list.add(r as ServerResponse)
  expect(names(list)).toEqual(['e', 'd', 'c', 'b', 'a'])
  list.delete(c as ServerResponse) // the middle
  expect(names(list)).toEqual(['e', 'd', 'b', 'a'])
  list.delete(e as ServerResponse) // the head
  list.delete(a as ServerResponse) // the tail
  expect(names(list)).toEqual(['d', 'b'])
  list.delete(c as ServerResponse) // already out: nothing changes
  list.delete(res('never added'))
  expect(names(list)).toEqual(['d', 'b'])
  // Whatever was taken out holds no link to what is still in (a dead response keeps nothing).
  for (const r of [a, c, e])
    expect(Object.getOwnPropertySymbols(r).map(s => (r as never)[s])).toEqual([
      undefined,
      undefined,
    ])
  list.delete(b as ServerResponse)
  list.add(c as ServerResponse) // back in after it was taken out
  expect(names(list)).toEqual(['c', 'd'])
  list.delete(d as ServerResponse)
  list.delete(c as ServerResponse)
  expect(names(list)).toEqual([])
})
