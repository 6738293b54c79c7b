// node-oidc-provider configured like latchkey for bench/run.sh (see bench/README.md).
//
//   NODE_ENV=production BENCH_CLIENT_SECRET=... node server.js PRIVATE_JWK_FILE PORT
//
// The primary process forks one worker per core (node:cluster); each worker runs the provider
// with the default in-memory adapter. Clients (all client_secret_basic with BENCH_CLIENT_SECRET;
// these three client_credentials only, scopes "api:read api:write"):
//   bench-jwt        access tokens are ES256 JWTs (RFC 9068) signed with the shared key
//   bench-opaque     access tokens are opaque, stored in the worker's memory
//   bench-introspect like bench-opaque, but each token it is issued is also copied into the
//                    memory of every other worker, so that introspecting it works whichever
//                    worker the connection lands on (the only writes that pay this copy)
// and one OpenID Connect client for the code-flow scenario:
//   bench-code       client_secret_basic, authorization_code with PKCE (S256), redirect URI
//                    http://127.0.0.1:9/cb, scope openid; its access tokens are for userinfo
//
// Sessions, codes and tokens live in each worker's memory, so an authorization-code flow must
// stay on one worker from sign-in to userinfo. Each worker therefore also listens alone on a
// port of its own (picked by the primary, listed on the "ready" line); bench/node/session.js
// signs in on each of those ports and bench/wrk/code_flow.lua sends each wrk thread to one of
// them, with that worker's session cookie. The shared port serves the other scenarios.
//
// Signing in: GET /interaction/UID (where the provider sends a browser without a session)
// finishes the interaction at once for account "bench" with a Grant of "openid", for bench-code
// only. There is no form and no password: this server listens on 127.0.0.1 for a benchmark.
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { availableParallelism } from 'node:os';

import Provider from 'oidc-provider';
import { createMemoryAdapter } from 'oidc-provider/lib/adapters/memory_adapter.js';

const [jwkFile, port] = process.argv.slice(2);
const secret = process.env.BENCH_CLIENT_SECRET;
if (!jwkFile || !port || !secret) {
  console.error('usage: BENCH_CLIENT_SECRET=... node server.js PRIVATE_JWK_FILE PORT');
  process.exit(2);
}

const REPLICATED_CLIENT = 'bench-introspect';
const CODE_CLIENT = 'bench-code';
const CODE_REDIRECT_URI = 'http://127.0.0.1:9/cb';
const ACCOUNT = 'bench';
const RESOURCE = 'https://api.bench.invalid';
const SCOPE = 'api:read api:write';

// A TCP port of 127.0.0.1 that nothing listens on.
const freePort = () => new Promise((resolve, reject) => {
  const probe = createNetServer();
  probe.on('error', reject);
  probe.listen(0, '127.0.0.1', () => {
    const { port: free } = probe.address();
    probe.close(() => resolve(free));
  });
});

