/** The keys rate limits count under, for callers whose IP or identity is only partly known. */

/** The bucket of every request whose client IP is unknown. */
export const UNKNOWN_IP = 'unknown'

/** The rate-limit key of an identity as seen from one client IP. */
export function identityAtIp(identity: string, ip: string | undefined): string {
  return `${identity}@${ip ?? UNKNOWN_IP}`
}
