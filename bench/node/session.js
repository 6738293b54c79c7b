// Signs the benchmark's account in at node-oidc-provider (bench/node/server.js) the way a browser
// would, and prints the Cookie header value of the session it ends with, for bench/run.sh.
//
//   node session.js AUTHORIZATION_URL [COUNT]
//
// AUTHORIZATION_URL is a complete authorization request of bench-code (with its PKCE challenge).
// The redirects are followed on the provider's origin (the authorization endpoint, the
// interaction that server.js finishes at once, the resume endpoint) with the cookies set along
// the way, until one leaves the provider; that last Location must hold a code. Only the session
// cookies (_session and its signature) are printed: "_session=...; _session.sig=...", one line
// per sign-in, COUNT (default 1) of them: each is a session of its own, with a Grant of its own.
// The interaction and the session live in the memory of one worker, so AUTHORIZATION_URL names
// that worker's own port, and the session is valid on that worker only.
const [start, countArg = '1'] = process.argv.slice(2);
const count = Number(countArg);
if (!start || !(Number.isInteger(count) && count > 0)) {
  console.error('usage: node session.js AUTHORIZATION_URL [COUNT]');
  process.exit(2);
}

const origin = new URL(start).origin;

// One sign-in from a browser without cookies; resolves to the session's Cookie header value.
async function signIn() {
  const jar = new Map();
  let url = start;
  for (let hop = 0; hop < 10; hop += 1) {
    const cookie = [...jar].map(([name, value]) => `${name}=${value}`).join('; ');
    const response = await fetch(url, {
      redirect: 'manual',
      headers: cookie ? { cookie } : {},
      signal: AbortSignal.timeout(10000),
    });
    for (const set of response.headers.getSetCookie()) {
      const [pair, ...attributes] = set.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const removed = value === '' || attributes.some((a) => /^\s*expires=Thu, 01 Jan 1970/i.test(a));
      if (removed) jar.delete(name);
      else jar.set(name, value);
    }
    const location = response.headers.get('location');
    if (response.status < 300 || response.status > 399 || !location) {
      throw new Error(`GET ${url}: HTTP ${response.status} without a redirect: ${(await response.text()).slice(0, 500)}`);
    }
    await response.arrayBuffer();
    const next = new URL(location, url);
    if (next.origin !== origin) {
      if (!next.searchParams.get('code')) {
        throw new Error(`the authorization ended without a code: ${next.href}`);
      }
      const session = [...jar].filter(([name]) => name === '_session' || name === '_session.sig');
      if (!session.some(([name]) => name === '_session')) {
        throw new Error('the provider set no _session cookie');
      }
      return session.map(([name, value]) => `${name}=${value}`).join('; ');
    }
    url = next.href;
  }
  throw new Error(`more than 10 redirects from ${start}`);
}

try {
  for (let i = 0; i < count; i += 1) console.log(await signIn());
} catch (error) {
  console.error(error.message);
  process.exit(1);
}
