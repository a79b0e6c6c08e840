/**
 * Property-based fuzzing of every operation and of access requests.
 *
 * Each case builds a valid message against the current server state, mutates it (raw text and
 * bytes, field values of every JSON type, dropped, duplicated, reordered and wrapped fields,
 * fields swapped in from other messages, tokens rebuilt with mutated claims), optionally
 * re-signs it with the right keys so it passes the signature checks and reaches deeper logic,
 * and sends it. Properties:
 * - `handle` never throws and `verifyAccess` throws only BetterAuthErrors;
 * - no 5xx, nothing logged as an error;
 * - every non-200 body is exactly `{"error":{"code","message"}}` with a known code whose status
 *   is the HTTP status;
 * - a rejected message leaves the store exactly as it was;
 * - every 200 is a response envelope signed by the server's response key.
 *
 * `FUZZ_RUNS` sets the cases per target (default 1000, i.e. 11,000 per run over 11 targets);
 * `FUZZ_SEED` sets the base seed (default fixed, so `make test` is reproducible). On failure
 * fast-check prints the seed and path to replay the counterexample.
 */
import { gzipSync } from 'node:zlib'
import fc from 'fast-check'
import {
  BetterAuthError,
  ERROR_CODES,
  NodeSigningKey,
  decodeBase64Url,
  decodeToken,
  encodeBase64Url,
  formatTimestamp,
  parseStrictJson,
  parseTimestamp,
  type AuditEvent,
  type HandlerResult,
  type Operation,
} from '../src'
import { readHeaderAccess, signHeaderRequest, type HeaderRecord } from '../src/binding'
import { gunzipBounded, GzipError } from '../src/codec/gzip'
import {
  TestAccount,
  TestDevice,
  hash,
  linkContainer,
  makeServer,
  nonce,
  type TestServer,
} from './helpers'
import {
  challenge,
  created,
  createSessionPayload,
  linked,
  openSession,
  recoverPayload,
  refreshPayload,
  rotatingPayload,
  type Session,
  type Target,
} from './scenario'

const RUNS = Math.max(1, Number(process.env.FUZZ_RUNS ?? 1000))
const SEED = process.env.FUZZ_SEED === undefined ? 20251019 : Number(process.env.FUZZ_SEED)
/** A fresh server every so many cases keeps snapshots small. */
const CASES_PER_SERVER = 250

// ------------------------------------------------------------------ a JSON tree that can
// hold what JSON.parse cannot: duplicate keys, exact key order, raw text

type JsonNode =
  | { t: 'obj'; entries: [string, JsonNode][] }
  | { t: 'arr'; items: JsonNode[] }
  | { t: 'raw'; text: string }

function toNode(value: unknown): JsonNode {
  if (Array.isArray(value)) return { t: 'arr', items: value.map(toNode) }
  if (typeof value === 'object' && value !== null) {
    return { t: 'obj', entries: Object.entries(value).map(([k, v]) => [k, toNode(v)]) }
  }
  return { t: 'raw', text: JSON.stringify(value) ?? 'null' }
}

function render(node: JsonNode): string {
  switch (node.t) {
    case 'raw':
      return node.text
    case 'arr':
      return '[' + node.items.map(render).join(',') + ']'
    case 'obj':
      return '{' + node.entries.map(([k, v]) => JSON.stringify(k) + ':' + render(v)).join(',') + '}'
  }
}

function child(node: JsonNode | undefined, key: string): JsonNode | undefined {
  if (node?.t !== 'obj') return undefined
  return node.entries.find(([k]) => k === key)?.[1]
}

function at(node: JsonNode, path: string[]): JsonNode | undefined {
  let current: JsonNode | undefined = node
  for (const key of path) current = child(current, key)
  return current
}

function setEntry(node: JsonNode, key: string, value: JsonNode): void {
  if (node.t !== 'obj') return
  const entry = node.entries.find(([k]) => k === key)
  if (entry === undefined) node.entries.push([key, value])
  else entry[1] = value
}

interface Slot {
  node: JsonNode
  set(value: JsonNode): void
  /** The containing object and the entry index, for entries of objects. */
  entry?: { parent: JsonNode & { t: 'obj' }; index: number }
}

function slots(holder: { root: JsonNode }): Slot[] {
  const out: Slot[] = []
  const visit = (node: JsonNode, set: (value: JsonNode) => void, entry?: Slot['entry']): void => {
    out.push({ node, set, ...(entry === undefined ? {} : { entry }) })
    if (node.t === 'obj') {
      node.entries.forEach((e, index) =>
        visit(e[1], value => (e[1] = value), { parent: node, index })
      )
    } else if (node.t === 'arr') {
      node.items.forEach((item, index) => visit(item, value => (node.items[index] = value)))
    }
  }
  visit(holder.root, value => (holder.root = value))
  return out
}

// ------------------------------------------------------------------ mutations (pure data)

type Structural =
  | { kind: 'replace'; at: number; value: unknown }
  | { kind: 'replaceText'; at: number; text: string }
  | { kind: 'swap'; at: number; from: number }
  | { kind: 'drop'; at: number }
  | { kind: 'duplicate'; at: number; value: unknown | undefined }
  | { kind: 'reorder'; at: number; seed: number }
  | { kind: 'wrap'; at: number; how: 'array' | 'object' | 'payload' }
  | { kind: 'addKey'; at: number; key: string; value: unknown }
  | { kind: 'sameKind'; at: number; pick: number; offset: number }

