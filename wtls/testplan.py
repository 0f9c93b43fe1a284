"""Which test command ``wtls check`` runs on predicted merges, if any, and how scratch worktrees
are prepared for it: the decision only (``.wtls.toml``, ``--test``, trust), no test run.

Apart from :mod:`wtls.semantic` (which runs the tests) so that deciding costs only reading the
project config: every ``wtls check`` asks, and most answer "no test command".
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from wtls.errors import Refused
from wtls.project_config import CONFIG_NAME, ProjectConfig, load_project_config
from wtls.worktrees import RepositoryState


@dataclass(frozen=True, kw_only=True)
class Recipe:
    """What prepares a scratch worktree: files to copy from ``source`` and setup commands.

    Empty unless the repository's config is trusted (then it comes from ``.wtls.toml``).
    """

    source: Path | None = None
    copy: tuple[str, ...] = ()
    setup: tuple[tuple[str, ...], ...] = ()

    @classmethod
    def trusted(cls, source: Path, config: ProjectConfig) -> Recipe:
        """The recipe of a trusted config read from the worktree ``source``."""
        return cls(source=source, copy=config.copy, setup=config.setup)

    @property
    def key(self) -> str:
        """The recipe's identity: a slot is set up again when it changes."""
        text = json.dumps([str(self.source), list(self.copy), [list(c) for c in self.setup]])
        return hashlib.sha256(text.encode()).hexdigest()


def command_text(commands: Sequence[Sequence[str]]) -> str:
    """The test command(s) as one line, as a person would type them."""
    return " && ".join(shlex.join(c) for c in commands)


def config_root(state: RepositoryState) -> Path | None:
    """The worktree whose ``.wtls.toml`` speaks for the repository: the base branch's, else
    the main worktree."""
    holder = state.find_by_branch(state.base_branch) if state.base_branch else None
    for wt in (holder, state.main):
        if wt is not None and not wt.bare and wt.path.is_dir():
            return wt.path
    return None


@dataclass(frozen=True, kw_only=True)
class TestPlan:
    """What :func:`plan_tests` decided: the test commands (none: nothing to run), the scratch
    recipe, why nothing runs (or None), and notes for the report; ``Tester.for_plan`` in
    :mod:`wtls.semantic` runs it."""

    __test__ = False  # not a pytest test class, whatever its name says

    commands: tuple[tuple[str, ...], ...] = ()
    recipe: Recipe = field(default_factory=Recipe)
    not_run: str | None = None
    notes: tuple[str, ...] = ()


def plan_tests(state: RepositoryState, command: str | None, *, trusted: bool) -> TestPlan:
    """The test commands to run, the scratch recipe, why nothing runs (or None), and notes.

    ``command`` (``--test``) is split like a shell would (no shell runs it). Without it, the
    ``test`` of ``.wtls.toml`` runs only when ``trusted``; the ``setup`` and ``copy`` of the
    scratch worktrees likewise. Raises :class:`~wtls.errors.Refused` for a bad config or command.
    """
    root = config_root(state)
    config = load_project_config(root) if root is not None else None
    notes: list[str] = []
    commands: tuple[tuple[str, ...], ...] = ()
    if command is not None:
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            raise Refused(f"the test command {command!r} cannot be split: {exc}") from exc
        if not argv:
            raise Refused("the test command is empty")
        commands = (tuple(argv),)
    elif config is not None and config.test:
        if not trusted:
            return TestPlan(
                not_run=f"the `test` command of {root / CONFIG_NAME if root else CONFIG_NAME} "
                f"(`{command_text(config.test)}`) was not run: the repository's config is not "
                "trusted; pass --trust to run it, or give --test CMD",
            )
        commands = config.test
    else:
        return TestPlan()
    recipe = Recipe()
    if config is not None and root is not None and (config.setup or config.copy):
        if trusted:
            recipe = Recipe.trusted(root, config)
        else:
            notes.append(
                f"the scratch worktrees were not set up (`setup`/`copy` of {root / CONFIG_NAME} "
                "run only when trusted: pass --trust)"
            )
    return TestPlan(commands=commands, recipe=recipe, notes=tuple(notes))
