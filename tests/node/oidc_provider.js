// A real OpenID provider for the gateway's sign-in tests: panva's oidc-provider on loopback.
//
//   node oidc_provider.js --port P --redirect-uri URI [--host localhost] [--keys FILE]
//                         [--claims-in-id-token]
//
// It registers one confidential client for the gateway (PKCE required) and one service
// client (client credentials) whose access tokens are JWTs for the gateway's API. Its
// accounts are named by the login name typed into the development login form (any password).
// --keys names a file with a private JWK Set (the tests' own signing key, so that they can
// also mint tokens the provider's JWKS vouches for). It prints "listening <issuer>" when ready.

'use strict';

const fs = require('node:fs');

const ACCOUNTS = {
  alice: { email: 'alice@acme.com', email_verified: true, name: 'Alice Example',
           groups: ['analytics', 'data-stewards'] },
  johndoe: { email: 'johndoe@acme.com', email_verified: true, name: 'John Doe',
             groups: ['analytics'] },
  root: { email: 'root@acme.com', email_verified: true, name: 'Root', groups: [] },
  mallory: { email: 'mallory@acme.com', email_verified: false, name: 'Mallory',
             groups: ['analytics'] },
  newcomer: { email: 'Newcomer@Acme.com', email_verified: true, name: 'New Comer',
              groups: ['onboarding', 'analytics'] },
};

const CLIENT_ID = 'gateway';
const CLIENT_SECRET = 'gateway-client-secret-for-tests';
const SERVICE_ID = 'ticketing-service';
const SERVICE_SECRET = 'ticketing-service-secret-for-tests';
const SERVICE_EMAIL = 'ticketing@acme.com';
const API_AUDIENCE = 'https://gateway.test/api';

function option(name, fallback) {
  const at = process.argv.indexOf(`--${name}`);
  if (at === -1) return fallback;
  return process.argv[at + 1];
}

async function main() {
  const { Provider } = await import('oidc-provider');
  const port = Number(option('port'));
  const host = option('host', 'localhost');
  const redirectUri = option('redirect-uri');
  if (!port || !redirectUri) {
    console.error('usage: oidc_provider.js --port P --redirect-uri URI');
    process.exit(2);
  }
  const keysFile = option('keys');
  const issuer = `http://${host}:${port}`;

  const configuration = {
    clients: [
      { client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [redirectUri],
        response_types: ['code'], grant_types: ['authorization_code'] },
      { client_id: SERVICE_ID, client_secret: SERVICE_SECRET, response_types: [],
        grant_types: ['client_credentials'], redirect_uris: [] },
    ],
    pkce: { required: () => true },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'],
              groups: ['groups'] },
    scopes: ['openid', 'email', 'profile', 'groups'],
    conformIdTokenClaims: !process.argv.includes('--claims-in-id-token'),
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => API_AUDIENCE,
        useGrantedResource: async () => false,
        getResourceServerInfo: async () => ({
          scope: 'gateway', audience: API_AUDIENCE, accessTokenFormat: 'jwt',
          accessTokenTTL: 300, jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
    async findAccount(ctx, sub) {
      const account = ACCOUNTS[sub];
      if (!account) return undefined;
      return { accountId: sub, async claims() { return { sub, ...account }; } };
    },
    // The gateway's access tokens name their person (or, for the service, its account).
    async extraTokenClaims(ctx, token) {
      if (token.accountId && ACCOUNTS[token.accountId]) {
        return { email: ACCOUNTS[token.accountId].email };
      }
      if (token.clientId === SERVICE_ID) return { email: SERVICE_EMAIL };
      return undefined;
    },
    // A first-party client: no consent screen, everything it asks for is granted.
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId
        || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope('openid email profile groups');
      await grant.save();
      return grant;
    },
    cookies: { keys: ['test-cookie-key-not-a-secret'] },
  };
  if (keysFile) configuration.jwks = JSON.parse(fs.readFileSync(keysFile, 'utf8'));

  const provider = new Provider(issuer, configuration);
  const server = provider.listen(port, '127.0.0.1', () => {
    console.log(`listening ${issuer}`);
  });
  // Keep-alive connections (the gateway's client keeps some) would hold close() open.
  const stop = () => { server.closeAllConnections(); server.close(() => process.exit(0)); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