type Raw =
  | { kind: 'flip'; at: number; text: string }
  | { kind: 'insert'; at: number; text: string }
  | { kind: 'cut'; at: number; length: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'byte'; at: number; byte: number }

interface Case {
  /** Mutations of the message's JSON tree. */
  structural: readonly Structural[]
  /** Mutations of the token's claims (access and refresh), re-signed by the access key. */
  claims: readonly Structural[]
  /** Raw mutations of the token text. */
  tokenRaw: readonly Raw[]
  /** Re-sign the link container and the payload after the structural mutations. */
  resign: boolean
  /** Raw mutations of the body text (or bytes). */
  raw: readonly Raw[]
}

const SPECIAL_KEYS = [
  '__proto__',
  '\\u005f_proto__',
  'constructor',
  'prototype',
  'payload',
  'signature',
  'request.link',
  'payload.request',
  'access',
  'request',
  'authentication',
  'nonce',
  'token',
  'publicKey',
  'identity',
  'device',
  '10',
  '',
]

const SPECIAL_TEXT = [
  '{',
  '}',
  '[',
  ']',
  '"',
  ',',
  ':',
  '\\',
  '\\u0000',
  '\u0000',
  ' ',
  '\n',
  '\ufeff',
  '\ud800',
  'é',
  'null',
  '1e999',
  '-0',
  '"payload":',
  '"__proto__":',
  '{"payload":{},"signature":"x"}',
  '=',
  '+',
  '/',
]

/** Strings that look like protocol values, to get past format checks into deeper logic. */
function lookalikes(): fc.Arbitrary<string> {
  return fc.oneof(
    fc.constantFrom(
      '',
      ' ',
      'null',
      'E' + 'A'.repeat(43),
      '0A' + 'A'.repeat(22),
      '0I' + 'A'.repeat(86),
      '1AAI' + 'A'.repeat(44),
      '1AAIA' + 'A'.repeat(43),
      '9999-12-31T23:59:59Z',
      '0000-01-01T00:00:00Z',
      '275760-09-13T00:00:00.001Z',
      'x'.repeat(20000)
    ),
    fc.constant('').map(() => nonce()),
    fc.constant('').map(() => hash(String(Math.random()))),
    fc.constant('').map(() => NodeSigningKey.generate().publicKeyText),
    fc.constant('').map(() => NodeSigningKey.generate().signSync(Buffer.from('x'))),
    fc.string({ unit: 'binary', maxLength: 60 })
  )
}

const jsonValue = fc.oneof(
  { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 2, arbitrary: lookalikes() },
  { weight: 1, arbitrary: fc.constantFrom(0, -1, 1.5, 1e308, true, false, null, [], {}) }
)

const index = fc.nat({ max: 10_000 })

/** Timestamp offsets from now (ms): the window's edges and far-away values. */
const OFFSETS = [-30_001, -30_000, -1, 0, 1, 5_000, 5_001, -3_600_000, 86_400_000, -1e12, 1e12]

const structural: fc.Arbitrary<Structural> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('sameKind' as const),
      at: index,
      pick: fc.nat(),
      offset: fc.oneof(fc.constantFrom(...OFFSETS), fc.integer({ min: -1e7, max: 1e7 })),
    }),
  },
  fc.record({ kind: fc.constant('replace' as const), at: index, value: jsonValue }),
  fc.record({
    kind: fc.constant('replaceText' as const),
    at: index,
    text: fc.oneof(fc.constantFrom(...SPECIAL_TEXT), fc.string({ maxLength: 8 })),
  }),
  fc.record({ kind: fc.constant('swap' as const), at: index, from: index }),
  fc.record({ kind: fc.constant('drop' as const), at: index }),
  fc.record({
    kind: fc.constant('duplicate' as const),
    at: index,
    value: fc.option(jsonValue, { nil: undefined }),
  }),
  fc.record({ kind: fc.constant('reorder' as const), at: index, seed: fc.nat() }),
  fc.record({
    kind: fc.constant('wrap' as const),
    at: index,
    how: fc.constantFrom('array' as const, 'object' as const, 'payload' as const),
  }),
  fc.record({
    kind: fc.constant('addKey' as const),
    at: index,
    key: fc.oneof(fc.constantFrom(...SPECIAL_KEYS), fc.string({ maxLength: 6 })),
    value: jsonValue,
  })
)

const raw: fc.Arbitrary<Raw> = fc.oneof(
  fc.record({
    kind: fc.constant('flip' as const),
    at: index,
    text: fc.oneof(fc.constantFrom(...SPECIAL_TEXT), fc.string({ minLength: 1, maxLength: 1 })),
  }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: index,
    text: fc.oneof(fc.constantFrom(...SPECIAL_TEXT), fc.string({ maxLength: 12 })),
  }),
  fc.record({
    kind: fc.constant('cut' as const),
    at: index,
    length: fc.integer({ min: 1, max: 40 }),
  }),
  fc.record({ kind: fc.constant('truncate' as const), at: index }),
  fc.record({ kind: fc.constant('byte' as const), at: index, byte: fc.nat({ max: 255 }) })
)

