"""Orphaned clusters: as root a private state folder's PostgreSQL cluster lives under /var/lib/ioc
(ioc.cluster.EmbeddedPostgres._place); when the state folder goes, `ioc up` (or `ioc prune`) removes it, and
the test support's scratch cleanup never leaves one behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from ioc.cluster import CLUSTERS_DIR, OWNER_FILE, EmbeddedPostgres, prune_clusters
from ioc.processes import free_port
from ioc.settings import REPO_ROOT
from ioc.up import Stack
from tests.support.stack import remove_scratch


def _cluster(clusters_dir: Path, name: str, owner: str | None, pid: str | None = None) -> Path:
    home = clusters_dir / f"postgres-{name}"
    (home / "data").mkdir(parents=True)
    (home / "data" / "base.dat").write_bytes(b"x" * 4096)
    if owner is not None:
        (home / OWNER_FILE).write_text(f"{owner}\n")
    if pid is not None:
        (home / "data" / "postmaster.pid").write_text(f"{pid}\n/data\n")
    return home


def test_prune_removes_only_clusters_whose_state_folder_is_gone_and_whose_postgres_is_stopped(
    scratch_dir: Callable[[str], Path], stack: Stack
) -> None:
    root = scratch_dir("ioc-prune-")
    clusters = root / "clusters"
    alive = root / "state"
    alive.mkdir()
    assert stack.postgres is not None
    running_pid = (stack.postgres.data_dir / "postmaster.pid").read_text().split()[0]  # a real postmaster
    gone = _cluster(clusters, "gone", str(root / "deleted-clone" / ".ioc"))
    stale_pid = _cluster(clusters, "stale", str(root / "deleted-test"), pid=str(os.getpid()))  # not a postgres
    kept = [
        _cluster(clusters, "owned", str(alive)),
        _cluster(clusters, "running", str(root / "deleted-too"), pid=running_pid),
        _cluster(clusters, "unrecorded", None),  # being made, or not ours
        _cluster(clusters, "relative", ".ioc"),  # written by an older ioc: whose it was is unknown
    ]
    removed = prune_clusters(clusters)
    assert sorted(o.path for o in removed) == [gone, stale_pid]
    assert all(o.size_bytes >= 4096 for o in removed)
    assert not gone.exists() and not stale_pid.exists() and all(k.exists() for k in kept)
    assert prune_clusters(clusters) == []


def _relocated_cluster() -> tuple[Path, Path]:
    """A throwaway folder (0700, like root's home) and the real cluster (initdb, started, stopped) of a state
    folder inside it."""
    folder = Path(tempfile.mkdtemp(prefix="ioc-prune-"))
    pg = EmbeddedPostgres(folder / "state" / "postgres", free_port(), fast=True)
    pg.initdb()
    pg.stop()
    return folder, pg.home


def test_scratch_cleanup_and_ioc_prune_leave_no_cluster_behind() -> None:
    """As root the cluster goes to /var/lib/ioc; the tests' scratch cleanup removes it with its folder, and
    one whose folder was deleted by hand is removed by `ioc prune` (as by the next `ioc up`)."""
    relocated = os.geteuid() == 0  # anyone else runs PostgreSQL as themselves, inside their own folder
    folder, cleaned = _relocated_cluster()
    assert (cleaned.parent == CLUSTERS_DIR) == relocated
    remove_scratch(folder)
    assert not cleaned.exists() and not folder.exists()

    folder, orphan = _relocated_cluster()
    shutil.rmtree(folder)  # a removed clone, or a test folder deleted by hand
    assert orphan.exists() == relocated
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    run = [sys.executable, "-m", "ioc.cli", "prune"]
    listed = subprocess.run([*run, "--dry-run"], capture_output=True, text=True, env=env, timeout=60, check=True)
    assert (f"would remove {orphan} " in listed.stdout) == relocated, listed.stdout
    assert orphan.exists() == relocated
    done = subprocess.run(run, capture_output=True, text=True, env=env, timeout=60, check=True)
    assert (f"removed {orphan} " in done.stdout) == relocated, done.stdout
    assert not orphan.exists()
