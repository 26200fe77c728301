"""Output folders that touch nothing but themselves.

Every ``fourpl`` command that writes results (``run``, ``sweep``, ``report``) writes through an
:class:`OutputFolder`:

- **Refusals, before anything is touched** (one line, exit status 2): the working folder or one
  of its ancestors, a symlink, something that is not a folder, or a non-empty folder that is
  not the output of the same kind of ``fourpl`` command (see below) or whose replacement was
  not asked for (``--overwrite``).
- **Manifest.** Each result folder holds ``fourpl-manifest.json``: the command that wrote it,
  the tool and its version and (runs and reports) each file's name, size and sha256; no
  timestamps, host names or absolute paths, so the same scenario and seed give the same bytes.
  A folder is replaced only if its manifest says the same command wrote it and it holds
  nothing else, unchanged (a file the user added or edited, or a symlink, stops it). A sweep
  folder grows run by run, so its manifest lists no files; instead the folder must have a
  sweep's layout and nothing else. Folders written before manifests existed are recognised by
  their exact layout.
- **Staging.** Results are written into a hidden staging folder next to the output folder,
  ``.<name>.partial-<pid>-<start>-<host>-<random>`` (the pid and start time of the process that
  owns it, a hash of its machine's name), created with mode 0777 less the umask, and moved into place when complete: an
  existing folder is swapped out atomically (``renameat2(RENAME_EXCHANGE)`` where the file
  system supports it, two renames otherwise) and then deleted without following symlinks.
  A staging folder whose process is gone (``kill -9``, power cut) is removed by the next
  command that writes into the same parent folder.
- **Lock.** One exclusive lock per output folder (``filelock``, ``flock`` underneath), held from
  the first check to the end, so a second command writing into the same folder stops with
  one line. The lock files live outside the user's folders: ``$FOURPL_LOCK_DIR``, else
  ``$XDG_RUNTIME_DIR/fourpl-locks``, else ``<temp dir>/fourpl-locks-<uid>`` (one empty file
  per output folder, named by a hash of its path; the system clears them on reboot).
- **Signals.** While a folder is being written SIGTERM and SIGHUP raise
  :class:`Terminated` (a ``KeyboardInterrupt``), so a stopped command cleans up as after Ctrl-C.
- **Write errors** (disk full, read-only file system, a file in place of a folder) become one
  line naming the file, e.g. ``no space left writing parcels.parquet into 'results/x'``,
  and the staging folder and any parent folders the command created are removed.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import tempfile
import threading
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from urllib.parse import quote

MANIFEST = "fourpl-manifest.json"
KINDS = ("run", "sweep", "report", "calibrate")
STAGING = re.compile(r"^\.(?P<name>.+)\.partial-(?P<pid>\d+)-(?P<start>[0-9a-f]+)-(?P<host>[0-9a-f]{6})"
                     r"-[0-9a-f]{8}$")

# what older versions wrote, before manifests: recognised by their exact layout
LEGACY_RUN_FILES = frozenset({"summary.json", "timeseries.parquet", "parcels.parquet", "contracts.parquet",
                              "config.toml", "ledger.parquet", "agents.parquet", "claims.parquet"})
SWEEP_FILES = frozenset({"experiment.json", "experiment.toml", "design.parquet", "log.jsonl", MANIFEST})
SWEEP_DATASETS = frozenset({"runs", "daily", "parcels"})
SWEEP_RUN_FILE = re.compile(r"^run-\d+\.parquet$")
SWEEP_TEMP_FILE = re.compile(r"^\..+\.\d+\.(tmp|partial)$")     # sweep.write_atomic / execute_run
REPORT_FILES = frozenset({"report.md", "point_summary.csv", "sensitivity.csv", "targets.csv"})
# fourpl calibrate: a folder that grows trial by trial (the Optuna study), like a sweep's
CALIBRATE_FILES = frozenset({"calibration.json", "calibration.toml", "study.db", "study.db-journal", "study.db-wal",
                             "study.db-shm", "trials.parquet", "calibrated.toml", "report.md", "targets.csv",
                             "importance.csv", MANIFEST})


class OutputError(ValueError):
    """The output folder cannot be used (one line for the user)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived while an output folder was being written."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