const cases: fc.Arbitrary<Case> = fc.oneof(
  // Structural mutations, re-signed or not.
  {
    weight: 5,
    arbitrary: fc.record({
      structural: fc.array(structural, { minLength: 1, maxLength: 3 }),
      claims: fc.constant([]),
      tokenRaw: fc.constant([]),
      resign: fc.boolean(),
      raw: fc.constant([]),
    }),
  },
  // Raw text and byte mutations.
  {
    weight: 3,
    arbitrary: fc.record({
      structural: fc.constant([]),
      claims: fc.constant([]),
      tokenRaw: fc.constant([]),
      resign: fc.constant(false),
      raw: fc.array(raw, { minLength: 1, maxLength: 3 }),
    }),
  },
  // Tokens: mutated claims re-signed by the access key, or mutated token text.
  {
    weight: 2,
    arbitrary: fc.record({
      structural: fc.array(structural, { maxLength: 1 }),
      claims: fc.array(structural, { maxLength: 3 }),
      tokenRaw: fc.array(raw, { maxLength: 2 }),
      resign: fc.constant(true),
      raw: fc.constant([]),
    }),
  },
  // Everything at once.
  {
    weight: 1,
    arbitrary: fc.record({
      structural: fc.array(structural, { maxLength: 2 }),
      claims: fc.array(structural, { maxLength: 1 }),
      tokenRaw: fc.array(raw, { maxLength: 1 }),
      resign: fc.boolean(),
      raw: fc.array(raw, { maxLength: 2 }),
    }),
  }
)

type Kind = 'hash' | 'publicKey' | 'nonce' | 'signature' | 'token' | 'timestamp'

function kindOf(text: string): Kind | undefined {
  if (text.length === 44 && text.startsWith('E')) return 'hash'
  if (text.length === 48 && text.startsWith('1AAI')) return 'publicKey'
  if (text.length === 24 && text.startsWith('0A')) return 'nonce'
  if (text.length === 88 && text.startsWith('0I')) return 'signature'
  if (text.length > 88 && text.startsWith('0I')) return 'token'
  if (!Number.isNaN(parseTimestamp(text))) return 'timestamp'
  return undefined
}

/** A string leaf's value. */
function stringOf(node: JsonNode): string | undefined {
  if (node.t !== 'raw' || !node.text.startsWith('"')) return undefined
  try {
    const value = JSON.parse(node.text) as unknown
    return typeof value === 'string' ? value : undefined
  } catch {
    return undefined // raw text spliced in by an earlier mutation
  }
}

/**
 * A well-formed value of the same kind as `value`: another one from the same message (an
 * identity for a device, the challenge for the request nonce…), a fresh one, or for timestamps
 * one at a chosen offset from now. These pass format checks and exercise the deeper logic.
 */
function sameKind(value: string, kind: Kind, m: { pick: number; offset: number }, ctx: Context) {
  const siblings = ctx.strings.filter(s => s !== value && kindOf(s) === kind)
  const fresh: Record<Kind, () => string> = {
    hash: () => hash(String(m.pick)),
    publicKey: () => NodeSigningKey.generate().publicKeyText,
    nonce: () => nonce(),
    signature: () => NodeSigningKey.generate().signSync(Buffer.from(value)),
    token: () => value.slice(0, 88) + value.slice(88).split('').reverse().join(''),
    timestamp: () => formatTimestamp(ctx.now + m.offset),
  }
  const choices = [...siblings, fresh[kind]()]
  if (kind === 'timestamp') return formatTimestamp(ctx.now + m.offset)
  return choices[m.pick % choices.length] as string
}

interface Context {
  /** Subtrees (JSON text) of valid messages of every target. */
  pool: string[]
  /** Every string in the message being mutated. */
  strings: string[]
  /** The server's clock. */
  now: number
}

/** Applies one structural mutation in place. */
function mutate(holder: { root: JsonNode }, m: Structural, ctx: Context): void {
  const all = slots(holder)
  const pool = ctx.pool
  const slot = all[m.at % all.length] as Slot
  const entries = all.filter(s => s.entry !== undefined)
  const objects = all.filter(s => s.node.t === 'obj')
  switch (m.kind) {
    case 'replace':
      slot.set(toNode(m.value))
      return
    case 'replaceText':
      slot.set({ t: 'raw', text: m.text })
      return
    case 'swap':
      slot.set(toNode(JSON.parse(pool[m.from % pool.length] as string)))
      return
    case 'drop': {
      const e = entries[m.at % Math.max(1, entries.length)]?.entry
      e?.parent.entries.splice(e.index, 1)
      return
    }
    case 'duplicate': {
      const e = entries[m.at % Math.max(1, entries.length)]?.entry
      if (e === undefined) return
      const [key, value] = e.parent.entries[e.index] as [string, JsonNode]
      e.parent.entries.push([key, m.value === undefined ? value : toNode(m.value)])
      return
    }
    case 'reorder': {
      const o = objects[m.at % Math.max(1, objects.length)]?.node
      if (o?.t !== 'obj' || o.entries.length < 2) return
      const random = fc.sample(fc.shuffledSubarray(o.entries, { minLength: o.entries.length }), {
        seed: m.seed,
        numRuns: 1,
      })[0] as [string, JsonNode][]
      o.entries = random
      return
    }
    case 'wrap': {
      const node = slot.node
      if (m.how === 'array') slot.set({ t: 'arr', items: [node] })
      else if (m.how === 'object') slot.set({ t: 'obj', entries: [['value', node]] })
      else slot.set({ t: 'obj', entries: [['payload', node]] })
      return
    }
    case 'sameKind': {
      const leaves = all.flatMap(l => {
        const value = stringOf(l.node)
        const kind = value === undefined ? undefined : kindOf(value)
        return value === undefined || kind === undefined ? [] : [{ slot: l, value, kind }]
      })
      const leaf = leaves[m.at % Math.max(1, leaves.length)]
      if (leaf === undefined) return
      leaf.slot.set({ t: 'raw', text: JSON.stringify(sameKind(leaf.value, leaf.kind, m, ctx)) })
      return
    }
    case 'addKey': {
      const o = objects[m.at % Math.max(1, objects.length)]?.node
      if (o?.t !== 'obj') return
      const entry: [string, JsonNode] = [m.key, toNode(m.value)]
      o.entries.splice(m.at % (o.entries.length + 1), 0, entry)
      return
    }
  }
}

