"""Benchmarks of wtls under load and faults (``python -m bench``; see ``bench/README.md``).

Every benchmark runs the real server (``python -m wtls serve``) over stdio on generated
repositories and prints a table of its figures next to the floor that raw git (or the OS) sets,
measured in the same run. Nothing here is a test: no figure is ever asserted.
"""