# ------------------------------------------------------------------------------------------
# Names from user text
# ------------------------------------------------------------------------------------------
def slug(text: str, fallback: str = "unnamed") -> str:
    """A file name made from user text: letters, digits, '.', '_' and '-' only, never starting
    with '.' or '-' (so never '..' or a hidden name), at most 100 characters."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip(".-")[:100].rstrip(".-")
    return s or fallback


def default_run_folder(scenario_name: str, seed: int) -> Path:
    """``results/<scenario>-seed<seed>``, with the scenario's name as a safe slug."""
    return Path("results") / f"{slug(scenario_name, 'scenario')}-seed{int(seed)}"


def partition_dir(key: str, value: str) -> str:
    """A Hive partition folder name, ``key=value``, with the value percent-encoded (as pyarrow
    decodes it): '/', '%' and every character but letters, digits and ``_.-~`` are escaped,
    so any value is one path component and reads back unchanged."""
    return f"{key}={quote(str(value), safe='')}"


# ------------------------------------------------------------------------------------------
# Errors while writing
# ------------------------------------------------------------------------------------------
def _reason(exc: OSError) -> str:
    code = exc.errno
    if code is None:
        m = re.search(r"errno (\d+)", str(exc), re.IGNORECASE)
        code = int(m.group(1)) if m else None
    return {errno.ENOSPC: "no space left", errno.EDQUOT: "disk quota exceeded",
            errno.EROFS: "read-only file system", errno.EFBIG: "file too large",
            errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
            errno.ENOTDIR: "a path component is not a folder", errno.EIO: "input/output error",
            }.get(code, os.strerror(code) if code else (str(exc).splitlines() or ["error"])[0])


def write_error(exc: OSError, name: str, where: str | Path) -> OutputError:
    return OutputError(f"{_reason(exc)} writing {name} into '{where}'")


@contextlib.contextmanager
def writing(name: str, where: str | Path) -> Iterator[None]:
    """Turn an OSError raised while writing ``name`` into one line naming the file."""
    try:
        yield
    except OSError as exc:
        raise write_error(exc, name, where) from None


