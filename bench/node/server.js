// node-oidc-provider configured like latchkey for bench/run.sh (see bench/README.md).
//
//   NODE_ENV=production BENCH_CLIENT_SECRET=... node server.js PRIVATE_JWK_FILE PORT
//
// The primary process forks one worker per core (node:cluster); each worker runs the provider
// with the default in-memory adapter. Clients (all client_secret_basic, client_credentials only,
// scopes "api:read api:write", all with BENCH_CLIENT_SECRET):
//   bench-jwt        access tokens are ES256 JWTs (RFC 9068) signed with the shared key
//   bench-opaque     access tokens are opaque, stored in the worker's memory
//   bench-introspect like bench-opaque, but each token it is issued is also copied into the
//                    memory of every other worker, so that introspecting it works whichever
//                    worker the connection lands on (the only writes that pay this copy)
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
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
const RESOURCE = 'https://api.bench.invalid';
const SCOPE = 'api:read api:write';

if (cluster.isPrimary) {
  const workers = availableParallelism();
  let listening = 0;
  cluster.on('listening', () => {
    listening += 1;
    if (listening === workers) console.log(`node-oidc-provider ready: ${workers} workers on port ${port}`);
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
  for (let i = 0; i < workers; i += 1) cluster.fork();
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

  const provider = new Provider(`http://127.0.0.1:${port}`, {
    adapter: Adapter,
    clients: [client('bench-jwt'), client('bench-opaque'), client(REPLICATED_CLIENT)],
    jwks: { keys: [jwk] },
    cookies: { keys: [secret] },
    scopes: ['openid', ...SCOPE.split(' ')],
    enabledJWA: { idTokenSigningAlgValues: ['ES256'] },
    clientDefaults: { id_token_signed_response_alg: 'ES256' },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => RESOURCE,
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
  provider.listen(Number(port), '127.0.0.1');
}
