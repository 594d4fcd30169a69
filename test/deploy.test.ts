/**
 * The deployment files: docker-compose.yml, the Dockerfile and the two nginx configurations. Nothing here
 * needs a Docker engine: the compose CLI validates and normalises the compose file (`docker compose
 * config`), and `nginx -t` checks both nginx configurations. Without the compose CLI or nginx, those tests
 * skip with a reason that starts with "service unavailable" (under REQUIRE_SERVICES=1, as in CI, they fail
 * instead); the checks on the files' text always run.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadConfig } from '../src/config.ts';

const ROOT = new URL('..', import.meta.url).pathname;
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
const COMPOSE_FILE = join(ROOT, 'docker-compose.yml');
const NGINX = '/usr/sbin/nginx';
/** The image the compose file builds from this repository (every other image is pulled, so pinned). */
const BUILT_IMAGE = 'chat-backend:local';
/** An exact version (x.y.z, optionally a variant such as -alpine), or a digest. */
const PINNED = /^[a-z0-9][a-z0-9./_-]*:\d+\.\d+\.\d+(-[a-z0-9.]+)*(@sha256:[0-9a-f]{64})?$/;

const scratch = mkdtempSync(join(tmpdir(), 'chat-deploy-test-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

/**
 * node:test's `skip` for a test that needs a tool: false when it is there; the reason when it is not,
 * except under REQUIRE_SERVICES=1 (CI), where the test runs and fails with `requireTool` instead.
 */
function skipWithout(available: boolean, reason: string): string | false {
  return available || process.env.REQUIRE_SERVICES === '1' ? false : reason;
}

function requireTool(available: boolean, reason: string): void {
  if (!available) assert.fail(`${reason}, and REQUIRE_SERVICES=1 forbids skipping the deployment tests`);
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env) {
  const result = spawnSync(command, args, { cwd: ROOT, env, encoding: 'utf8', timeout: 20_000 });
  return {
    status: result.error ? null : result.status,
    stdout: result.stdout ?? '',
    stderr: result.stderr ?? '',
  };
}

/** `docker compose` (the CLI plugin) or a standalone `docker-compose`, if it is Compose v2 or later. */
function findCompose(): string[] | undefined {
  for (const command of [['docker', 'compose'], ['docker-compose']]) {
    const version = run(command[0]!, [...command.slice(1), 'version', '--short']);
    // Compose v1 (Debian's docker-compose 1.29) does not know the Compose Specification (`name:`, …).
    if (version.status === 0 && /^v?([2-9]|\d{2,})\./.test(version.stdout.trim())) return command;
  }
  return undefined;
}

/**
 * Runs the compose CLI on docker-compose.yml with only the variables given (plus PATH and HOME): not the
 * caller's environment, nor an .env file beside the compose file.
 */
function compose(command: string[], args: string[], vars: Record<string, string>) {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, ...vars };
  if (process.env.DOCKER_CONFIG) env.DOCKER_CONFIG = process.env.DOCKER_CONFIG;
  return run(
    command[0]!,
    [
      ...command.slice(1),
      '-f',
      COMPOSE_FILE,
      '--project-directory',
      ROOT,
      '--env-file',
      '/dev/null',
      ...args,
    ],
    env,
  );
}

/**
 * Which block each line of docker-compose.yml belongs to: `services.<name>` for a service, the key itself
 * for another top-level key (x-app, volumes…). Enough for this file's two-space layout.
 */
function composeBlocks(text: string): { owner: string; line: string }[] {
  let top = '';
  let service = '';
  return text.split('\n').map((line) => {
    const topKey = /^([A-Za-z0-9_.-]+):/.exec(line);
    if (topKey) {
      top = topKey[1]!;
      service = '';
    }
    const serviceKey = top === 'services' ? /^ {2}([A-Za-z0-9_.-]+):/.exec(line) : null;
    if (serviceKey) service = serviceKey[1]!;
    return { owner: service ? `services.${service}` : top, line };
  });
}

describe('docker-compose.yml', () => {
  const text = read('docker-compose.yml');
  const lines = composeBlocks(text).filter(({ line }) => !/^\s*#/.test(line));

  it('pins every image it pulls to an exact version (no latest, no floating major or minor)', () => {
    const images = lines.flatMap(({ owner, line }) => {
      const match = /^\s+image:\s*["']?([^"'\s#]+)/.exec(line);
      return match ? [{ owner, image: match[1]! }] : [];
    });
    assert.ok(images.length >= 6, `expected the images of every service, found ${JSON.stringify(images)}`);
    for (const { owner, image } of images) {
      if (image === BUILT_IMAGE) continue;
      assert.match(image, PINNED, `${owner}: image ${image} is not pinned to an exact version`);
    }
    // The one unpinned name is the image built here, never pulled: its services build it.
    const built = lines.filter(({ line }) => line.includes(`image: ${BUILT_IMAGE}`));
    for (const { owner } of built) {
      assert.ok(
        lines.some((l) => l.owner === owner && /^\s+build:\s*\.\s*$/.test(l.line)),
        `${owner} names ${BUILT_IMAGE} without building it`,
      );
    }
  });

  it('publishes a host port only for nginx, so `--scale api=N` can start N replicas', () => {
    const published = lines.filter(({ line }) => /^\s+ports:/.test(line)).map(({ owner }) => owner);
    assert.deepEqual(published, ['services.nginx']);
    // A fixed container name would stop a second replica from starting as surely as a fixed port.
    assert.ok(!lines.some(({ line }) => /^\s+container_name:/.test(line)), 'container_name breaks --scale');
  });

  it('requires ADMIN_TOKEN from the environment', () => {
    assert.match(text, /ADMIN_TOKEN: \$\{ADMIN_TOKEN:\?set ADMIN_TOKEN\}/);
  });

  const cli = findCompose();
  const noCli = 'service unavailable: docker compose CLI not installed (Compose v2 or later)';

  it('is valid for the compose CLI, which refuses it without ADMIN_TOKEN', {
    skip: skipWithout(!!cli, noCli),
  }, () => {
    requireTool(!!cli, noCli);
    const command = cli!;
    const missing = compose(command, ['config', '--quiet'], {});
    assert.notEqual(missing.status, 0, 'docker compose config accepted the file without ADMIN_TOKEN');
    assert.match(missing.stderr, /set ADMIN_TOKEN/);

    const result = compose(command, ['config', '--format', 'json'], {
      ADMIN_TOKEN: 'test-admin-token-0123456789',
    });
    assert.equal(result.status, 0, `docker compose config failed:\n${result.stderr}`);
    const model = JSON.parse(result.stdout) as {
      services: Record<
        string,
        {
          image?: string;
          build?: unknown;
          command?: string[];
          ports?: { target: number; published: string }[];
          environment?: Record<string, string>;
          depends_on?: Record<string, { condition: string }>;
        }
      >;
    };
    const services = model.services;
    assert.deepEqual(Object.keys(services).sort(), [
      'api',
      'indexer',
      'mariadb',
      'nginx',
      'opensearch',
      'rabbitmq',
      'redis',
      'worker',
    ]);
    // The normalised model agrees with the text checks above (merge keys and all).
    for (const [name, service] of Object.entries(services)) {
      if (service.build) {
        assert.equal(service.image, BUILT_IMAGE, name);
      } else {
        assert.match(service.image ?? '', PINNED, `${name}: ${service.image}`);
      }
      if (name !== 'nginx') assert.equal(service.ports, undefined, `${name} publishes a port`);
    }
    assert.deepEqual(
      services.nginx!.ports!.map((p) => [p.target, p.published]),
      [[8080, '8080']],
    );
    for (const role of ['api', 'worker', 'indexer']) {
      const service = services[role]!;
      assert.deepEqual(service.command, [role]);
      assert.equal(service.environment?.HOST, '0.0.0.0');
      for (const url of ['MYSQL_URL', 'REDIS_URL', 'AMQP_URL', 'SEARCH_URL']) {
        assert.ok(service.environment?.[url], `${role}: ${url} missing`);
      }
      // The guest user works only from localhost: the broker gets a user of its own.
      assert.doesNotMatch(service.environment!.AMQP_URL!, /guest/);
      for (const dependency of ['mariadb', 'redis', 'rabbitmq', 'opensearch']) {
        assert.equal(
          service.depends_on?.[dependency]?.condition,
          'service_healthy',
          `${role} -> ${dependency}`,
        );
      }
    }
    assert.equal(services.api!.environment?.ADMIN_TOKEN, 'test-admin-token-0123456789');
    // The token guards the API only; the other roles do not get it.
    assert.equal(services.worker!.environment?.ADMIN_TOKEN, undefined);
  });
});

describe('Dockerfile', () => {
  const text = read('Dockerfile');

  it('builds on the Node version package.json pins, and runs as a non-root user', () => {
    const node = (JSON.parse(read('package.json')) as { dependencies: Record<string, string> }).dependencies
      .node;
    const bases = [...text.matchAll(/^FROM\s+(\S+)/gm)].map((m) => m[1]);
    assert.ok(bases.length >= 2, 'expected a build stage and a runtime stage');
    for (const base of bases) assert.equal(base, `node:${node}-bookworm-slim`);
    const user = [...text.matchAll(/^USER\s+(\S+)/gm)].at(-1)?.[1];
    assert.ok(user && !/^(root|0)(:|$)/.test(user), `the runtime user is ${user}`);
    assert.match(text, /^ENTRYPOINT \["node", "src\/main\.ts"\]$/m);
    assert.match(text, /^CMD \["all"\]$/m);
  });
});

describe('nginx configurations', () => {
  const composeConf = read('deploy/nginx/nginx.conf');
  const template = read('deploy/nginx/local.conf.template');

  /** What the launcher does: replace each placeholder. */
  function fillTemplate(port: number, upstreams: number[]): string {
    return template
      .replace('{{LISTEN_PORT}}', String(port))
      .replace('{{UPSTREAM_SERVERS}}', upstreams.map((p) => `    server 127.0.0.1:${p};`).join('\n'));
  }

  it('share the proxy settings that matter', () => {
    const shared = [
      'client_max_body_size 1m;',
      'keepalive 64;',
      'keepalive_timeout 60s;',
      'proxy_http_version 1.1;',
      'proxy_set_header Connection "";',
      'proxy_set_header X-Request-Id $chat_request_id;',
      'proxy_set_header X-Forwarded-For $remote_addr;',
      'proxy_set_header X-Forwarded-Proto $scheme;',
      'map $http_x_request_id $chat_request_id {',
      'default $request_id;',
      'log_format chat_json escape=json',
      'proxy_next_upstream error timeout;',
      'location ~ /messages/stream$ {',
      'proxy_buffering off;',
      'proxy_read_timeout 1h;',
      'error_page 413 @payload_too_large;',
      'error_page 494 =431 @headers_too_large;',
      'large_client_header_buffers 4 16k;',
      'proxy_buffer_size 16k;',
      'charset_types application/json;',
      'worker_shutdown_timeout 10s;',
    ];
    for (const [name, conf] of [
      ['nginx.conf', composeConf],
      ['local.conf.template', template],
    ] as const) {
      for (const directive of shared) assert.ok(conf.includes(directive), `${name} lacks: ${directive}`);
      // A POST that one API process may have committed must never be sent to another.
      assert.doesNotMatch(conf.replace(/#.*$/gm, ''), /non_idempotent/, name);
    }
    // 1m in nginx is the API's own default limit, so both layers refuse the same bodies.
    assert.equal(loadConfig({}).requestMaxBytes, 1024 * 1024);
  });

  it('local template: one placeholder of each kind, bound to loopback only', () => {
    assert.equal(template.split('{{LISTEN_PORT}}').length, 2);
    assert.equal(template.split('{{UPSTREAM_SERVERS}}').length, 2);
    assert.equal(template.match(/\{\{/g)?.length, 2, 'no other placeholder');
    const listens = [...template.matchAll(/^\s*listen\s+([^;]+);/gm)].map((m) => m[1]);
    assert.deepEqual(listens, ['127.0.0.1:{{LISTEN_PORT}}']);
    assert.doesNotMatch(fillTemplate(8080, [3001, 3002]), /\{\{/);
  });

  const hasNginx = existsSync(NGINX);
  const noNginx = `service unavailable: nginx not installed (${NGINX})`;
  const skip = skipWithout(hasNginx, noNginx);

  it('local template, filled with two upstreams: nginx -t', { skip }, () => {
    requireTool(hasNginx, noNginx);
    const prefix = join(scratch, 'local');
    rmSync(prefix, { recursive: true, force: true });
    const conf = join(scratch, 'local.conf');
    writeFileSync(conf, fillTemplate(18080, [3001, 3002]));
    // -p: every relative path in the file is under the prefix; -e: not the compiled-in error log.
    const result = run(NGINX, ['-t', '-q', '-p', `${scratch}/`, '-c', conf, '-e', 'stderr']);
    assert.equal(result.status, 0, `nginx -t failed:\n${result.stderr}`);
  });

  it('compose configuration: nginx -t', { skip }, () => {
    requireTool(hasNginx, noNginx);
    const version = /nginx\/(\d+)\.(\d+)\.(\d+)/.exec(run(NGINX, ['-v']).stderr);
    assert.ok(version, 'nginx -v printed no version');
    const [major, minor, patch] = version.slice(1).map(Number) as [number, number, number];
    // What exists only in the nginx container: its `nginx` user and its pid file location. And the access
    // log goes to a file: /dev/stdout cannot be opened on the socket that spawnSync makes stdout (ENXIO).
    let conf = composeConf
      .replace(/^user nginx;$/m, '')
      .replace(/^pid .*$/m, `pid ${scratch}/compose.pid;`)
      .replace(/access_log \/dev\/stdout /, `access_log ${scratch}/access.log `);
    // `server … resolve` needs nginx 1.27.3 (the image has 1.28.3). On an older nginx, check the rest with
    // a fixed address instead: without `resolve` the name would have to resolve here, and `api` does not.
    if (major * 1_000_000 + minor * 1_000 + patch < 1_027_003) {
      conf = conf.replace(/server api:3000 resolve;/, 'server 127.0.0.1:3000;');
      assert.doesNotMatch(conf, /\sresolve;/);
    }
    const file = join(scratch, 'compose.conf');
    writeFileSync(file, conf);
    const result = run(NGINX, ['-t', '-q', '-p', `${scratch}/`, '-c', file, '-e', 'stderr']);
    assert.equal(result.status, 0, `nginx -t failed:\n${result.stderr}`);
  });
});