function mutateText(text: string, m: Raw): string {
  const i = m.at % (text.length + 1)
  switch (m.kind) {
    case 'flip':
      return text.slice(0, i) + m.text + text.slice(i + 1)
    case 'insert':
      return text.slice(0, i) + m.text + text.slice(i)
    case 'cut':
      return text.slice(0, i) + text.slice(i + m.length)
    case 'truncate':
      return text.slice(0, i)
    case 'byte':
      return text.slice(0, i) + String.fromCharCode(m.byte) + text.slice(i + 1)
  }
}

/** Raw mutations of a body; a `byte` mutation makes it a Buffer (possibly invalid UTF-8). */
function mutateBody(text: string, mutations: readonly Raw[]): string | Buffer {
  let body: string | Buffer = text
  for (const m of mutations) {
    if (m.kind === 'byte') {
      const bytes: Buffer = Buffer.from(body)
      if (bytes.length > 0) bytes[m.at % bytes.length] = m.byte
      body = bytes
    } else {
      body = mutateText(typeof body === 'string' ? body : body.toString('latin1'), m)
    }
  }
  return body
}

// ------------------------------------------------------------------ valid messages per target

interface Message {
  root: JsonNode
  /** Signs the envelope payload; absent for the unsigned requestSession. */
  signer?: NodeSigningKey
  /** Signs the link container at payload.request.link. */
  linkSigner?: NodeSigningKey
  /** Where the token sits, for access and refresh. */
  tokenPath?: string[]
}

interface Fixture {
  /** A valid message for the current state. */
  message(): Message
}

type Setup = (server: TestServer) => Promise<Fixture>

const envelope = (payload: unknown): JsonNode => ({
  t: 'obj',
  entries: [['payload', toNode(payload)]],
})

const rotating = (extra: (a: TestAccount) => Record<string, unknown>): Setup => {
  return async server => {
    const account = await created(server)
    return {
      message: () => ({
        root: envelope(rotatingPayload(account.first, extra(account))),
        signer: account.first.next,
      }),
    }
  }
}

async function sessionFor(server: TestServer): Promise<{ account: TestAccount; session: Session }> {
  const account = await created(server)
  return { account, session: await openSession(server, account.first) }
}

const SETUPS: Record<Target, Setup> = {
  createAccount: async () => {
    const account = new TestAccount()
    return {
      message: () => ({
        root: envelope(account.createAccountPayload()),
        signer: account.first.current,
      }),
    }
  },
  deleteAccount: rotating(() => ({})),
  rotateDevice: rotating(() => ({})),
  changeRecoveryKey: rotating(() => ({
    recoveryHash: hash(NodeSigningKey.generate().publicKeyText),
  })),
  recoverAccount: async server => {
    const account = await created(server)
    return {
      message: () => ({
        root: envelope(recoverPayload(account, new TestDevice())),
        signer: account.recovery,
      }),
    }
  },
  linkDevice: async server => {
    const account = await created(server)
    return {
      message: () => {
        const device = new TestDevice()
        return {
          root: envelope(
            rotatingPayload(account.first, {}, { link: linkContainer(device, account.identity) })
          ),
          signer: account.first.next,
          linkSigner: device.current,
        }
      },
    }
  },
  unlinkDevice: async server => {
    const account = await created(server)
    const second = await linked(server, account)
    return {
      message: () => ({
        root: envelope(rotatingPayload(account.first, {}, { link: { device: second.device } })),
        signer: account.first.next,
      }),
    }
  },
  requestSession: async server => {
    const account = await created(server)
    return {
      message: () => ({
        root: envelope({
          access: { nonce: nonce() },
          request: { authentication: { identity: account.identity } },
        }),
      }),
    }
  },
  createSession: async server => {
    const account = await created(server)
    const c = await challenge(server, account.identity)
    const key = NodeSigningKey.generate()
    const next = NodeSigningKey.generate()
    return {
      message: () => ({
        root: envelope(createSessionPayload(account.first, c, key, next)),
        signer: account.first.current,
      }),
    }
  },
  refreshSession: async server => {
    const { session } = await sessionFor(server)
    return {
      message: () => ({
        root: envelope(refreshPayload(session)),
        signer: session.next,
        tokenPath: ['payload', 'request', 'access', 'token'],
      }),
    }
  },
  access: async server => {
    const { session } = await sessionFor(server)
    return {
      message: () => ({
        root: envelope({
          access: {
            nonce: nonce(),
            timestamp: formatTimestamp(server.clock.ms),
            token: session.token,
          },
          request: { foo: 'bar', bar: ['foo', 1, null] },
        }),
        signer: session.key,
        tokenPath: ['payload', 'access', 'token'],
      }),
    }
  },
}

const TARGETS = Object.keys(SETUPS) as Target[]

function sign(root: JsonNode, payloadPath: string[], key: NodeSigningKey | undefined): void {
  const container = at(root, payloadPath)
  const payload = child(container, 'payload')
  if (key === undefined || container === undefined || payload === undefined) return
  const text = render(payload)
  setEntry(container, 'signature', {
    t: 'raw',
    text: JSON.stringify(key.signSync(Buffer.from(text))),
  })
}

