"""The language server face of wtls: the only package that imports pygls and lsprotocol.

:mod:`wtls.server.server` wires the server; :mod:`wtls.server.base` is the interface features
see; :mod:`wtls.server.features` holds one module per feature, each with ``register(server)``.
"""