# ------------------------------------------------------------------------------------------
# Signals
# ------------------------------------------------------------------------------------------
def _raise_terminated(signum, frame):
    raise Terminated(signum)


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP raise :class:`Terminated` in the main thread while inside (only
    where they would have killed the process: a handler someone set, or nohup's ignore, stays)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    installed = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is signal.SIG_DFL:
            installed[sig] = signal.signal(sig, _raise_terminated)
    try:
        yield
    finally:
        for sig, old in installed.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C, SIGTERM and SIGHUP back while folders are swapped: one that arrives is
    noted and raised again afterwards (handlers, not a signal mask, so it holds whichever
    thread the system delivers the signal to)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        handler = signal.getsignal(sig)
        if handler in (signal.SIG_IGN, None):
            continue
        old[sig] = signal.signal(sig, lambda signum, frame: pending.append(signum))
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        if pending:
            signal.raise_signal(pending[0])


# ------------------------------------------------------------------------------------------
# Processes: who owns a staging folder
# ------------------------------------------------------------------------------------------
def _start_token(pid: int) -> str | None:
    """The process's start time (hundredths of a second), as hex; None if it is gone."""
    import psutil
    try:
        p = psutil.Process(pid)
        if p.status() == psutil.STATUS_ZOMBIE:
            return None
        return format(int(round(p.create_time() * 100)), "x")
    except psutil.NoSuchProcess:
        return None
    except psutil.AccessDenied:          # it exists (another user's): not ours to judge
        return ""


def owner_alive(pid: int, start: str) -> bool:
    token = _start_token(pid)
    if token is None:
        return False
    if token == "":
        return True
    return abs(int(token, 16) - int(start, 16)) <= 2      # the same process, not a reused pid


def host_token() -> str:
    """This machine, in staging folder names (a shared file system may hold other machines' ones)."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]


def staging_name(name: str) -> str:
    """``.<name>.partial-<pid>-<start>-<host>-<random>``: whose it is, and whether it still runs."""
    pid = os.getpid()
    return f".{name}.partial-{pid}-{_start_token(pid) or '0'}-{host_token()}-{secrets.token_hex(4)}"


def clean_stale(parent: Path) -> list[Path]:
    """Remove the staging folders in ``parent`` whose owning process (on this machine) is gone."""
    removed = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for e in entries:
        m = STAGING.match(e.name)
        if not m or not e.is_dir(follow_symlinks=False) or m.group("host") != host_token():
            continue
        if owner_alive(int(m.group("pid")), m.group("start")):
            continue
        shutil.rmtree(e.path, ignore_errors=True)     # never follows symlinks (fd-based on Linux)
        removed.append(Path(e.path))
    return removed


# ------------------------------------------------------------------------------------------
# Manifests and what a folder holds
# ------------------------------------------------------------------------------------------
def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tool_version() -> str:
    try:
        return metadata.version("fourpl-market")
    except metadata.PackageNotFoundError:
        return "unknown"


def _walk(folder: Path, rel: str = "") -> Iterator[tuple[str, str]]:
    """(relative path, 'file' | 'dir' | 'symlink' | 'other') of everything under folder,
    without following symlinks, in sorted order."""
    for e in sorted(os.scandir(folder), key=lambda e: e.name):
        r = f"{rel}{e.name}"
        if e.is_symlink():
            yield r, "symlink"
        elif e.is_dir(follow_symlinks=False):
            yield r, "dir"
            yield from _walk(Path(e.path), r + "/")
        elif e.is_file(follow_symlinks=False):
            yield r, "file"
        else:
            yield r, "other"


def write_manifest(folder: Path, kind: str, list_files: bool = True) -> dict:
    """Write ``fourpl-manifest.json`` into folder (listing every file in it, unless a sweep)."""
    man: dict = {"written_by": f"fourpl {kind}", "tool": "fourpl-market", "version": tool_version(),
                 "rule": "fourpl replaces this folder only while it holds what this manifest "
                         "describes, unchanged"}
    if list_files:
        files = {}
        for rel, typ in _walk(folder):
            if typ == "file" and rel != MANIFEST:
                p = folder / rel
                files[rel] = {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
        man["files"] = files
    with writing(MANIFEST, folder):
        (folder / MANIFEST).write_text(json.dumps(man, indent=2, sort_keys=True) + "\n")
    return man


def read_manifest(folder: Path) -> dict | None:
    """The folder's manifest, or None if it has none (or an unreadable one)."""
    p = folder / MANIFEST
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        return None
    if not os.path.isfile(p) or os.path.islink(p) or st.st_size > 50_000_000:
        return None
    try:
        man = json.loads(p.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(man, dict) or man.get("tool") != "fourpl-market" or not isinstance(man.get("written_by"), str):
        return None
    return man


def _quoted(names: list[str], most: int = 3) -> str:
    shown = ", ".join(f"'{n}'" for n in names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def _problems_listed(folder: Path, man: dict) -> str | None:
    """What in a run/report folder is not as its manifest lists it (None: all as written)."""
    files = man.get("files")
    if not isinstance(files, dict):
        return "a manifest without its file list"
    entries = list(_walk(folder))
    links = [r for r, t in entries if t in ("symlink", "other")]
    if links:
        return f"a symlink or special file ({_quoted(links)})"
    dirs = {str(Path(f).parent) for f in files} | {"."}
    dirs |= {str(p) for f in files for p in Path(f).parents}
    extra = [r for r, t in entries if (t == "file" and r not in files and r != MANIFEST)
             or (t == "dir" and r not in dirs)]
    if extra:
        return f"files fourpl did not write ({_quoted(extra)})"
    changed = []
    for r, t in entries:
        if t == "file" and r in files:
            want = files[r]
            p = folder / r
            if not isinstance(want, dict) or p.stat().st_size != want.get("bytes") or sha256_file(p) != want.get("sha256"):
                changed.append(r)
    if changed:
        return f"files changed since fourpl wrote them ({_quoted(changed)})"
    return None


def _problems_sweep(folder: Path) -> str | None:
    """What in a sweep folder does not belong to a sweep's layout (None: nothing)."""
    odd = []
    for e in sorted(os.scandir(folder), key=lambda e: e.name):
        if e.is_symlink():
            odd.append(e.name)
        elif e.name in SWEEP_FILES or SWEEP_TEMP_FILE.match(e.name):
            if not e.is_file(follow_symlinks=False):
                odd.append(e.name)
        elif e.name in SWEEP_DATASETS and e.is_dir(follow_symlinks=False):
            for part in os.scandir(e.path):
                if part.is_symlink() or not part.is_dir(follow_symlinks=False) or not part.name.startswith("scenario="):
                    odd.append(f"{e.name}/{part.name}")
                    continue
                for f in os.scandir(part.path):
                    if f.is_symlink() or not f.is_file(follow_symlinks=False) or not (
                            SWEEP_RUN_FILE.match(f.name) or SWEEP_TEMP_FILE.match(f.name)):
                        odd.append(f"{e.name}/{part.name}/{f.name}")
        elif e.name == "report" and e.is_dir(follow_symlinks=False):
            problem = replace_problem(Path(e.path), "report")
            if problem:
                return f"a report folder that holds {problem}"
        elif STAGING.match(e.name) and e.is_dir(follow_symlinks=False):
            continue                      # a report being written (or left by a killed one)
        else:
            odd.append(e.name)
    if odd:
        return f"files fourpl did not write ({_quoted(odd)})"
    return None


def _problems_calibrate(folder: Path) -> str | None:
    """What in a calibration folder does not belong to its layout (None: nothing)."""
    odd = []
    for e in sorted(os.scandir(folder), key=lambda e: e.name):
        if e.is_symlink():
            odd.append(e.name)
        elif e.name in CALIBRATE_FILES or SWEEP_TEMP_FILE.match(e.name):
            if not e.is_file(follow_symlinks=False):
                odd.append(e.name)
        elif e.name == "plots" and e.is_dir(follow_symlinks=False):
            odd += [f"plots/{f.name}" for f in os.scandir(e.path)
                    if f.is_symlink() or not f.is_file(follow_symlinks=False) or not f.name.endswith(".png")]
        else:
            odd.append(e.name)
    if odd:
        return f"files fourpl did not write ({_quoted(odd)})"
    return None


def sweep_links(folder: Path) -> list[str]:
    """The symlinks where a sweep writes (its files, datasets and partitions): a resumed sweep
    must not write through them."""
    links = []
    for name in sorted(SWEEP_FILES | SWEEP_DATASETS):
        p = folder / name
        if p.is_symlink():
            links.append(name)
        elif name in SWEEP_DATASETS and p.is_dir():
            links += [f"{name}/{e.name}" for e in sorted(os.scandir(p), key=lambda e: e.name) if e.is_symlink()]
    return links


def _legacy(folder: Path, kind: str) -> bool:
    """A folder an older fourpl wrote (no manifest), recognised by its exact layout."""
    entries = dict(_walk(folder))
    if kind == "run":
        return set(entries) == LEGACY_RUN_FILES and all(t == "file" for t in entries.values())
    if kind == "report":
        top = {r for r in entries if "/" not in r}
        if not {"report.md", "point_summary.csv"} <= top or not top <= REPORT_FILES | {"plots"}:
            return False
        return all((t == "file" and (r in REPORT_FILES or (r.startswith("plots/") and r.endswith(".png")
                                                             and r.count("/") == 1)))
                   or (r == "plots" and t == "dir") for r, t in entries.items())
    meta = folder / "experiment.json"
    if not meta.is_file() or meta.is_symlink():
        return False
    try:
        ok = "fingerprint" in json.loads(meta.read_text())
    except (OSError, ValueError, TypeError):
        return False
    return ok and _problems_sweep(folder) is None


def replace_problem(folder: Path, kind: str) -> str | None:
    """Why the non-empty ``folder`` may not be replaced by ``fourpl kind`` (None: it may)."""
    man = read_manifest(folder)
    if man is None:
        if _legacy(folder, kind):
            return None
        names = sorted(os.listdir(folder))
        return f"files fourpl did not write ({_quoted(names)}; no {MANIFEST})"
    if man["written_by"] != f"fourpl {kind}":
        return f"the output of '{man['written_by']}', not of 'fourpl {kind}'"
    if kind == "calibrate":
        return _problems_calibrate(folder)
    return _problems_sweep(folder) if kind == "sweep" else _problems_listed(folder, man)


# ------------------------------------------------------------------------------------------
# Atomic exchange of two paths (Linux renameat2)
# ------------------------------------------------------------------------------------------
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _renameat2():
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths atomically; False where the system or file system cannot."""
    fn = _renameat2()
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


# ------------------------------------------------------------------------------------------
# Locks
# ------------------------------------------------------------------------------------------
def lock_dir() -> Path:
    """Where the lock files live (never in the user's folders)."""
    env = os.environ.get("FOURPL_LOCK_DIR")
    if env:
        base = Path(env)
        try:
            base.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create the lock folder '{base}' (FOURPL_LOCK_DIR): {_reason(exc)}") from None
        return base
    uid = os.getuid() if hasattr(os, "getuid") else 0
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isdir(xdg) and os.access(xdg, os.W_OK):
        base = Path(xdg) / "fourpl-locks"
    else:
        base = Path(tempfile.gettempdir()) / f"fourpl-locks-{uid}"
    try:
        base.mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the lock folder '{base}': {_reason(exc)} "
                          "(set FOURPL_LOCK_DIR to another folder)") from None
    st = os.lstat(base)
    if os.path.islink(base) or not os.path.isdir(base) or (hasattr(os, "getuid") and st.st_uid != uid):
        raise OutputError(f"the lock folder '{base}' is not a folder of yours (set FOURPL_LOCK_DIR "
                          "to another folder)")
    return base


def lock_path(folder: Path) -> Path:
    return lock_dir() / (hashlib.sha256(os.fsencode(folder)).hexdigest()[:40] + ".lock")


# ------------------------------------------------------------------------------------------
# The output folder
# ------------------------------------------------------------------------------------------
def canonical(path: str | Path) -> Path:
    """The absolute path, its parent folders' symlinks resolved, its last component kept."""
    p = Path(os.path.abspath(path))
    if p.name == "":                 # the root
        return p
    return Path(os.path.realpath(p.parent)) / p.name


class OutputFolder:
    """One command's output folder: checked, locked, staged and swapped into place.

    ``with OutputFolder(out, "run", replace=overwrite) as f: f.prepare(); ...write into
    f.staging...; f.commit()``. Leaving the block by an exception removes the staging folder
    and any parent folders this command created; a sweep's folder that was installed early
    (:meth:`install`) is rolled back unless :meth:`confirm` was called.
    """

    def __init__(self, out: str | Path, kind: str, *, replace: bool = False, option: str = "--overwrite"):
        assert kind in KINDS
        self.display = str(out)
        self.path = canonical(out)
        self.kind = kind
        self.replace = replace
        self.option = option
        self.staging: Path | None = None
        self._old: Path | None = None           # the replaced folder, kept aside until confirmed
        self._installed = False
        self._created: list[Path] = []          # parent folders this command created
        self._lock = None
        self._signals: contextlib.ExitStack | None = None

    # -- life cycle -------------------------------------------------------------------------
    def __enter__(self) -> OutputFolder:
        self._check_place()
        from filelock import FileLock, Timeout
        try:
            lock = FileLock(lock_path(self.path), timeout=0)
            lock.acquire()
        except Timeout:
            raise OutputError(f"output folder '{self.display}' is being written by another fourpl "
                              "command; wait for it to finish or choose another folder") from None
        except OSError as exc:
            raise OutputError(f"cannot lock output folder '{self.display}': {_reason(exc)}") from None
        self._lock = lock
        self._signals = contextlib.ExitStack()
        self._signals.enter_context(terminate_as_interrupt())
        if self.path.parent.is_dir():
            clean_stale(self.path.parent)
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            with signals_deferred():
                if exc_type is not None:
                    self._undo()
                elif self._installed:
                    self.confirm()
        finally:
            if self._signals is not None:
                self._signals.close()
            if self._lock is not None:
                self._lock.release()
        return False

    def _undo(self):
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None
        if self._installed:
            self.rollback()
        for d in reversed(self._created):
            try:
                os.rmdir(d)
            except OSError:
                break

    # -- checks -----------------------------------------------------------------------------
    def _check_place(self):
        try:
            cwd = Path(os.path.realpath(os.getcwd()))
        except OSError:                     # the working folder was deleted: nothing can contain it
            cwd = None
        real = Path(os.path.realpath(self.path))
        if cwd is not None and (real == cwd or cwd.is_relative_to(real) or cwd.is_relative_to(self.path)):
            raise OutputError(f"output folder '{self.display}' is the working folder or one of its parents; "
                              "fourpl writes only into a folder of its own: name a new one")
        if os.path.islink(self.path):
            raise OutputError(f"output folder '{self.display}' is a symlink; fourpl neither writes through "
                              "nor replaces symlinks: name a real folder")
        if os.path.lexists(self.path) and not os.path.isdir(self.path):
            raise OutputError(f"output '{self.display}' exists and is not a folder")

    def state(self) -> str:
        """'absent', 'empty' or 'full' (after the refusals of a symlink, a file, '.', ...)."""
        self._check_place()
        if not os.path.lexists(self.path):
            return "absent"
        try:
            with os.scandir(self.path) as it:
                return "full" if any(True for _ in it) else "empty"
        except OSError as exc:
            raise OutputError(f"cannot read output folder '{self.display}': {_reason(exc)}") from None

    def check_replaceable(self):
        """Refuse (one line) unless this non-empty folder is this command's own to replace."""
        if not self.replace:
            raise OutputError(f"output folder '{self.display}' is not empty (use {self.option} to replace it)")
        try:
            problem = replace_problem(self.path, self.kind)
        except OSError as exc:
            raise OutputError(f"cannot read output folder '{self.display}': {_reason(exc)}") from None
        if problem:
            raise OutputError(f"output folder '{self.display}' holds {problem}; fourpl replaces only a folder "
                              f"'fourpl {self.kind}' wrote, unchanged: choose another folder or clear it yourself")

    def prepare(self) -> Path:
        """The usual start: refuse what may not be replaced, then make the staging folder."""
        if self.state() == "full":
            self.check_replaceable()
        return self.stage()

    # -- writing ----------------------------------------------------------------------------
    def _make_parents(self):
        missing = []
        p = self.path.parent
        while not os.path.lexists(p):
            missing.append(p)
            p = p.parent
        if not os.path.isdir(p):
            raise OutputError(f"cannot create output folder '{self.display}': '{p}' is not a folder")
        for d in reversed(missing):
            try:
                os.mkdir(d)
            except FileExistsError:
                continue
            except OSError as exc:
                raise OutputError(f"cannot create output folder '{self.display}': {_reason(exc)} ('{d}')") from None
            self._created.append(d)

    def stage(self) -> Path:
        """Create the hidden staging folder next to the output folder (mode 0777 less the umask)."""
        self._make_parents()
        clean_stale(self.path.parent)
        for _ in range(100):
            cand = self.path.parent / staging_name(self.path.name)
            try:
                os.mkdir(cand, 0o777)
            except FileExistsError:
                continue
            except OSError as exc:
                raise OutputError(f"cannot create output folder '{self.display}': {_reason(exc)}") from None
            self.staging = cand
            return cand
        raise OutputError(f"cannot create a staging folder next to '{self.display}'")

    def writing(self, name: str):
        return writing(name, self.display)

    def _swap_in(self) -> Path | None:
        """Move the staging folder into place; returns where the previous folder now is."""
        staging, self.staging = self.staging, None
        try:
            if not os.path.lexists(self.path):
                os.rename(staging, self.path)
                return None
            if exchange(staging, self.path):
                return staging                       # the old folder now has the staging name
            aside = staging.with_name(staging.name[:-8] + secrets.token_hex(4))
            os.rename(self.path, aside)
            try:
                os.rename(staging, self.path)
            except OSError:
                os.rename(aside, self.path)
                raise
            return aside
        except OSError as exc:
            if os.path.isdir(staging):               # still ours to remove
                self.staging = staging
            raise OutputError(f"cannot move the results into '{self.display}': {_reason(exc)}") from None

    def _recheck(self):
        """Just before the swap: the folder may have changed while we computed."""
        if self.state() == "full":
            self.check_replaceable()

    def commit(self) -> Path:
        """Write the manifest, swap the staged folder into place, delete the old one."""
        write_manifest(self.staging, self.kind, list_files=True)
        self._recheck()
        with signals_deferred():
            old = self._swap_in()
            self._created = []                       # done: nothing is undone after this
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        return self.path

    def install(self) -> Path:
        """A sweep: move its staged folder into place now, keeping the old one aside until
        :meth:`confirm` (or putting it back by :meth:`rollback` if nothing was recorded)."""
        write_manifest(self.staging, self.kind, list_files=False)
        self._recheck()
        with signals_deferred():
            self._old = self._swap_in()
            self._installed = True
        return self.path

    def confirm(self):
        """Keep what was installed: delete the old folder and keep the parents."""
        self._installed = False                      # nothing is undone after this
        self._created = []
        if self._old is not None:
            shutil.rmtree(self._old, ignore_errors=True)
            self._old = None

    def rollback(self):
        """Put the old folder back (or remove the new one if there was none)."""
        if not self._installed:
            return
        if self._old is not None and os.path.isdir(self._old):
            if exchange(self._old, self.path):
                shutil.rmtree(self._old, ignore_errors=True)
            else:
                tmp = self._old.with_name(self._old.name[:-8] + secrets.token_hex(4))
                os.rename(self.path, tmp)
                os.rename(self._old, self.path)
                shutil.rmtree(tmp, ignore_errors=True)
        else:
            shutil.rmtree(self.path, ignore_errors=True)
        self._old = None
        self._installed = False
