"""The OpenID Connect provider of the identity block, built on Authlib's server components.

* ``models``: clients, login sessions, codes, tokens, consents, used client assertions;
* ``service``: typed functions over them (register clients, consents, sessions, claims);
* ``server``: Authlib's ``AuthorizationServer`` adapted to Starlette requests, with the grants
  (authorization code + PKCE S256 + OpenID, rotating refresh tokens), client authentication
  (``client_secret_basic``, ``private_key_jwt``) and ID tokens signed through the keystore;
* ``endpoints``: discovery, JWKS, token, userinfo, logout;
* ``client_api``, ``schemas``: the GovStack client management API (``/client-mgmt``);
* ``views``: the authorization endpoint with its login and consent pages;
* ``cli``: ``jisr identity client …``.

See docs/identity.md.
"""