/** Rebuilds the token with mutated claims signed by the server's access key, then raw edits. */
async function mutateToken(
  server: TestServer,
  token: string,
  claims: readonly Structural[],
  rawEdits: readonly Raw[],
  ctx: Context
): Promise<string> {
  let text = token
  if (claims.length > 0) {
    const holder = { root: toNode(JSON.parse(decodeToken(token).json)) }
    const strings = slots(holder).flatMap(l => stringOf(l.node) ?? [])
    for (const m of claims) mutate(holder, m, { ...ctx, strings })
    const json = render(holder.root)
    const keys = await server.auth.keys()
    text = (await keys.accessKey.sign(Buffer.from(json))) + encodeBase64Url(gzipSync(json))
  }
  for (const m of rawEdits) text = mutateText(text, m)
  return text
}

/** Sends a body to a target: `handle` for operations, `verifyAccess` + `respond` for access. */
async function send(
  server: TestServer,
  target: Target,
  body: string | Buffer,
  checkRevocation: boolean
): Promise<HandlerResult> {
  if (target !== 'access') return server.auth.handle(target as Operation, body, CONTEXT)
  try {
    const options = checkRevocation ? { checkRevocation: { cacheMs: 0 } } : {}
    const principal = await server.auth.verifyAccess(body, CONTEXT, options)
    return {
      status: 200,
      headers: {},
      body: await server.auth.respond(principal.nonce, { echo: principal.request }),
    }
  } catch (error) {
    if (!(error instanceof BetterAuthError)) {
      throw new Error(`verifyAccess threw a non-BetterAuthError: ${String(error)}`)
    }
    return server.auth.errorResult(error)
  }
}

function describeBody(body: string | Buffer): string {
  const text = typeof body === 'string' ? body : `<bytes> ${body.toString('latin1')}`
  return text.length > 2000 ? text.slice(0, 2000) + '…' : text
}

async function checkResult(
  server: TestServer,
  body: string | Buffer,
  result: HandlerResult,
  before: string,
  errors: unknown[]
): Promise<boolean> {
  const fail = (why: string): never => {
    throw new Error(
      `${why}\n  status ${result.status}: ${result.body}\n  sent: ${describeBody(body)}`
    )
  }
  if (errors.length > 0) fail(`logged an error: ${JSON.stringify(errors)}`)
  if (result.status >= 500) fail('5xx')
  if (result.status === 200) {
    const reply = parseStrictJson(result.body).value as { payload?: unknown; signature?: string }
    const text = result.body.slice('{"payload":'.length, result.body.lastIndexOf(',"signature":'))
    const key = await server.auth.responsePublicKey()
    if (
      typeof reply.signature !== 'string' ||
      !(await server.auth.verifier.verify(Buffer.from(text), reply.signature, key))
    ) {
      fail('a 200 that is not a signed response envelope')
    }
    return true
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(result.body)
  } catch {
    fail('error body is not JSON')
  }
  const error = (parsed as { error?: { code?: unknown; message?: unknown } }).error
  if (
    Object.keys(parsed as object).join() !== 'error' ||
    typeof error !== 'object' ||
    error === null ||
    Object.keys(error).join() !== 'code,message' ||
    typeof error.message !== 'string' ||
    typeof error.code !== 'string' ||
    !(error.code in ERROR_CODES)
  ) {
    fail('error body is not {"error":{"code","message"}} with a known code')
  }
  const code = (error as { code: keyof typeof ERROR_CODES }).code
  if (ERROR_CODES[code].status !== result.status) fail(`status does not match ${code}`)
  if (server.snapshot() !== before) fail('a rejected message changed the store')
  return false
}

/** A server whose logger records errors, for the "nothing logged as an error" property. */
/**
 * A server whose logger records errors and whose audit events are recorded. Rate limiting is
 * off: it would answer most cases with 429 long before they reach the logic under test.
 */
function fuzzServer(errors: unknown[], events: AuditEvent[]): TestServer {
  const quiet = () => undefined
  return makeServer({
    rateLimit: false,
    onEvent: event => events.push(event),
    logger: { error: object => errors.push(object), warn: quiet, info: quiet, debug: quiet },
  })
}

const CONTEXT = { ip: '192.0.2.7', path: '/fuzz' }

/**
 * Audit events: exactly one per refusal (with the refusal's code), one per accepted operation,
 * none for a served access request; and never a signature, token, nonce or public key in full.
 */
function checkEvents(
  target: Target,
  result: HandlerResult,
  events: AuditEvent[],
  strings: string[]
): void {
  const fail = (why: string): never => {
    throw new Error(
      `${why}\n  status ${result.status}: ${result.body}\n  events: ${JSON.stringify(events)}`
    )
  }
  const expected = target === 'access' && result.status === 200 ? 0 : 1
  if (events.length !== expected) fail(`${events.length} audit events, expected ${expected}`)
  const event = events[0]
  if (event !== undefined) {
    if (result.status === 200) {
      if (event.code !== undefined || event.type === 'request.rejected')
        fail('success event with a code')
    } else {
      const code = (JSON.parse(result.body) as { error: { code: string } }).error.code
      const type = target === 'access' ? 'access.denied' : 'request.rejected'
      if (event.type !== type || event.code !== code) fail(`refusal event is not ${type} ${code}`)
    }
    if (event.ip !== CONTEXT.ip) fail('event without the client IP')
  }
  const text = JSON.stringify(events)
  for (const value of strings) {
    const kind = kindOf(value)
    if (kind !== undefined && kind !== 'hash' && kind !== 'timestamp' && text.includes(value)) {
      fail(`an audit event carries a ${kind}`)
    }
  }
}

