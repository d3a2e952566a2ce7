# syntax=docker/dockerfile:1
# veer's container image: Node, the production dependencies, and veer compiled
# to JavaScript (`npm run build`: dist/, bundled), with bin/ and config/. The
# image runs no TypeScript: a bundled veer starts in 0.45 s instead of 1.2 s.
#
#   docker build -t veer:0.1.0 .
#   docker run --rm -p 8080:8080 -e VEER_ADMIN_TOKEN=secret \
#     -v "$PWD/my-veer.yaml:/etc/veer/veer.yaml:ro" veer:0.1.0
# (a config that listens on 0.0.0.0, like deploy/kubernetes/base/veer.yaml;
# README.md ("Kubernetes") runs it on Kubernetes)
#
# Keep NODE_VERSION equal to the `node` devDependency in package-lock.json
# (test/deploy/dockerfile.test.ts checks it).
ARG NODE_VERSION=24.21.0

# --- deps: production dependencies only, installed from the lockfile ---
FROM node:${NODE_VERSION}-slim AS deps
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# --- build: every dependency (esbuild), then src/ bundled into dist/ ---
FROM node:${NODE_VERSION}-slim AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc tsconfig.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY scripts/build.ts ./scripts/
COPY src ./src
RUN node scripts/build.ts

# --- runtime ---
FROM node:${NODE_VERSION}-slim
ENV NODE_ENV=production
WORKDIR /app
# Root owns the code (the process cannot change it); only /var/lib/veer, the
# file state store's directory, belongs to the runtime user.
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY config ./config
RUN mkdir -p /etc/veer /var/lib/veer \
    && chown 1000:1000 /var/lib/veer
# The base image's "node" user, by number so that Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
# 8080: data plane (listen); 9901: admin API, /metrics, /healthz, /readyz (admin.listen).
EXPOSE 8080 9901
# Liveness on the admin listener; VEER_ADMIN_URL (the CLI's variable) moves it.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["node", "-e", "fetch((process.env.VEER_ADMIN_URL || 'http://127.0.0.1:9901') + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Node is PID 1 and handles SIGTERM itself: veer drains, then exits.
ENTRYPOINT ["node", "bin/veer.js"]
CMD ["serve", "--config", "/etc/veer/veer.yaml"]
