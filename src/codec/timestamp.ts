/**
 * RFC 3339 timestamps. We emit UTC with millisecond precision (`2025-10-19T17:26:07.097Z`) and
 * accept any RFC 3339 date-time: more fractional digits are truncated to milliseconds, and a
 * numeric offset is honoured. Anything else (including out-of-range fields) is rejected.
 */

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,32}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/

const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

function daysIn(year: number, month: number): number {
  if (month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)) return 29
  return DAYS[month - 1] as number
}

/** Milliseconds since the epoch, or NaN when `text` is not an RFC 3339 date-time. */
export function parseTimestamp(text: unknown): number {
  if (typeof text !== 'string' || text.length > 64) return NaN
  const m = RFC3339.exec(text)
  if (m === null) return NaN
  const year = Number(m[1])
  const month = Number(m[2])
  const day = Number(m[3])
  const hour = Number(m[4])
  const minute = Number(m[5])
  const second = Number(m[6])
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) return NaN
  // A leap second (:60) is read as the last millisecond before the next minute.
  if (hour > 23 || minute > 59 || second > 60) return NaN
  const fraction = m[7] === undefined ? 0 : Number(m[7].slice(0, 3).padEnd(3, '0'))
  let offset = 0
  if (m[8] === undefined) {
    const oh = Number(m[10])
    const om = Number(m[11])
    if (oh > 23 || om > 59) return NaN
    offset = (m[9] === '-' ? -1 : 1) * (oh * 60 + om) * 60_000
  }
  let ms = Date.UTC(year, month - 1, day, hour, minute, Math.min(second, 59), fraction)
  if (year < 100) {
    // Date.UTC maps years 0–99 to 1900–1999.
    const date = new Date(ms)
    date.setUTCFullYear(year)
    ms = date.getTime()
  }
  return (second === 60 ? ms + 999 - fraction : ms) - offset
}

/** Formats milliseconds since the epoch as RFC 3339 UTC with millisecond precision. */
export function formatTimestamp(ms: number): string {
  return new Date(ms).toISOString()
}