describe(`fuzz: ${RUNS} mutated messages per target, seed ${SEED}`, () => {
  // Subtrees of valid messages of every target, for swapping fields between messages.
  const pool: string[] = []

  beforeAll(async () => {
    const server = fuzzServer([], [])
    for (const target of TARGETS) {
      const message = (await SETUPS[target](server)).message()
      sign(message.root, ['payload', 'request', 'link'], message.linkSigner)
      sign(message.root, [], message.signer)
      for (const slot of slots({ root: message.root })) pool.push(render(slot.node))
    }
  })

  it.each(TARGETS.map((target, i) => [target, i] as const))(
    '%s',
    async (target, i) => {
      const errors: unknown[] = []
      const events: AuditEvent[] = []
      let server = fuzzServer(errors, events)
      let fixture = await SETUPS[target](server)
      let served = 0
      let accepted = 0
      const seen = new Map<string, number>()
      let history: string[] = []
      await fc.assert(
        fc.asyncProperty(cases, fc.boolean(), async (c, checkRevocation) => {
          if (++served % CASES_PER_SERVER === 0) {
            server = fuzzServer(errors, events)
            fixture = await SETUPS[target](server)
          }
          const message = fixture.message()
          const holder = { root: message.root }
          const strings = slots(holder).flatMap(l => stringOf(l.node) ?? [])
          // Values of the last accepted message too: used nonces, rotated-away keys, old tokens.
          const ctx: Context = { pool, strings: [...strings, ...history], now: server.clock.ms }
          if (message.tokenPath !== undefined && (c.claims.length > 0 || c.tokenRaw.length > 0)) {
            const node = at(holder.root, message.tokenPath)
            if (node?.t === 'raw') {
              const token = JSON.parse(node.text) as string
              const mutated = await mutateToken(server, token, c.claims, c.tokenRaw, ctx)
              node.text = JSON.stringify(mutated)
            }
          }
          for (const m of c.structural) mutate(holder, m, ctx)
          if (c.resign || c.structural.length === 0) {
            sign(holder.root, ['payload', 'request', 'link'], message.linkSigner)
            sign(holder.root, [], message.signer)
          }
          const body = mutateBody(render(holder.root), c.raw)
          const before = server.snapshot()
          errors.length = 0
          events.length = 0
          let result: HandlerResult
          try {
            result = await send(server, target, body, checkRevocation)
          } catch (error) {
            throw new Error(`${target} threw: ${String(error)}\n  sent: ${describeBody(body)}`)
          }
          const code =
            result.status === 200
              ? '200'
              : (JSON.parse(result.body) as { error: { code: string } }).error.code
          seen.set(code, (seen.get(code) ?? 0) + 1)
          checkEvents(
            target,
            result,
            events,
            slots(holder).flatMap(l => stringOf(l.node) ?? [])
          )
          if (await checkResult(server, body, result, before, errors)) {
            accepted++
            history = slots(holder).flatMap(l => stringOf(l.node) ?? [])
            // The state moved on (a key rotated, a challenge was used…): start over.
            fixture = await SETUPS[target](server)
          }
        }),
        { numRuns: RUNS, seed: SEED + i }
      )
      // Sanity: the mutations are not all trivially broken, nor all harmless.
      expect(accepted).toBeLessThan(RUNS)
      if (RUNS >= 500) {
        // Enough cases get past the format checks to exercise the operation's own logic.
        const deeper = [...seen].filter(([code]) => code !== '200' && code !== 'BA101')
        expect(deeper.reduce((sum, [, n]) => sum + n, 0)).toBeGreaterThan(RUNS / 50)
      }
      if (process.env.FUZZ_STATS !== undefined) {
        console.warn(target, JSON.stringify(Object.fromEntries([...seen].sort())))
      }
    },
    600_000
  )
})

describe('fuzz: codecs', () => {
  const runs = Math.max(100, Math.floor(RUNS / 2))

  it('strict JSON parses exactly what JSON.parse parses, or refuses with BA101', () => {
    const text = fc.oneof(
      fc.json({ maxDepth: 4 }),
      fc.string({ unit: 'binary', maxLength: 40 }),
      fc.tuple(fc.json({ maxDepth: 3 }), raw).map(([json, m]) => mutateText(json, m))
    )
    fc.assert(
      fc.property(text, t => {
        let expected: unknown
        let valid = true
        try {
          expected = JSON.parse(t)
        } catch {
          valid = false
        }
        try {
          const { value } = parseStrictJson(t, { maxDepth: 64 })
          expect(valid).toBe(true)
          expect(value).toEqual(expected)
        } catch (error) {
          if (!(error instanceof BetterAuthError)) throw error
          expect(error.code).toBe('BA101')
        }
      }),
      { numRuns: runs, seed: SEED }
    )
  })

  it('base64url decoding is canonical: whatever decodes re-encodes to the same text', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ maxLength: 12 }), fc.base64String({ maxLength: 12 })),
        fc.uint8Array({ maxLength: 40 }),
        (text, bytes) => {
          const decoded = decodeBase64Url(text)
          if (decoded !== undefined) expect(encodeBase64Url(decoded)).toBe(text)
          expect(decodeBase64Url(encodeBase64Url(bytes))).toEqual(Buffer.from(bytes))
        }
      ),
      { numRuns: runs, seed: SEED }
    )
  })

  it('timestamps: our own format round-trips; anything else parses to a number or NaN, never throws', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -62_135_596_800_000, max: 253_402_300_799_999 }),
        fc.string({ maxLength: 40 }),
        (ms, text) => {
          expect(parseTimestamp(formatTimestamp(ms))).toBe(ms)
          expect(typeof parseTimestamp(text)).toBe('number')
        }
      ),
      { numRuns: runs, seed: SEED }
    )
  })

  it('bounded gunzip: random and mutated input either decodes like zlib or throws GzipError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), raw, (bytes, m) => {
        const valid = gzipSync(Buffer.from(bytes))
        const mutated = Buffer.from(mutateText(valid.toString('latin1'), m), 'latin1')
        for (const input of [valid, mutated, Buffer.from(bytes)]) {
          try {
            gunzipBounded(input, 1000)
          } catch (error) {
            if (!(error instanceof GzipError)) throw error
          }
        }
        expect(gunzipBounded(valid, 1000)).toEqual(Buffer.from(bytes))
      }),
      { numRuns: runs, seed: SEED }
    )
  })
})

