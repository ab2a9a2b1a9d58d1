"""Web: the console (网页工作台) and its gateway — one origin in front of the four services.

It serves the browser console (static files, no CDN), signs users in (users with hashed
passwords in its own database, short-lived access tokens and rotating refresh tokens) and
proxies ``/api/<service>/…`` to intake, dispatch, tracking and notify. The services keep
verifying the bearer token themselves, so an external OIDC provider can replace the login.
"""
