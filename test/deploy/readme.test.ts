/** The README's Storage snippets are the real code of examples/deployment.ts (and its runner). */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

const root = join(__dirname, '..', '..')
const readme = readFileSync(join(root, 'README.md'), 'utf8')
const example = ['deployment.ts', 'deployment-listen.ts']
  .map(file => readFileSync(join(root, 'examples', file), 'utf8'))
  .join('\n')

const lines = (text: string): string[] =>
  text
    .split('\n')
    .map(line => line.trim())
    .filter(line => line !== '')

const section = readme.slice(readme.indexOf('## Storage'), readme.indexOf('## Client'))
const snippets = [...section.matchAll(/```ts\n([\s\S]*?)```/g)].map(m => m[1] as string)

it('the Storage section has code snippets', () => {
  expect(snippets.length).toBeGreaterThanOrEqual(3)
})

it.each(snippets.map((snippet, i) => [i, snippet]))(
  'snippet %i is in the example',
  (_i, snippet) => {
    const wanted = lines(snippet as string).join('\n')
    expect(lines(example).join('\n')).toContain(wanted)
  }
)
