"""The server's features: one module each, with a ``register(server)`` function that
:func:`wtls.server.server.create_server` calls. Features see only
:class:`wtls.server.base.Server`."""
