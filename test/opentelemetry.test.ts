/**
 * The OpenTelemetry bridge, with a real SDK: a BasicTracerProvider registered globally, an
 * in-memory span exporter and the AsyncLocalStorage context manager an instrumented app uses.
 */
import { tracingChannel } from 'node:diagnostics_channel'
import { context, SpanStatusCode, trace, type Tracer } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base'
import { ACCESS_CHANNEL, hashIdentity, instrumentOpenTelemetry, OPERATION_CHANNEL } from '../src'
import { stopAutomaticOpenTelemetry } from '../src/server/opentelemetry'
import { accessBody, createdAccount, makeServer, openSession, TestAccount } from './helpers'

const subscribed = (name: string): boolean => tracingChannel(name).start.hasSubscribers

describe('OpenTelemetry', () => {
  const exporter = new InMemorySpanExporter()
  const contextManager = new AsyncLocalStorageContextManager()

  afterEach(() => {
    stopAutomaticOpenTelemetry()
    exporter.reset()
  })
  afterAll(() => {
    trace.disable()
    context.disable()
  })

  it('bridge nothing while no tracer provider is registered (the channels stay idle)', async () => {
    const server = makeServer()
    await server.call('createAccount', new TestAccount().createAccountBody())
    expect(subscribed(OPERATION_CHANNEL)).toBe(false)
    expect(subscribed(ACCESS_CHANNEL)).toBe(false)
  })

  describe('with a registered provider', () => {
    beforeAll(() => {
      context.setGlobalContextManager(contextManager.enable())
      trace.setGlobalTracerProvider(
        new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
      )
    })

    it('make a span per operation, a child of the active span, with code and hashed identity', async () => {
      const server = makeServer()
      const tracer = trace.getTracer('app')
      const account = new TestAccount()
      await tracer.startActiveSpan('POST /account/create', async parent => {
        await server.call('createAccount', account.createAccountBody())
        await server.call('createAccount', account.createAccountBody()) // a conflict: BA305
        parent.end()
      })
      const spans = exporter.getFinishedSpans()
      const parent = spans.find(s => s.name === 'POST /account/create')
      const ours = spans.filter(s => s.name === 'better-auth createAccount')
      expect(ours).toHaveLength(2)
      for (const span of ours) {
        expect(span.parentSpanContext?.spanId).toBe(parent?.spanContext().spanId)
        expect(span.instrumentationScope.name).toBe('better-auth-protocol')
      }
      expect(ours[0]?.attributes).toEqual({
        'better_auth.operation': 'createAccount',
        'better_auth.code': 'ok',
        'better_auth.identity_hash': hashIdentity(account.identity),
      })
      expect(ours[0]?.status.code).toBe(SpanStatusCode.UNSET)
      expect(ours[1]?.attributes['better_auth.code']).toBe('BA305')
      expect(ours[1]?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'BA305' })
      expect(JSON.stringify(ours.map(s => s.attributes))).not.toContain(account.identity)
    })

    it('make a span per access check, named by route, holding no token, path or identity', async () => {
      const server = makeServer()
      const account = await createdAccount(server)
      const session = await openSession(server, account.first)
      exporter.reset()
      const body = accessBody(session.token, session.key, { at: server.clock.now() })
      await server.auth.verifyAccess(body, { path: '/orders/42' }, { route: '/orders/:id' })
      await server.auth.verifyAccess(body, { path: '/orders/42' }).catch(() => undefined) // replay
      const spans = exporter.getFinishedSpans().filter(s => s.name === 'better-auth access')
      expect(spans.map(s => s.attributes)).toEqual([
        {
          'better_auth.route': '/orders/:id',
          'better_auth.code': 'ok',
          'better_auth.identity_hash': hashIdentity(account.identity),
        },
        {
          'better_auth.route': 'access',
          'better_auth.code': 'BA304',
          'better_auth.identity_hash': hashIdentity(account.identity),
        },
      ])
      expect(spans[1]?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'BA304' })
      const text = JSON.stringify(spans.map(s => ({ a: s.attributes, s: s.status, e: s.events })))
      for (const secret of [session.token, account.identity, '/orders/42', body]) {
        expect(text).not.toContain(secret)
      }
    })

    it('bridge once per process, however many servers', async () => {
      const servers = [makeServer(), makeServer(), makeServer()]
      await servers[2]?.call('createAccount', new TestAccount().createAccountBody())
      expect(exporter.getFinishedSpans()).toHaveLength(1)
    })

    it('bridge nothing for a server with openTelemetry: false', async () => {
      const server = makeServer({ openTelemetry: false })
      await server.call('createAccount', new TestAccount().createAccountBody())
      expect(exporter.getFinishedSpans()).toHaveLength(0)
      expect(subscribed(OPERATION_CHANNEL)).toBe(false)
    })

    it('an explicit bridge replaces the automatic one, and stops', async () => {
      makeServer()
      const stop = instrumentOpenTelemetry({ tracer: trace.getTracer('mine') })
      const server = makeServer()
      await server.call('createAccount', new TestAccount().createAccountBody())
      const spans = exporter.getFinishedSpans()
      expect(spans.map(s => s.instrumentationScope.name)).toEqual(['mine'])
      stop()
      expect(subscribed(OPERATION_CHANNEL)).toBe(false)
    })

    it('a tracer that throws never fails a request', async () => {
      const broken = {
        startSpan: () => {
          throw new Error('exporter down')
        },
        startActiveSpan: () => {
          throw new Error('exporter down')
        },
      } as unknown as Tracer
      const badSpan = {
        startSpan: () => ({
          setAttribute: () => {
            throw new Error('exporter down')
          },
          setStatus: () => {
            throw new Error('exporter down')
          },
          end: () => {
            throw new Error('exporter down')
          },
        }),
      } as unknown as Tracer
      for (const tracer of [broken, badSpan]) {
        const stop = instrumentOpenTelemetry({ tracer })
        try {
          expect(subscribed(OPERATION_CHANNEL)).toBe(true)
          const server = makeServer()
          const account = new TestAccount()
          const reply = await server.call('createAccount', account.createAccountBody())
          expect(reply.status).toBe(200)
          expect(await server.auth.store.accounts.hasIdentity(account.identity)).toBe(true)
          const conflict = await server.call('createAccount', account.createAccountBody())
          expect(conflict.status).toBe(409)
        } finally {
          stop()
        }
      }
    })
  })
})
