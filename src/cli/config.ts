/**
 * @module
 * `herald config --print`: the settings `herald serve` would run with, from the same flags,
 * environment and config file, each with where it came from; secrets masked.
 */
import { stringify } from 'yaml';
import { HeraldError } from '../core/errors.js';
import { effectiveServeConfig } from '../server/config.js';

export const CONFIG_USAGE = `Usage: herald config --print [--format json|yaml] [serve options]

Prints the settings \`herald serve\` would run with, given the same options, environment variables
and config file (--config / HERALD_CONFIG): every setting as {"value", "source"}, the source being
flag, env, file or default. Secrets (publish-key, admin-key, jwt-secret, the password in an engine
URL) are shown as ***. A bad setting is refused as \`herald serve\` refuses it (exit 2).
`;

/** The text `herald config` prints for `argv` (its own options and serve's) and `env`. */
export function printConfig(argv: readonly string[], env: NodeJS.ProcessEnv): string {
  let print = false;
  let format = 'json';
  const serveArgs: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--print') print = true;
    else if (arg === '--format') format = argv[++i] ?? '';
    else if (arg.startsWith('--format=')) format = arg.slice('--format='.length);
    else serveArgs.push(arg);
  }
  if (!print) throw new HeraldError('HERALD_ERR_INVALID_OPTION', `config: expected --print\n\n${CONFIG_USAGE}`);
  if (format !== 'json' && format !== 'yaml') throw new HeraldError('HERALD_ERR_INVALID_OPTION', `--format: expected json or yaml, got ${JSON.stringify(format)}`);
  const settings = effectiveServeConfig(serveArgs, env);
  if (format === 'yaml') return stringify(settings);
  // One setting a line: {"value", "source"} stays readable, and the whole is still JSON.
  const lines = Object.entries(settings).map(([name, setting]) => `  ${JSON.stringify(name)}: ${JSON.stringify(setting)}`);
  return `{\n${lines.join(',\n')}\n}\n`;
}
