/**
 * The test vectors of the header form as a document: docs/http-binding-vectors.md, rendered from
 * test/fixtures/http-binding-vectors.json, so an implementer who has only the documents has every
 * message byte for byte. test/binding/vectors-doc.test.ts fails when the two differ; after a run
 * of make-vectors.ts, write the document again:
 *
 *   npx tsx test/binding/vectors-doc.ts
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ERROR_CODES } from '../../src/errors'

export const VECTORS_PATH = join(__dirname, '..', 'fixtures', 'http-binding-vectors.json')
export const DOCUMENT_PATH = join(__dirname, '..', '..', 'docs', 'http-binding-vectors.md')

type Headers = Record<string, string | string[]>

interface Message {
  name: string
  description: string
  method?: string
  url?: string
  request?: string
  status?: number
  headers?: Headers
  body?: string
  nonce?: string
  created?: number
  signatureBase?: string
  signature?: string
  signed?: boolean
  expectedAuthority?: string
  now?: string
  presentTwice?: boolean
  error?: string
}

interface Vectors {
  description: string
  now: string
  accessWindowSeconds: number
  clockSkewSeconds: number
  keys: Record<string, { privateKeyPem: string; publicKey: string }>
  keyRoles: Record<string, string>
  token: { claims: unknown; text: string }
  requests: Message[]
  invalidRequests: Message[]
  responses: Message[]
  invalidResponses: Message[]
}

/** A fenced block; its text as it is (no line of these vectors starts a fence). */
const block = (text: string, info = ''): string => `\`\`\`${info}\n${text}\n\`\`\``

function statusOf(code: string | undefined): string {
  if (code === undefined) return ''
  const entry = (ERROR_CODES as Record<string, { status: number }>)[code]
  return entry === undefined ? code : `${code} (${entry.status})`
}

/** The header lines of a message, one per field line, `Authorization` shortened to the token. */
function headerLines(headers: Headers, token: string): string {
  const lines: string[] = []
  for (const [name, value] of Object.entries(headers)) {
    for (const line of Array.isArray(value) ? value : [value]) {
      const shown = line === `BetterAuth ${token}` ? 'BetterAuth <token>' : line
      lines.push(`${name}: ${shown}`)
    }
  }
  return lines.join('\n')
}

function message(m: Message, token: string, level: string): string {
  const parts = [`${level} \`${m.name}\``, '', m.description + '.', '']
  const facts: string[] = []
  if (m.request !== undefined) facts.push(`answers request \`${m.request}\``)
  if (m.status !== undefined) facts.push(`status ${m.status}`)
  if (m.expectedAuthority !== undefined) {
    facts.push(`verified with the expected authority \`${m.expectedAuthority}\``)
  }
  if (m.now !== undefined) facts.push(`verified at \`${m.now}\``)
  if (m.presentTwice === true) facts.push('presented twice: the second presentation is refused')
  if (m.signed === false) facts.push('unsigned')
  if (m.error !== undefined) facts.push(`refused with **${statusOf(m.error)}**`)
  if (facts.length > 0) parts.push(`- ${facts.join('; ')}`, '')
  if (m.method !== undefined && m.url !== undefined) {
    parts.push(block(`${m.method} ${m.url}`), '')
  }
  if (m.headers !== undefined && Object.keys(m.headers).length > 0) {
    parts.push('Header fields:', '', block(headerLines(m.headers, token), 'http'), '')
  }
  if (m.body !== undefined) parts.push('Body (UTF-8):', '', block(m.body), '')
  if (m.signatureBase !== undefined) {
    parts.push('Signature base:', '', block(m.signatureBase), '')
  }
  if (m.signature !== undefined) {
    parts.push('Signature (base64 of r ‖ s):', '', block(m.signature), '')
  }
  return parts.join('\n')
}

/** The document, from the vectors. */
export function renderVectors(v: Vectors): string {
  const token = v.token.text
  const out: string[] = [
    '# Test vectors of the header form',
    '',
    '<!-- Generated from test/fixtures/http-binding-vectors.json by test/binding/vectors-doc.ts; do not edit. -->',
    '',
    'The messages of [the header form](http-binding.md) §4, in full: fixed keys, a token, valid',
    'requests and replies with their signature bases and signatures, and invalid ones with the',
    'error each must get (code, and HTTP status for requests). The same data as JSON is',
    '`test/fixtures/http-binding-vectors.json`; the tests check this document against it and',
    'verify every signature.',
    '',
    '- ECDSA signatures are randomized: the vectors are verifiable, not reproducible. Bodies are',
    '  UTF-8 text. Header names are lower case; a field given twice is two field lines.',
    `- \`now\`: \`${v.now}\` for every case without its own; access window ${v.accessWindowSeconds} s; clock skew ${v.clockSkewSeconds} s.`,
    '- `<token>` in a header field stands for the token below, as it is (one line).',
    '',
    '## Keys',
    '',
  ]
  for (const [name, key] of Object.entries(v.keys)) {
    const role = v.keyRoles[name] ?? ''
    out.push(`### \`${name}\``, '', `${role.charAt(0).toUpperCase()}${role.slice(1)}.`, '')
    out.push(`Public key: \`${key.publicKey}\``, '', block(key.privateKeyPem.trimEnd()), '')
  }
  out.push('## Token', '', 'Claims:', '', block(JSON.stringify(v.token.claims, null, 2), 'json'))
  out.push('', 'Token (`<token>`):', '', block(token), '')
  out.push('## Requests', '')
  for (const m of v.requests) out.push(message(m, token, '###'))
  out.push('## Invalid requests', '')
  for (const m of v.invalidRequests) out.push(message(m, token, '###'))
  out.push('## Replies', '')
  for (const m of v.responses) out.push(message(m, token, '###'))
  out.push('## Invalid replies', '')
  for (const m of v.invalidResponses) out.push(message(m, token, '###'))
  return (
    out
      .join('\n')
      .replace(/\n{3,}/g, '\n\n')
      .trimEnd() + '\n'
  )
}

export function readVectors(): Vectors {
  return JSON.parse(readFileSync(VECTORS_PATH, 'utf8')) as Vectors
}

if (require.main === module) {
  writeFileSync(DOCUMENT_PATH, renderVectors(readVectors()))
  process.stdout.write(`wrote ${DOCUMENT_PATH}\n`)
}