// ------------------------------------------------------------------ the header form

interface HeaderRequest {
  method: string
  url: string
  headers: Record<string, string | string[]>
  body: Uint8Array | undefined
}

const GRAMMAR = [' ', '\t', '"', '\\', ';', ',', '(', ')', ':', '=', '.', '-', 'A', '/', '+']
const HEADER_NAMES = ['authorization', 'signature-input', 'signature', 'content-digest']

/** One change to a valid header-form request. */
const headerMutation = fc.oneof(
  fc.record({
    kind: fc.constant('text' as const),
    header: fc.constantFrom(...HEADER_NAMES),
    at: fc.nat(),
    length: fc.integer({ min: 0, max: 5 }),
    with: fc.oneof(fc.constantFrom(...GRAMMAR), fc.string({ maxLength: 4 })),
  }),
  fc.record({
    kind: fc.constantFrom('drop' as const, 'duplicate' as const, 'upper-name' as const),
    header: fc.constantFrom(...HEADER_NAMES),
  }),
  fc.record({
    kind: fc.constant('param' as const),
    change: fc.constantFrom(
      'created-1',
      'created+1',
      'created-3600',
      'created+3600',
      'created-decimal',
      'nonce',
      'nonce-short',
      'keyid-other',
      'alg',
      'tag',
      'expires',
      'repeat-created',
      'drop-component',
      'extra-component',
      'second-label'
    ),
  }),
  fc.record({
    kind: fc.constant('target' as const),
    change: fc.constantFrom(
      'method',
      'method-lower',
      'path',
      'path-case',
      'query',
      'no-query',
      'authority',
      'port'
    ),
  }),
  fc.record({
    kind: fc.constant('body' as const),
    change: fc.constantFrom('flip', 'append', 'drop', 'empty'),
    at: fc.nat(),
  }),
  fc.record({
    kind: fc.constant('signature' as const),
    at: fc.nat({ max: 63 }),
    bit: fc.nat({ max: 7 }),
  })
)
type HeaderMutation = typeof headerMutation extends fc.Arbitrary<infer T> ? T : never

function headerValue(request: HeaderRequest, name: string): string | undefined {
  const value = request.headers[name]
  return Array.isArray(value) ? value[0] : value
}

function mutateHeaderRequest(request: HeaderRequest, m: HeaderMutation, otherKey: string): void {
  const h = request.headers
  const input = headerValue(request, 'signature-input') ?? ''
  switch (m.kind) {
    case 'text': {
      const value = headerValue(request, m.header)
      if (value === undefined) return
      const at = m.at % (value.length + 1)
      h[m.header] = value.slice(0, at) + m.with + value.slice(at + m.length)
      return
    }
    case 'drop':
      delete h[m.header]
      return
    case 'duplicate': {
      const value = headerValue(request, m.header)
      if (value !== undefined) h[m.header] = [value, value]
      return
    }
    case 'upper-name': {
      // Same field, another spelling of its name: must change nothing.
      const value = h[m.header]
      if (value === undefined) return
      delete h[m.header]
      h[m.header.toUpperCase()] = value
      return
    }
    case 'param': {
      const created = Number(/created=(\d+)/.exec(input)?.[1] ?? 0)
      const edits: Record<typeof m.change, () => string> = {
        'created-1': () => input.replace(/created=\d+/, `created=${created - 1}`),
        'created+1': () => input.replace(/created=\d+/, `created=${created + 1}`),
        'created-3600': () => input.replace(/created=\d+/, `created=${created - 3600}`),
        'created+3600': () => input.replace(/created=\d+/, `created=${created + 3600}`),
        'created-decimal': () => input.replace(/created=\d+/, `created=${created}.0`),
        nonce: () => input.replace(/nonce="[^"]*"/, `nonce="${nonce()}"`),
        'nonce-short': () => input.replace(/nonce="[^"]*"/, 'nonce="0AAB"'),
        'keyid-other': () => input + `;keyid="${otherKey}"`,
        alg: () => input.replace('ecdsa-p256-sha256', 'ecdsa-p384-sha384'),
        tag: () => input.replace('"better-auth"', '"better-auth-response"'),
        expires: () => input + `;expires=${created + 10}`,
        'repeat-created': () => input + `;created=${created}`,
        'drop-component': () => input.replace(' "@query"', ''),
        'extra-component': () => input.replace(')', ' "content-type")'),
        'second-label': () => input + ', sig2=("@method");created=1',
      }
      h['signature-input'] = edits[m.change]()
      return
    }
    case 'target': {
      const url = new URL(request.url)
      if (m.change === 'method') request.method = request.method === 'POST' ? 'PUT' : 'POST'
      else if (m.change === 'method-lower') request.method = request.method.toLowerCase()
      else if (m.change === 'path') url.pathname += '/x'
      else if (m.change === 'path-case') url.pathname = url.pathname.toUpperCase()
      else if (m.change === 'query') url.search += '&admin=1'
      else if (m.change === 'no-query') url.search = ''
      else if (m.change === 'authority') url.hostname = 'staging.example.com'
      else url.port = '8443'
      request.url = url.href
      return
    }
    case 'body': {
      const body = request.body ?? new Uint8Array(0)
      if (m.change === 'flip' && body.length > 0) {
        const copy = Uint8Array.from(body)
        const i = m.at % copy.length
        copy[i] = (copy[i] as number) ^ 1
        request.body = copy
      } else if (m.change === 'append') request.body = Buffer.concat([body, Buffer.from(' ')])
      else if (m.change === 'drop') request.body = undefined
      else request.body = new Uint8Array(0)
      return
    }
    case 'signature': {
      const value = headerValue(request, 'signature') ?? ''
      const bytes = Buffer.from(value.slice(4, -1), 'base64')
      if (bytes.length !== 64) return
      bytes[m.at] = (bytes[m.at] as number) ^ (1 << m.bit)
      h.signature = `ba=:${bytes.toString('base64')}:`
    }
  }
}

