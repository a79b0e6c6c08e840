/** Tracing through node:diagnostics_channel: the operation and access channels, and their fields. */
import { tracingChannel } from 'node:diagnostics_channel'
import {
  ACCESS_CHANNEL,
  OPERATION_CHANNEL,
  hashIdentity,
  type AccessTraceContext,
  type OperationTraceContext,
} from '../src'
import { accessBody, createdAccount, makeServer, openSession, TestAccount } from './helpers'

type Seen = { event: string; context: Record<string, unknown> }

/** Records every event of a tracing channel (a copy of the context as it was then). */
function record(name: string): { seen: Seen[]; stop: () => void } {
  const seen: Seen[] = []
  const channel = tracingChannel(name)
  const on = (event: string) => (message: unknown) =>
    seen.push({ event, context: { ...(message as Record<string, unknown>) } })
  const handlers = {
    start: on('start'),
    end: on('end'),
    asyncStart: on('asyncStart'),
    asyncEnd: on('asyncEnd'),
    error: on('error'),
  }
  channel.subscribe(handlers)
  return { seen, stop: () => channel.unsubscribe(handlers) }
}

describe('tracing channels', () => {
  it('trace operations: start, end, asyncEnd with code and hashed identity; error on refusal', async () => {
    const server = makeServer()
    const { seen, stop } = record(OPERATION_CHANNEL)
    try {
      const account = new TestAccount()
      await server.call('createAccount', account.createAccountBody())
      expect(seen.map(s => s.event)).toEqual(['start', 'end', 'asyncStart', 'asyncEnd'])
      expect(seen[0]?.context).toEqual({ operation: 'createAccount' })
      const done = seen[3]?.context as unknown as OperationTraceContext
      expect(done).toMatchObject({
        operation: 'createAccount',
        code: 'ok',
        identityHash: hashIdentity(account.identity),
      })
      expect(done.identityHash).not.toBe(account.identity)
      // The signed reply stays out of the context.
      expect(done).not.toHaveProperty('result', expect.anything())

      seen.length = 0
      await server.call('createAccount', account.createAccountBody()) // a conflict: BA305
      expect(seen.map(s => s.event)).toEqual(['start', 'end', 'error', 'asyncStart', 'asyncEnd'])
      const failed = seen[2]?.context as unknown as OperationTraceContext
      expect(failed).toMatchObject({ operation: 'createAccount', code: 'BA305' })
      expect(failed.error).toMatchObject({ code: 'BA305' })
    } finally {
      stop()
    }
  })

  it('trace access checks by route label, never by path', async () => {
    const server = makeServer()
    const account = await createdAccount(server)
    const session = await openSession(server, account.first)
    const { seen, stop } = record(ACCESS_CHANNEL)
    try {
      const body = accessBody(session.token, session.key, { at: server.clock.now() })
      await server.auth.verifyAccess(body, { path: '/orders/42' }, { route: '/orders/:id' })
      await server.auth.verifyAccess(body, { path: '/orders/42' }).catch(() => undefined) // replay
      const ends = seen.filter(s => s.event === 'asyncEnd').map(s => s.context)
      expect(ends).toEqual([
        {
          route: '/orders/:id',
          code: 'ok',
          identityHash: hashIdentity(account.identity),
        },
        {
          route: 'access',
          code: 'BA304',
          identityHash: hashIdentity(account.identity),
          error: expect.objectContaining({ code: 'BA304' }),
        },
      ] satisfies AccessTraceContext[])
      const text = JSON.stringify(seen)
      for (const secret of [session.token, account.identity, '/orders/42']) {
        expect(text).not.toContain(secret)
      }
    } finally {
      stop()
    }
  })

  it('propagate an async context bound at start (as an OpenTelemetry subscriber does)', async () => {
    const { AsyncLocalStorage } = await import('node:async_hooks')
    const store = new AsyncLocalStorage<string>()
    const channel = tracingChannel(OPERATION_CHANNEL)
    channel.start.bindStore(store, () => 'span-1')
    const seen: (string | undefined)[] = []
    const server = makeServer({ onEvent: () => seen.push(store.getStore()) })
    try {
      await server.call('createAccount', new TestAccount().createAccountBody())
      expect(seen).toEqual(['span-1'])
    } finally {
      channel.start.unbindStore(store)
    }
  })
})
