/** `--log-format`: `json` lines, `pretty` lines for people, or `auto` (pretty on a terminal). Apart from the logger, so the CLI can parse it without loading pino. */
export type LogFormat = 'json' | 'pretty' | 'auto'
export const LOG_FORMATS: readonly LogFormat[] = ['json', 'pretty', 'auto']
