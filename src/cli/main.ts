#!/usr/bin/env node
/**
 * @module
 * The `herald` command.
 */
import { HeraldError } from '../core/errors.js';
import { CONFIG_USAGE, printConfig } from './config.js';
import { kick, KICK_USAGE, revoke, REVOKE_USAGE, SERVER_SUBSCRIBE_USAGE, serverSubscription } from './control.js';
import { channels, CHANNELS_USAGE, nodes, NODES_USAGE, sessions, SESSIONS_USAGE } from './inspect.js';
import { publish, PublishFailed, PUBLISH_USAGE } from './publish.js';
import { serve, SERVE_USAGE } from './serve.js';
import { subscribe, SUBSCRIBE_USAGE } from './subscribe.js';

const USAGE = `Usage: herald <command> [options]

Commands:
  serve      run a Herald server (embedded in-memory engine)
  config     print the settings serve would run with (--print), and where each came from
  publish    publish a message on a channel
  subscribe  print the messages on a channel as JSON lines
  kick       disconnect sessions (by session, user or channel pattern) on every node
  revoke     revoke tokens (by jti, or a subject's) on every node
  server-subscribe, server-unsubscribe
             put a user's (or a session's) live sessions on a channel, or take them off it
  channels   list the channels subscribed to across the cluster, with subscriber counts
  sessions   list a user's sessions across the cluster
  nodes      list the cluster's nodes with their totals
  help       show this help

${SERVE_USAGE}
${CONFIG_USAGE}
${PUBLISH_USAGE}
${SUBSCRIBE_USAGE}
${KICK_USAGE}
${REVOKE_USAGE}
${SERVER_SUBSCRIBE_USAGE}
${CHANNELS_USAGE}
${SESSIONS_USAGE}
${NODES_USAGE}`;

const INSPECTIONS = { channels: [channels, CHANNELS_USAGE], sessions: [sessions, SESSIONS_USAGE], nodes: [nodes, NODES_USAGE] } as const;

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
    case 'config':
      if (rest.includes('--help') || rest.includes('-h')) {
        process.stdout.write(CONFIG_USAGE);
        return 0;
      }
      process.stdout.write(printConfig(rest, process.env));
      return 0;
    case 'publish':
      if (rest.includes('--help') || rest.includes('-h')) {
        process.stdout.write(PUBLISH_USAGE);
        return 0;
      }
      try {
        return await publish(rest, process.env, process.stdin, process.stdout, process.stderr);
      } catch (error) {
        if (!(error instanceof PublishFailed)) throw error;
        process.stderr.write(`herald: ${error.message}\n`);
        return 1;
      }
    case 'subscribe': {
      if (rest.includes('--help') || rest.includes('-h')) {
        process.stdout.write(SUBSCRIBE_USAGE);
        return 0;
      }
      const running = subscribe(rest, process.env, process.stdout, process.stderr);
      process.once('SIGINT', running.stop);
      process.once('SIGTERM', running.stop);
      const code = await running.done;
      // Let the goodbye to the server leave before the process ends.
      setTimeout(() => process.exit(code), 100).unref();
      return code;
    }
    case 'kick':
    case 'revoke':
      if (rest.includes('--help') || rest.includes('-h')) {
        process.stdout.write(command === 'kick' ? KICK_USAGE : REVOKE_USAGE);
        return 0;
      }
      return (command === 'kick' ? kick : revoke)(rest, process.env, process.stdout, process.stderr);
    case 'server-subscribe':
    case 'server-unsubscribe':
      if (rest.includes('--help') || rest.includes('-h')) {
        process.stdout.write(SERVER_SUBSCRIBE_USAGE);
        return 0;
      }
      return serverSubscription(command === 'server-subscribe' ? 'subscribe' : 'unsubscribe', rest, process.env, process.stdout, process.stderr);
    case 'channels':
    case 'sessions':
    case 'nodes': {
      const [act, usage] = INSPECTIONS[command];
      if (rest.includes('--help') || rest.includes('-h')) {
        process.stdout.write(usage);
        return 0;
      }
      return act(rest, process.env, process.stdout, process.stderr);
    }
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
