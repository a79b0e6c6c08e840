/**
 * docs/http-binding-vectors.md: the vectors as a document. It must be the rendering of the JSON
 * the other tests verify, and it must verify on its own: the signatures of its requests and
 * replies, read from the document alone, over its signature bases, with the keys it gives.
 */
import { createPrivateKey, createPublicKey, verify } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { DOCUMENT_PATH, readVectors, renderVectors } from './vectors-doc'

const document = readFileSync(DOCUMENT_PATH, 'utf8')

/** The sections of one `## title` part, by `### \`name\``. */
function sections(part: string): Map<string, string> {
  const start = document.indexOf(`\n## ${part}\n`)
  const end = document.indexOf('\n## ', start + 1)
  const text = document.slice(start, end < 0 ? undefined : end)
  const found = new Map<string, string>()
  for (const piece of text.split('\n### ').slice(1)) {
    found.set(piece.slice(1, piece.indexOf('`', 1)), piece)
  }
  return found
}

/** The fenced block after `label` in a section. */
function blockAfter(section: string, label: string): string | undefined {
  const at = section.indexOf(`${label}\n\n\`\`\``)
  if (at < 0) return undefined
  const open = section.indexOf('\n', at + label.length + 2) + 1
  return section.slice(open, section.indexOf('\n```', open))
}

/** The public half of a key the document gives (its PKCS#8 PEM block). */
function keyOf(name: string) {
  const section = sections('Keys').get(name) as string
  const pem = /```\n(-----BEGIN PRIVATE KEY-----[\s\S]*?)\n```/.exec(section)?.[1] as string
  return createPublicKey(createPrivateKey(pem))
}

describe('docs/http-binding-vectors.md', () => {
  it('is the rendering of test/fixtures/http-binding-vectors.json (npx tsx test/binding/vectors-doc.ts)', () => {
    expect(document).toBe(renderVectors(readVectors()))
  })

  it.each([
    ['Requests', 'access'],
    ['Replies', 'response'],
  ])('gives %s whose signatures verify, read from the document alone', (part, key) => {
    const publicKey = keyOf(key)
    const checked: string[] = []
    for (const [name, section] of sections(part)) {
      const base = blockAfter(section, 'Signature base:')
      const signature = blockAfter(section, 'Signature (base64 of r ‖ s):')
      if (base === undefined || signature === undefined) continue // an unsigned reply
      const ok = verify(
        'sha256',
        Buffer.from(base),
        { key: publicKey, dsaEncoding: 'ieee-p1363' },
        Buffer.from(signature, 'base64')
      )
      expect([name, ok]).toEqual([name, true])
      // The base's last line is the Signature-Input member's value, as the section gives it.
      expect(section).toContain(`ba=${base.slice(base.lastIndexOf('\n') + 1).slice(21)}`)
      checked.push(name)
    }
    expect(checked.length).toBe(part === 'Requests' ? 5 : 2)
  })
})
