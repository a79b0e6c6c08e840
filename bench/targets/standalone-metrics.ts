/** The standalone server with metrics on (`createMetrics()`): what recording them costs. */
import type { Start } from './common'
import { startStandalone } from './standalone'

export const start: Start = port => startStandalone(port, { metrics: true })
