/**
 * The deploy recipe's containers are real: the Dockerfile builds from sources that exist (and are
 * not ignored), runs package.json's bin as a user other than root with real flags, and checks
 * /health with node; docker-compose.yml runs Redis, nodes on nginx.conf's upstream ports with
 * real flags and variables and time to drain, and nginx with nginx.conf.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { test } from 'node:test';
import { resolveServeConfig } from '../../src/server/config.js';
import {
  asList, asMap, DEPLOY, deployFile, dockerEnv, ENV_NAMES, execForm, filledEnv, packageBin, parseDockerfile, parseEnvFile, parseYaml, ROOT, serveArgs, shutdownGraceMs, timeSpanMs, upstreamPorts,
} from '../helpers/recipes.js';

test('Dockerfile: node:20-slim, COPY sources exist, CMD flags parse, HEALTHCHECK asks /health', () => {
  const instructions = parseDockerfile(deployFile('Dockerfile'));
  const of = (op: string) => instructions.filter((i) => i.op === op);
  const froms = of('FROM').map((i) => i.args);
  assert.ok(froms.length >= 2 && froms.every((f) => f.startsWith('node:20-slim')), `multi-stage on node:20-slim: ${froms.join(', ')}`);
  const stages = froms.map((f) => /\bAS\s+(\S+)/i.exec(f)?.[1]).filter((s) => s !== undefined);

  // Files copied from the build context (the repository root) are there, and not ignored.
  const ignored = deployFile('Dockerfile.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  const copied: string[] = [];
  for (const { args } of of('COPY')) {
    const words = args.split(/\s+/);
    const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
    const sources = words.filter((w) => !w.startsWith('--')).slice(0, -1);
    assert.ok(sources.length > 0, `COPY ${args} names a source`);
    if (from !== undefined) {
      assert.ok(stages.includes(from), `COPY --from=${from} names a stage`);
      continue;
    }
    for (const source of sources) {
      assert.ok(existsSync(join(ROOT, source)), `COPY ${source}: exists in the repository`);
      assert.ok(!ignored.some((pattern) => source === pattern || source.startsWith(`${pattern}/`)), `COPY ${source} is not in Dockerfile.dockerignore`);
      copied.push(posix.normalize(source));
    }
  }
  // The build stage has what `npm ci` and `npm run build` read.
  const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const buildReads = ['package.json', 'package-lock.json', 'src'];
  for (const [, config] of manifest.scripts.build!.matchAll(/tsc -p (\S+)/g)) {
    for (let file: string | undefined = config; file !== undefined; ) {
      buildReads.push(file);
      const extended = (JSON.parse(readFileSync(join(ROOT, file), 'utf8')) as { extends?: string }).extends;
      file = extended === undefined ? undefined : posix.normalize(extended);
    }
  }
  for (const [, script] of manifest.scripts.build!.matchAll(/node (\S+\.m?js)/g)) buildReads.push(script!);
  for (const file of buildReads) assert.ok(copied.includes(file), `the image build copies ${file}`);
  assert.ok(of('RUN').some((i) => /npm ci\b/.test(i.args)) && of('RUN').some((i) => /npm run build/.test(i.args) && /npm prune --omit=dev/.test(i.args)), 'npm ci, npm run build, npm prune --omit=dev');

  const user = of('USER').at(-1)?.args;
  assert.ok(user !== undefined && user !== 'root' && user !== '0', 'runs as a user other than root');
  const env = dockerEnv(instructions);
  const cmd = execForm(of('CMD').at(-1)!.args, 'CMD');
  const workdir = of('WORKDIR').at(-1)!.args;
  assert.equal(cmd[0], 'node');
  assert.equal(posix.normalize(cmd[1]!), packageBin(), "CMD runs package.json's bin");
  assert.ok(!posix.isAbsolute(cmd[1]!) || cmd[1]!.startsWith(workdir));
  const config = resolveServeConfig(serveArgs(cmd, 'CMD'), env);
  assert.equal(config.host, '0.0.0.0', 'reachable from outside the container');
  assert.equal(config.herald.demo, false);
  assert.deepEqual(of('EXPOSE').map((i) => i.args), [String(config.port)], 'EXPOSE is the port Herald listens on');

  // docker stop's default 10 s may be shorter than the drain: the documented run gives more.
  for (const [where, text] of [['Dockerfile', deployFile('Dockerfile')], ['docs/deploy.md', readFileSync(join(ROOT, 'docs', 'deploy.md'), 'utf8')]] as const) {
    const run = /docker run .*--stop-timeout (\d+)/.exec(text);
    assert.ok(run !== null && Number(run[1]) * 1000 >= shutdownGraceMs(config) + 10_000, `${where}: docker run gives the drain time (--stop-timeout)`);
  }

  const healthcheck = of('HEALTHCHECK').at(-1)?.args;
  assert.ok(healthcheck !== undefined, 'HEALTHCHECK is set');
  const probe = execForm(healthcheck.slice(healthcheck.indexOf('CMD') + 3).trim(), 'HEALTHCHECK CMD');
  assert.equal(probe[0], 'node', 'the slim image has node, not curl');
  assert.match(probe.join(' '), /\/health/);
});

test('docker-compose.yml: Redis, nodes on the upstream ports with real flags, nginx with nginx.conf', () => {
  const compose = asMap(parseYaml(deployFile('docker-compose.yml')), 'the file');
  const services = asMap(compose.services, 'services');
  const image = parseDockerfile(deployFile('Dockerfile'));
  const example = filledEnv(parseEnvFile(deployFile('herald.env.example')).active);
  const nodePorts: number[] = [];
  let nginxService: string | undefined;
  for (const [name, value] of Object.entries(services)) {
    const service = asMap(value, name);
    const volumes = service.volumes === undefined ? [] : asList(service.volumes, `${name}.volumes`);
    if (volumes.some((v) => v.endsWith(':/etc/nginx/nginx.conf:ro'))) {
      nginxService = name;
      const confMount = volumes.find((v) => v.endsWith(':/etc/nginx/nginx.conf:ro'))!;
      assert.equal(join(DEPLOY, confMount.split(':')[0]!), join(DEPLOY, 'nginx.conf'), 'nginx runs docs/deploy/nginx.conf');
      const certDir = /ssl_certificate\s+(\S+)\/[^/\s]+;/.exec(deployFile('nginx.conf'))![1]!;
      assert.ok(volumes.some((v) => v.split(':')[1] === certDir), `the certificates are mounted at ${certDir}`);
    }
    if (service.command === undefined || !asList(service.command, `${name}.command`).some((word) => word.endsWith('main.js'))) continue;
    const build = asMap(service.build, `${name}.build`);
    assert.ok(existsSync(join(DEPLOY, String(build.context), String(build.dockerfile))), `${name} builds docs/deploy/Dockerfile`);
    assert.equal(join(DEPLOY, String(build.context)), ROOT, `${name} builds from the repository root`);
    assert.equal(service.env_file, 'herald.env', `${name} reads herald.env (a filled-in herald.env.example)`);
    const environment = asMap(service.environment, `${name}.environment`) as Record<string, string>;
    for (const key of Object.keys(environment)) assert.ok(ENV_NAMES.has(key), `${name}: ${key} is a herald serve setting`);
    const config = resolveServeConfig(serveArgs(asList(service.command, `${name}.command`), name), { ...dockerEnv(image), ...example, ...environment });
    assert.equal(config.herald.maxSessionsPerAddress, 0);
    assert.equal(config.host, '127.0.0.1', `${name} listens only inside the namespace it shares with nginx`);
    const engine = new URL(String(config.herald.engine));
    assert.ok(engine.hostname in services, `${name}'s Redis (${engine.hostname}) is a service`);
    assert.ok(service.stop_grace_period !== undefined && timeSpanMs(String(service.stop_grace_period)) >= shutdownGraceMs(config) + 10_000, `${name} has time to drain (stop_grace_period)`);
    nodePorts.push(config.port);
  }
  assert.ok(nginxService !== undefined, 'an nginx service runs nginx.conf');
  for (const [name, value] of Object.entries(services)) {
    const service = asMap(value, name);
    if (service.command !== undefined && asList(service.command, name).some((word) => word.endsWith('main.js'))) {
      assert.equal(service.network_mode, `service:${nginxService}`, `${name} shares nginx's network namespace, where the upstream's 127.0.0.1 is`);
    }
  }
  assert.deepEqual(nodePorts.sort(), upstreamPorts().sort(), 'the nodes are the upstream of nginx.conf');
});
