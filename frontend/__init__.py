"""zkq's HTTP frontends: the Flask app, REST API v1, and authentication, rate limiting and
the request log on MySQL.  Imports :mod:`zkq.coordinator`; nothing imports this package but the
``zkq`` command line."""
