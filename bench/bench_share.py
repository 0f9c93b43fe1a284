"""Measure spawn with a big ignored cache: plain copy vs copy-on-write clone vs ``share``.

Run (as root for the btrfs part): ``.venv/bin/python bench/bench_share.py [--files 50000]``.

A small repository whose main worktree holds an ignored ``cache/`` of ``--files`` files (4 to
12 KiB each, random bytes). For each file system it can use, ``wtls.lifecycle.spawn`` makes a
new worktree ``--runs`` times with ``.wtls.toml`` ``copy = ["cache/"]`` (copied: cloned where
the file system can) and with ``share = ["cache"]`` (a link), then ``remove`` takes it away;
``git worktree add`` alone is the floor. Disk: the blocks the new worktree's files take (``du``
style, links not followed) and, on the private loop image only, the file system's free space
before and after (``statvfs``, after ``sync``: what clones really cost).

File systems: the one ``--tmp`` is on (here ext4: no copy-on-write), and a loop-mounted btrfs
image when the machine allows it (root, ``mkfs.btrfs``, a loop device); otherwise the table
says why not. Warm page cache (the cache was just written). Prints markdown; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine
from wtls.lifecycle import remove, spawn
from wtls.lifecycle.disk import _measure

_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@wtls.invalid",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@wtls.invalid",
}


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, **_ENV}
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=env
    ).stdout


def build(root: Path, files: int) -> Path:
    """The repository, with ``files`` ignored files under ``cache/`` (100 per folder)."""
    repo = root / "proj"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "app.py").write_text("print('app')\n")
    (repo / ".gitignore").write_text("cache/\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "init")
    rnd = os.urandom(12 * 1024 + 256)
    for i in range(files):
        folder = repo / "cache" / f"d{i // 100:04d}"
        if i % 100 == 0:
            folder.mkdir(parents=True)
        size = 4096 + (i * 2654435761) % 8192
        start = i % 256
        (folder / f"f{i}.bin").write_bytes(rnd[start : start + size])
    return repo


def _fs_used(path: Path) -> int:
    os.sync()
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def measure(repo: Path, variant: str, runs: int, private_fs: bool) -> dict[str, str]:
    """Median spawn and remove time, the new worktree's blocks, free space it used."""
    recipe = {
        "copy": 'copy = ["cache/"]\n',
        "share": 'share = ["cache"]\n',
        "git worktree add": None,
    }[variant]
    if recipe is not None:
        (repo / ".wtls.toml").write_text(recipe)
        git(repo, "add", ".wtls.toml")
        git(repo, "commit", "-qm", f"recipe {variant}")
    spawns: list[float] = []
    removes: list[float] = []
    blocks = used = cloned = 0
    for i in range(runs):
        name = f"{variant.split()[0]}-{i}"
        before = _fs_used(repo) if private_fs else 0
        t0 = time.perf_counter()
        if recipe is None:
            path = repo.parent / f"proj-{name}"
            git(repo, "worktree", "add", "-q", "-b", name, str(path))
        else:
            result = spawn(repo, name)
            path, cloned = result.path, result.cloned
        spawns.append(time.perf_counter() - t0)
        blocks = _measure(path, frozenset())
        used = _fs_used(repo) - before if private_fs else 0
        t0 = time.perf_counter()
        remove(repo, name if recipe is None else f"agent/{name}", force=True)
        removes.append(time.perf_counter() - t0)
    row = {
        "variant": variant + (f" ({cloned} clones)" if variant == "copy" else ""),
        "spawn s": f"{statistics.median(spawns):.2f}",
        "remove s": f"{statistics.median(removes):.2f}",
        "worktree blocks MiB": f"{blocks / 2**20:.1f}",
        "free space used MiB": f"{used / 2**20:.1f}" if private_fs else "n/a (shared disk)",
    }
    return row


def loop_btrfs(size: str) -> tuple[Path, Path] | str:
    """A loop-mounted btrfs image ``(image, mount point)``, or why there is none."""
    if sys.platform != "linux":
        return "not Linux"
    if os.geteuid() != 0:
        return "mounting a loop image needs root"
    if shutil.which("mkfs.btrfs") is None:
        return "mkfs.btrfs is not installed (apt-get install btrfs-progs)"
    image = Path(tempfile.mkstemp(prefix="wtls-bench-", suffix=".img")[1])
    mount = Path(tempfile.mkdtemp(prefix="wtls-bench-btrfs-"))
    for step in (
        ["truncate", "-s", size, str(image)],
        ["mkfs.btrfs", "-q", "-f", str(image)],
        ["mount", "-o", "loop", str(image), str(mount)],
    ):
        proc = subprocess.run(step, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            image.unlink(missing_ok=True)
            mount.rmdir()
            return f"`{' '.join(step[:2])}` failed: {proc.stderr.strip()}"
    return image, mount


def table(rows: list[dict[str, str]]) -> str:
    keys = list(rows[0])
    out = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    out += ["| " + " | ".join(r[k] for k in keys) + " |" for r in rows]
    return "\n".join(out)


def run_on(root: Path, label: str, files: int, runs: int, private_fs: bool) -> None:
    t0 = time.perf_counter()
    repo = build(root, files)
    print(f"\n#### {label} ({files} cache files, built in {time.perf_counter() - t0:.0f} s)\n")
    rows = [measure(repo, v, runs, private_fs) for v in ("git worktree add", "copy", "share")]
    print(table(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tmp", default=tempfile.gettempdir(), help="where the ext4 run goes")
    parser.add_argument("--image-size", default="4G", help="the btrfs image (sparse file)")
    args = parser.parse_args()
    info = machine()
    print(
        f"{info['date']}; {info['nproc']} cores ({info['cpu']}), {info['ram']}, git "
        f"{info['git']}, Python {info['python']}, {info['os']}; median of {args.runs} runs"
    )
    with tempfile.TemporaryDirectory(prefix="wtls-bench-share-", dir=args.tmp) as tmp:
        fstype = subprocess.run(
            ["findmnt", "-n", "-o", "FSTYPE", "-T", tmp],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        run_on(Path(tmp), f"{fstype} ({args.tmp})", args.files, args.runs, private_fs=False)
    got = loop_btrfs(args.image_size)
    if isinstance(got, str):
        print(f"\n#### btrfs: not measured: {got}")
        return
    image, mount = got
    try:
        run_on(mount, "btrfs (loop-mounted image)", args.files, args.runs, private_fs=True)
    finally:
        subprocess.run(["umount", str(mount)], check=False)
        mount.rmdir()
        image.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
