// Prints one fresh ES256 (P-256) private JWK with kid (RFC 7638 thumbprint), alg and use.
// bench/run.sh gives it to node-oidc-provider and to the bare signer.
import { createHash, generateKeyPairSync } from 'node:crypto';

const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwk = privateKey.export({ format: 'jwk' });
// RFC 7638: the required public members in lexicographic order, no whitespace.
const canonical = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y });
const kid = createHash('sha256').update(canonical).digest('base64url');
process.stdout.write(`${JSON.stringify({ ...jwk, kid, alg: 'ES256', use: 'sig' })}\n`);
