/**
 * @module
 * `herald serve`: runs a Herald server (embedded engine, or Redis with `--engine`) until SIGTERM or SIGINT, then drains
 * (held connects are answered with reconnect advice) and exits 0.
 */
import { createHerald } from '../server/create-herald.js';
import { resolveServeConfig, serveOptionsHelp } from '../server/config.js';
import { CONNECTION_CAP } from '../server/settings.js';
import { createLogger } from '../server/logger.js';

export const SERVE_USAGE = `Usage: herald serve [options]

Options (each also read from the environment variable shown, or from the config file):
${serveOptionsHelp()}

Precedence: flag > environment variable > config file (--config) > default. The config file is JSON
or YAML (by extension: .json, .yaml, .yml) keyed by the flag names (max-rate or maxRate); values
as the flags take them, or native numbers, booleans and lists; relative file paths in it are
relative to its folder. \`herald config --print\` shows the result.
`;

export async function serve(argv: readonly string[]): Promise<void> {
  const config = resolveServeConfig(argv, process.env);
  const logger = createLogger(config.logLevel);
  const herald = createHerald({ ...config.herald, logger });
  const address = await herald.listen(config.port, config.host);
  const paths = config.herald.paths ?? ['/bayeux', '/cometd'];
  // The logger redacts a password in the URL.
  const engine = typeof config.herald.engine === 'string' ? config.herald.engine : 'memory';
  logger.info('listening', { host: address.address, port: address.port, paths, engine });
  const cap = CONNECTION_CAP;
  if (config.herald.maxConnections !== undefined) logger.info('connection limit', { maxConnections: config.herald.maxConnections, from: 'max-connections' });
  else if (cap.openFiles === undefined) logger.info('connection limit', { maxConnections: cap.connections, from: 'fixed default: the open-files limit could not be read' });
  else logger.info('connection limit', { maxConnections: cap.connections, from: 'open-files limit', openFiles: cap.openFiles, reserved: cap.reserved });

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('draining', { signal, sessions: herald.sessionCount });
    herald.close().then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (error: unknown) => {
        logger.error('shutdown failed', { error });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
