// A real OpenID Provider for the OIDC login tests: panva's certified oidc-provider, configured from a JSON
// file (argv[2]) that the pytest fixture writes (tests/_fixtures/oidc.py):
//   { "port": 0, "issuer": "http://127.0.0.1:PORT", "kid": "k1", "key_type": "RSA" | "EC" | "OKP",
//     "clients": [{ "client_id", "client_secret", "redirect_uris", "id_token_signed_response_alg"? }],
//     "users": [{ "sub", "preferred_username", "name", "acr"? }] }
// The login interaction is a plain form (POST login=<preferred_username or sub>); consent is implied for the
// registered (first-party) clients. Prints "READY <issuer>" once listening. Test use only.
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';

import Provider from 'oidc-provider';

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const users = cfg.users;
const byLogin = (login) => users.find((u) => u.preferred_username === login || u.sub === login);

function signingKey(type, kid) {
  const pair = type === 'EC'
    ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : type === 'OKP' ? generateKeyPairSync('ed25519') : generateKeyPairSync('rsa', { modulusLength: 2048 });
  const alg = type === 'EC' ? 'ES256' : type === 'OKP' ? 'EdDSA' : 'RS256';
  return { ...pair.privateKey.export({ format: 'jwk' }), kid, alg, use: 'sig' };
}

const keyAlg = { EC: 'ES256', OKP: 'EdDSA' }[cfg.key_type] || 'RS256';

const configuration = {
  clients: cfg.clients.map((c) => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    redirect_uris: c.redirect_uris,
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: c.id_token_signed_response_alg || keyAlg,
  })),
  jwks: { keys: [signingKey(cfg.key_type || 'RSA', cfg.kid || 'k1')] },
  enabledJWA: { idTokenSigningAlgValues: ['RS256', 'ES256', 'EdDSA', 'HS256'] },
  acrValues: ['urn:yizhang:test:password', 'urn:yizhang:test:mfa'],
  claims: {
    acr: null, amr: null, auth_time: null, sid: null, openid: ['sub'], profile: ['preferred_username', 'name'],
  },
  scopes: ['openid', 'profile'],
  cookies: { keys: ['yizhang-test-op-cookie-key-not-a-secret'] },
  features: { devInteractions: { enabled: false } },
  pkce: { required: () => true },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, id) {
    const user = users.find((u) => u.sub === id);
    if (!user) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, preferred_username: user.preferred_username, name: user.name };
      },
    };
  },
  // First-party clients: the grant is implied, no consent screen.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid profile');
    await grant.save();
    return grant;
  },
};

const provider = new Provider(cfg.issuer, configuration);
provider.on('server_error', (ctx, err) => console.error('server_error', err));
const callback = provider.callback();

function readBody(req) {
  return new Promise((resolve, reject) => {
    let data = '';
    req.on('data', (chunk) => { data += chunk; });
    req.on('end', () => resolve(new URLSearchParams(data)));
    req.on('error', reject);
  });
}

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  if (req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><title>Test OP</title><form method="post" action="/interaction/${details.uid}">
<input name="login" id="op-login" autofocus><button type="submit" id="op-submit">Sign in</button></form>`);
    return;
  }
  const form = await readBody(req);
  const user = byLogin(form.get('login') || '');
  const result = user
    ? { login: { accountId: user.sub, acr: user.acr || 'urn:yizhang:test:password' } }
    : { error: 'access_denied', error_description: 'unknown user' };
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
}

const server = http.createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(String(err && err.message));
    });
    return;
  }
  callback(req, res);
});
server.listen(cfg.port, '127.0.0.1', () => {
  console.log(`READY ${cfg.issuer}`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));
