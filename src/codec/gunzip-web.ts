/**
 * Bounded gunzip through the web platform's `DecompressionStream` (browsers, workers, Node ≥ 18):
 * no `node:zlib`, no `Buffer`. Output beyond `maxOutput` bytes is refused as soon as it is seen.
 */

export class WebGzipError extends Error {
  override readonly name = 'WebGzipError'
}

/** Decompresses gzip `data` whose output is at most `maxOutput` bytes. */
export async function gunzipWeb(data: Uint8Array, maxOutput: number): Promise<Uint8Array> {
  if (data.length < 18 || data[0] !== 0x1f || data[1] !== 0x8b || data[2] !== 8) {
    throw new WebGzipError('not gzip')
  }
  const stream = new DecompressionStream('gzip')
  const writer = stream.writable.getWriter()
  // Errors surface on the reading side; these promises only must not go unhandled.
  writer.write(data as Uint8Array<ArrayBuffer>).catch(() => undefined)
  writer.close().catch(() => undefined)
  const reader = stream.readable.getReader()
  const chunks: Uint8Array[] = []
  let total = 0
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      total += value.length
      if (total > maxOutput) {
        await reader.cancel().catch(() => undefined)
        throw new WebGzipError(`decompresses beyond ${maxOutput} bytes`)
      }
      chunks.push(value)
    }
  } catch (error) {
    if (error instanceof WebGzipError) throw error
    throw new WebGzipError('corrupt gzip data')
  }
  const output = new Uint8Array(total)
  let offset = 0
  for (const chunk of chunks) {
    output.set(chunk, offset)
    offset += chunk.length
  }
  return output
}
