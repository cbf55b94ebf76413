#!/usr/bin/env node
/**
 * @module
 * The `herald` command.
 */
import { HeraldError } from '../core/errors.js';
import { serve, SERVE_USAGE } from './serve.js';

const USAGE = `Usage: herald <command> [options]

Commands:
  serve      run a Herald server (embedded in-memory engine)
  help       show this help

${SERVE_USAGE}`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      if (rest.includes('--help') || rest.includes('-h')) {
        process.stdout.write(SERVE_USAGE);
        return 0;
      }
      await serve(rest);
      return -1; // keeps running until a signal
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(`herald: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof HeraldError) {
      process.stderr.write(`herald: ${error.message}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`herald: ${(error as Error)?.stack ?? String(error)}\n`);
      process.exitCode = 1;
    }
  },
);
