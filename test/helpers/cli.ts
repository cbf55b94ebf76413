/**
 * Runs the built `herald` command line (dist/cli/main.js) as a child process, with the publish key
 * in its environment (never on its command line) and no HERALD_URL of the caller's.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../../dist/cli/main.js', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `herald <args…>` with HERALD_PUBLISH_KEY=`publishKey` and `stdin` (if any) as its input. */
export function runCli(args: string[], publishKey: string, stdin?: string): Promise<CliResult> {
  const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, HERALD_URL: '', HERALD_PUBLISH_KEY: publishKey }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdin.end(stdin);
  return once(child, 'exit').then(([code]) => ({ code: code as number | null, stdout, stderr }));
}
