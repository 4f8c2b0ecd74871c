// An independent, OpenID-certified provider (panva/oidc-provider) on 127.0.0.1:<free port>,
// for tests/test_identity_interop.py. The "user" is logged in and consents automatically;
// everything else (discovery, PKCE S256, code exchange, refresh rotation, userinfo,
// revocation, ID token signing) is the library's certified behaviour.
// Prints one line "ready <issuer>" once it accepts connections.
import { createServer } from 'node:http';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import Provider from 'oidc-provider';

const accountId = 'interop-resident-1';
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), use: 'sig', alg: 'RS256' };
const accessTtl = Number(process.env.ACCESS_TOKEN_TTL || 600);

const server = createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: 'mamori-app',
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      redirect_uris: ['http://127.0.0.1/callback'],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
    }],
    jwks: { keys: [jwk] },
    cookies: { keys: [randomUUID()] },
    scopes: ['openid', 'profile', 'offline_access'],
    claims: { openid: ['sub'], profile: ['name'] },
    features: { devInteractions: { enabled: false }, revocation: { enabled: true } },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    ttl: { AccessToken: accessTtl, IdToken: 600, AuthorizationCode: 60, Interaction: 300, Grant: 3600, Session: 3600 },
    rotateRefreshToken: true,
    async findAccount(ctx, id) {
      return { accountId: id, async claims() { return { sub: id, name: 'Interop Resident' }; } };
    },
  });
  const oidc = provider.callback();
  server.on('request', async (req, res) => {
    if (!req.url.startsWith('/interaction/')) return oidc(req, res);
    try {  // auto login + consent: the test exercises the client, not a login form
      const details = await provider.interactionDetails(req, res);
      const grant = new provider.Grant({ accountId, clientId: details.params.client_id });
      grant.addOIDCScope(details.params.scope);
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { login: { accountId }, consent: { grantId } },
        { mergeWithLastSubmission: false });
    } catch (err) {
      res.statusCode = 500;
      res.end(String(err));
    }
  });
  console.log(`ready ${issuer}`);
});
