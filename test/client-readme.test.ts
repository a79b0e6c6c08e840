/** The README's browser example is examples/web/quickstart.ts as it is (the demo's own client). */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

const root = join(__dirname, '..')

it('shows examples/web/quickstart.ts under "### In the browser" as it is', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const start = readme.indexOf('### In the browser')
  const section = readme.slice(start, readme.indexOf('\n## ', start))
  const blocks = [...section.matchAll(/<!-- quickstart: (\S+) -->\n\n```ts\n([\s\S]*?)```\n/g)]
  expect(blocks.map(b => b[1])).toEqual(['examples/web/quickstart.ts'])
  const [, file, code] = blocks[0] as RegExpMatchArray
  expect(code).toBe(readFileSync(join(root, file as string), 'utf8'))
  // The demo uses it.
  expect(readFileSync(join(root, 'examples/web/app.ts'), 'utf8')).toContain("from './quickstart'")
})
