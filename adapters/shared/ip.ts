/** The client IP behind proxies: X-Forwarded-For is honoured only as far as it is trusted. */

/**
 * - `false` (default): the socket address; X-Forwarded-For is ignored.
 * - `true`: the left-most X-Forwarded-For address (every proxy is trusted).
 * - a number n: n proxies in front of the app are trusted; the address n hops back is used.
 */
export type TrustProxy = boolean | number

/** The client IP for a connection from `remoteAddress` carrying `forwardedFor`. */
export function clientIp(
  remoteAddress: string | undefined,
  forwardedFor: string | string[] | undefined,
  trustProxy: TrustProxy = false
): string | undefined {
  const hops = trustProxy === true ? Infinity : trustProxy === false ? 0 : trustProxy
  if (hops <= 0 || forwardedFor === undefined) return normalize(remoteAddress)
  const chain = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor)
    .split(',')
    .map(part => part.trim())
    .filter(part => part !== '')
  // The nearest proxy appended the last entry; walk back one entry per trusted proxy.
  const addresses = [...chain, remoteAddress ?? '']
  const index = Math.max(0, addresses.length - 1 - hops)
  return normalize(addresses[index])
}

function normalize(address: string | undefined): string | undefined {
  if (address === undefined || address === '') return undefined
  return address.startsWith('::ffff:') ? address.slice(7) : address
}
