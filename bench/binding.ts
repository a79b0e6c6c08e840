/**
 * Per-request CPU cost of the header form's parsing and signature base, without ECDSA:
 * readHeaderAccess (structured-headers for the fields, the base built here) against the same
 * work done with http-message-signatures' createSignatureBase. Run by hand:
 *
 *   npx tsx bench/binding.ts            # BENCH_N iterations (default 100000), 5 rounds, median
 */
import { parseDictionary } from 'structured-headers'
import { createSignatureBase, formatSignatureBase } from 'http-message-signatures/lib/httpbis'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { readHeaderAccess, type HeaderRecord } from '../src/binding'

const N = Number(process.env.BENCH_N ?? 100_000)
const ROUNDS = 5

interface Case {
  name: string
  method: string
  url: string
  headers: Record<string, string>
  body?: string
  signatureBase: string
}
const vectors = JSON.parse(
  readFileSync(join(__dirname, '..', 'test', 'fixtures', 'http-binding-vectors.json'), 'utf8')
) as { requests: Case[] }

function time(run: () => void): number {
  const results: number[] = []
  for (let r = 0; r < ROUNDS; r++) {
    const start = process.hrtime.bigint()
    for (let i = 0; i < N; i++) run()
    results.push(Number(process.hrtime.bigint() - start) / 1000 / N)
  }
  results.sort((a, b) => a - b)
  return results[Math.floor(ROUNDS / 2)] as number
}

for (const name of ['get-with-query', 'put-json']) {
  const c = vectors.requests.find(r => r.name === name) as Case
  const body = c.body === undefined ? undefined : new TextEncoder().encode(c.body)
  const ours = (): string =>
    readHeaderAccess({
      method: c.method,
      url: c.url,
      headers: c.headers as HeaderRecord,
      ...(body === undefined ? {} : { body }),
    }).signatureBase
  // The library's path: parse the same fields, then let it derive the components.
  const library = (): string => {
    const input = parseDictionary(c.headers['signature-input'] as string)
    parseDictionary(c.headers.signature as string)
    const member = input.get('ba') as [[string, Map<string, unknown>][], Map<string, unknown>]
    const fields = member[0].map(item => item[0])
    const text = (c.headers['signature-input'] as string).slice(3)
    const lines = createSignatureBase(
      { fields },
      { method: c.method, url: c.url, headers: c.headers }
    )
    return formatSignatureBase(lines) + '\n"@signature-params": ' + text
  }
  if (ours() !== c.signatureBase || library() !== c.signatureBase) throw new Error('bases differ')
  console.log(
    `${name.padEnd(16)} readHeaderAccess ${time(ours).toFixed(2)} µs/op   ` +
      `structured-headers + http-message-signatures base ${time(library).toFixed(2)} µs/op`
  )
}
