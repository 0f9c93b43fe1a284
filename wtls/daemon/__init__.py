"""The per-repository engine and how sessions reach it (stdlib only, except ``engine``).

``paths`` (the private runtime dir and each repository's files), ``hello`` (the one-line
handshake), ``client`` (connect, starting the engine when none runs), ``engine`` (the
``wtls engine`` process: every session's language server in one loop), ``queries`` (what the
engine answers to CLI queries).
"""