if (cluster.isPrimary) {
  const workers = availableParallelism();
  const workerPorts = [];
  for (let i = 0; i < workers; i += 1) workerPorts.push(await freePort());
  // Each worker listens twice: on the shared port and on its own.
  let listening = 0;
  cluster.on('listening', () => {
    listening += 1;
    if (listening === 2 * workers) {
      console.log(`node-oidc-provider ready: ${workers} workers on port ${port}; worker ports ${workerPorts.join(',')}`);
    }
  });
  // Relay replicated token writes to every other worker.
  cluster.on('message', (from, message) => {
    if (message?.bench !== 'replicate') return;
    for (const worker of Object.values(cluster.workers)) {
      if (worker !== from) worker.send(message);
    }
  });
  cluster.on('exit', (worker, code, signal) => {
    if (!process.exitCode) console.error(`worker ${worker.process.pid} exited (${signal ?? code})`);
    process.exitCode = 1;
  });
  for (const workerPort of workerPorts) cluster.fork({ BENCH_WORKER_PORT: String(workerPort) });
  process.on('SIGTERM', () => {
    process.exitCode = 0;
    for (const worker of Object.values(cluster.workers)) worker.kill('SIGTERM');
  });
} else {
  const jwk = JSON.parse(readFileSync(jwkFile, 'utf8'));
  const memory = createMemoryAdapter();
  const Adapter = (model) => {
    const adapter = memory(model);
    if (model !== 'ClientCredentials') return adapter;
    const upsert = adapter.upsert.bind(adapter);
    adapter.upsert = async (id, payload, expiresIn) => {
      await upsert(id, payload, expiresIn);
      if (payload.clientId === REPLICATED_CLIENT) {
        process.send({ bench: 'replicate', model, id, payload, expiresIn });
      }
    };
    return adapter;
  };
  process.on('message', (message) => {
    if (message?.bench === 'replicate') {
      memory(message.model).upsert(message.id, message.payload, message.expiresIn);
    }
  });

  const client = (clientId) => ({
    client_id: clientId,
    client_secret: secret,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: SCOPE,
  });

  const codeClient = {
    client_id: CODE_CLIENT,
    client_secret: secret,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: [CODE_REDIRECT_URI],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'openid',
  };

  const provider = new Provider(`http://127.0.0.1:${port}`, {
    adapter: Adapter,
    clients: [client('bench-jwt'), client('bench-opaque'), client(REPLICATED_CLIENT), codeClient],
    jwks: { keys: [jwk] },
    cookies: { keys: [secret] },
    scopes: ['openid', ...SCOPE.split(' ')],
    enabledJWA: { idTokenSigningAlgValues: ['ES256'] },
    clientDefaults: { id_token_signed_response_alg: 'ES256' },
    findAccount: (ctx, accountId) => ({ accountId, claims: () => ({ sub: accountId }) }),
    // PKCE (S256, the only method node-oidc-provider 9 knows) for every client, as latchkey.
    pkce: { required: () => true },
    // bench-code's access tokens (for userinfo) live 600 s, latchkey's default; the others get
    // their TTL from getResourceServerInfo below.
    ttl: { AccessToken: (ctx, token) => token.resourceServer?.accessTokenTTL || 600 },
    // The default loadExistingGrant: the session remembers the Grant made at sign-in, which
    // allows openid, so a signed-in browser goes straight to a code (no consent prompt).
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // bench-code's access tokens are for userinfo (no resource server).
        defaultResource: (ctx, client) => (client.clientId === CODE_CLIENT ? undefined : RESOURCE),
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resource, { clientId }) => ({
          scope: SCOPE,
          audience: RESOURCE,
          accessTokenTTL: 300,
          ...(clientId === 'bench-jwt'
            ? { accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } }
            : { accessTokenFormat: 'opaque' }),
        }),
      },
    },
  });
  // The benchmark's sign-in: no form, account "bench", a Grant of openid for bench-code.
  provider.use(async (ctx, next) => {
    if (ctx.method !== 'GET' || !ctx.path.startsWith('/interaction/')) return next();
    const interaction = await provider.interactionDetails(ctx.req, ctx.res);
    if (interaction.params.client_id !== CODE_CLIENT) {
      ctx.status = 400;
      ctx.body = `the benchmark signs in for ${CODE_CLIENT} only`;
      return undefined;
    }
    const grant = new provider.Grant({ accountId: ACCOUNT, clientId: CODE_CLIENT });
    grant.addOIDCScope('openid');
    const grantId = await grant.save();
    const returnTo = await provider.interactionResult(ctx.req, ctx.res, {
      login: { accountId: ACCOUNT },
      consent: { grantId },
    }, { mergeWithLastSubmission: false });
    ctx.status = 303;
    ctx.redirect(returnTo);
    return undefined;
  });

  provider.listen(Number(port), '127.0.0.1');
  // This worker alone listens on BENCH_WORKER_PORT (code-flow, see the top of this file).
  createHttpServer(provider.callback()).listen(Number(process.env.BENCH_WORKER_PORT), '127.0.0.1');
}