const clone = (r: HeaderRequest): HeaderRequest => ({
  ...r,
  headers: Object.fromEntries(
    Object.entries(r.headers).map(([k, v]) => [k, Array.isArray(v) ? [...v] : v])
  ),
})

describe('fuzz: header form', () => {
  it(`${RUNS} mutated header-form requests: a 4xx protocol error, no nonce used`, async () => {
    const errors: unknown[] = []
    let server = fuzzServer(errors, [])
    let { session } = await sessionFor(server)
    const other = NodeSigningKey.generate().publicKeyText
    let served = 0
    const seen = new Map<string, number>()
    const verify = (r: HeaderRequest) =>
      server.auth.verifyHeaderAccess(
        { ...r, headers: r.headers as HeaderRecord, parsed: undefined },
        CONTEXT,
        { authority: 'api.example.com' }
      )
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'DELETE', 'PUT', 'POST', 'PATCH'),
        fc.constantFrom('/items', '/items/7', '/'),
        fc.constantFrom('', '?limit=10', '?q=a%20b&x'),
        fc.option(fc.constantFrom('{"foo":"bar"}', 'a=1&b=2', 'x'.repeat(300))),
        fc.boolean(),
        fc.array(headerMutation, { minLength: 1, maxLength: 3 }),
        async (method, path, query, bodyText, keyid, mutations) => {
          if (++served % CASES_PER_SERVER === 0) {
            server = fuzzServer(errors, [])
            ;({ session } = await sessionFor(server))
          }
          const url = `https://api.example.com${path}${query}`
          const body = bodyText === null ? undefined : Buffer.from(bodyText)
          const signed = await signHeaderRequest({
            method,
            url,
            ...(body === undefined ? {} : { body }),
            token: session.token,
            signer: session.key,
            nonce: nonce(),
            timestamp: server.clock.ms,
            ...(keyid ? { keyid: session.key.publicKeyText } : {}),
          })
          const original: HeaderRequest = {
            method: signed.method,
            url,
            headers: { 'content-type': 'application/json', ...signed.headers },
            body,
          }
          const mutated = clone(original)
          for (const m of mutations) mutateHeaderRequest(mutated, m, other)
          const before = server.snapshot()
          errors.length = 0
          let refusal: unknown
          try {
            await verify(mutated)
          } catch (error) {
            refusal = error
          }
          if (refusal === undefined) {
            // Accepted: only another spelling of the very request signed (a header name's
            // case, whitespace the grammar allows, an empty query or body …).
            const read = (r: HeaderRequest) =>
              readHeaderAccess(
                { ...r, headers: r.headers as HeaderRecord, expectedAuthority: 'api.example.com' },
                {}
              ).signatureBase
            expect(read(mutated)).toBe(read(original))
            seen.set('200', (seen.get('200') ?? 0) + 1)
            return
          }
          if (!(refusal instanceof BetterAuthError)) {
            throw new Error(`threw ${String(refusal)} for ${JSON.stringify(mutations)}`)
          }
          const result = server.auth.errorResult(refusal)
          expect(result.status).toBeGreaterThanOrEqual(400)
          expect(result.status).toBeLessThan(500)
          expect(ERROR_CODES).toHaveProperty(refusal.code)
          expect(errors).toEqual([])
          seen.set(refusal.code, (seen.get(refusal.code) ?? 0) + 1)
          // Refused: the store is untouched and the original request still verifies.
          expect(server.snapshot()).toBe(before)
          await verify(original)
        }
      ),
      { numRuns: RUNS, seed: SEED + 1000 }
    )
    if (process.env.FUZZ_STATS !== undefined) {
      console.warn('header form', JSON.stringify(Object.fromEntries([...seen].sort())))
    }
    // The mutations reach past the parser: the digest and signature checks answer too (the
    // window and nonce checks come after the signature, which every such change breaks).
    if (RUNS >= 500)
      for (const code of ['BA101', 'BA201']) expect(seen.get(code)).toBeGreaterThan(0)
  }, 600_000)
})
