"""Getting CIFAR-10 onto disk: download, checksum, safe extraction, provenance.

The archive is streamed into ``<name>.part`` and renamed only once its md5
matches, so a half-downloaded or wrong file is never used. Extraction admits
only the members the official archive has, as regular files, and writes them
through a temporary directory inside the data directory. The result is a
provenance record saying where the data came from and whether every batch
matches the official checksums. A directory whose batches match its record is
used without writing anything in it, so a read-only copy serves as well.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import posixpath
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from . import files

OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
OFFICIAL_MD5 = "c58f30108f718f92721af3b95e74349a"
BATCH_DIR = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META = "batches.meta"
OFFICIAL_BATCH_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}
REQUIRED_FILES = (*TRAIN_BATCHES, TEST_BATCH, META)
ALLOWED_FILES = frozenset((*REQUIRED_FILES, "readme.html"))
ARCHIVE_NAME = "cifar-10-python.tar.gz"
PROVENANCE_NAME = "provenance.json"
_CHUNK = 1 << 20
_ELSEWHERE = "point A1_DATA_DIR (or --data-dir, or the data_dir parameter) at"


class DataError(RuntimeError):
    """A problem with the data, worded as one line a user can act on."""


def md5sum(path: str | os.PathLike) -> str:
    """Hex md5 of a file, read in 1 MiB chunks."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _local_path(url: str) -> Path | None:
    """The filesystem path a source names, or None for http(s)."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        return Path(urllib.request.url2pathname(parsed.path))
    if parsed.scheme in ("http", "https"):
        return None
    if parsed.scheme and len(parsed.scheme) > 1:  # one letter is a Windows drive
        raise DataError(f"unsupported data source {url!r}: use http(s)://, file:// or a local path")
    return Path(url).expanduser()


def _write_error(e: OSError, place: Path, doing: str, needed: int | None = None) -> DataError | None:
    """The one-line error for a write in ``place`` that failed for want of room or of permission, else None.

    ``needed`` is the bytes ``doing`` needs there, when known.
    """
    if files.disk_full(e):
        try:
            free = f"{shutil.disk_usage(place).free / 1e6:.1f} MB is free"
        except OSError:
            free = "its free space is unknown"
        need = f"needs about {needed / 1e6:.1f} MB there and " if needed else "needs room there and "
        return DataError(f"the disk holding {place} is full ({e.strerror}): {doing} {need}{free}; "
                         f"free some space there, or {_ELSEWHERE} a disk with room")
    if files.not_writable(e):
        return DataError(f"cannot write in {place} ({e.strerror}) for {doing}: make it writable, or {_ELSEWHERE} "
                         "a directory you can write in")
    return None


def _manual_hint(url: str, dest: Path) -> str:
    return (
        f"download {url} by hand and save it as {dest}, or point CIFAR10_URL at a "
        "local copy (and CIFAR10_MD5 at its md5 if it is not the official archive)"
    )


def download(url: str, md5: str, dest: Path, progress: bool = True, timeout: float = 60) -> Path:
    """Stream ``url`` to ``dest`` through ``dest.part``, renaming only if the md5 matches.

    Returns ``dest``. Raises :class:`DataError` on a network failure (saying how to
    download by hand) or a checksum mismatch (naming both checksums); either way the
    partial file is deleted.
    """
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.md5()
    total = None
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress) as bar:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    out.write(chunk)
                    h.update(chunk)
                    bar.update(len(chunk))
            if total is not None and out.tell() != total:
                raise DataError(
                    f"download of {url} stopped after {out.tell()} of {total} bytes; "
                    f"rerun, or {_manual_hint(url, dest)}"
                )
    except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
        part.unlink(missing_ok=True)
        if isinstance(e, OSError) and (local := _write_error(e, dest.parent, f"downloading {url}", total)):
            raise local from e  # the disk, not the network: downloading by hand to the same place fails too
        reason = getattr(e, "reason", e)
        raise DataError(f"could not download {url} ({reason}); {_manual_hint(url, dest)}") from e
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    actual = h.hexdigest()
    if actual != md5:
        part.unlink(missing_ok=True)
        raise DataError(
            f"checksum mismatch for {url}: expected md5 {md5}, got {actual}; the file was deleted "
            "(set CIFAR10_MD5 if this is the archive you meant)"
        )
    os.replace(part, dest)
    return dest


def obtain_archive(url: str, md5: str, directory: Path, progress: bool = True) -> Path:
    """A verified archive on disk: the local source itself, or a download into ``directory``.

    A local source is verified in place and never copied. An archive already
    downloaded and verified is not downloaded again.
    """
    local = _local_path(url)
    if local is not None:
        if not local.is_file():
            raise DataError(f"data source {local} does not exist or is not a file: put the archive (md5 {md5}) "
                            f"there, or point CIFAR10_URL at a copy of it (or at {OFFICIAL_URL})")
        actual = md5sum(local)
        if actual != md5:
            raise DataError(
                f"checksum mismatch for {local}: expected md5 {md5}, got {actual} "
                "(set CIFAR10_MD5 to the md5 of the archive you mean to use)"
            )
        return local
    dest = directory / ARCHIVE_NAME
    if dest.exists():
        actual = md5sum(dest)
        if actual == md5:
            return dest
        raise DataError(
            f"{dest} exists but its md5 is {actual}, expected {md5}: delete it to download "
            "again, or set CIFAR10_MD5 if it is the archive you want"
        )
    return download(url, md5, dest, progress=progress)


def _check_member(member: tarfile.TarInfo) -> str | None:
    """The file name a member extracts to (None for the directory); raises if unsafe."""
    name = member.name
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise DataError(f"refusing archive member {name!r}: absolute path")
    norm = posixpath.normpath(name)
    if ".." in norm.split("/"):
        raise DataError(f"refusing archive member {name!r}: it escapes the data directory")
    if not (member.isfile() or member.isdir()):
        raise DataError(f"refusing archive member {name!r}: links and devices are not allowed")
    if norm == BATCH_DIR and member.isdir():
        return None
    head, _, base = norm.partition("/")
    if head != BATCH_DIR or base not in ALLOWED_FILES or not member.isfile():
        raise DataError(f"refusing archive member {name!r}: not part of the CIFAR-10 python archive")
    return base


def safe_extract(archive: Path, directory: Path) -> Path:
    """Extract the CIFAR-10 members of ``archive`` into ``directory/cifar-10-batches-py``.

    Every member is checked before anything is written; the files land in a
    temporary directory inside ``directory`` (``.extract-*``) that replaces the
    old batch directory only when extraction is complete. ``archive`` is one whose
    md5 was checked: a disk that is full or cannot be written is named as such,
    and the archive is not blamed.
    """
    directory.mkdir(parents=True, exist_ok=True)
    needed = None
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            names = [_check_member(m) for m in members]
            missing = sorted(set(REQUIRED_FILES) - set(names))
            if missing:
                raise DataError(f"archive {archive} lacks {', '.join(missing)}")
            needed = sum(m.size for m in members)
            with tempfile.TemporaryDirectory(dir=directory, prefix=".extract-") as tmp:
                # Members are checked above; the "data" filter is a second guard where available.
                guard = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                tar.extractall(tmp, members=members, **guard)
                target = directory / BATCH_DIR
                if target.exists():
                    shutil.rmtree(target)
                os.replace(Path(tmp) / BATCH_DIR, target)
    except (tarfile.TarError, EOFError, OSError) as e:
        if isinstance(e, OSError) and (local := _write_error(e, directory, f"extracting {archive}", needed)):
            raise DataError(f"{local} (the archive is fine: its md5 matched)") from e
        raise DataError(f"archive {archive} is truncated or corrupt ({e}); fetch it again") from e
    return directory / BATCH_DIR


def _verify_batches(batch_dir: Path) -> dict[str, str]:
    missing = [n for n in REQUIRED_FILES if not (batch_dir / n).is_file()]
    if missing:
        raise DataError(f"{batch_dir} lacks {', '.join(missing)}; run `python -m assignment1 fetch`")
    return {name: md5sum(batch_dir / name) for name in OFFICIAL_BATCH_MD5}


def damaged_files(batch_dir: Path, recorded: dict[str, str]) -> list[str]:
    """What is wrong with the batches in ``batch_dir``, against the md5s ``recorded`` at extraction: one line each."""
    problems = [f"{name} is missing" for name in REQUIRED_FILES if not (batch_dir / name).is_file()]
    for name, expected in recorded.items():
        if (batch_dir / name).is_file() and (actual := md5sum(batch_dir / name)) != expected:
            problems.append(f"{name} has md5 {actual}, not the {expected} recorded when it was extracted")
    return problems


def _missing_ancestors(directory: Path) -> list[Path]:
    """``directory`` and those of its parents that do not exist yet, deepest first."""
    out = []
    while not directory.exists() and directory != directory.parent:
        out.append(directory)
        directory = directory.parent
    return out


def _load_record(path: Path) -> dict:
    """The provenance record at ``path``; raises FileNotFoundError, or another error if it is damaged."""
    record = json.loads(path.read_text())
    if not {"source", "archive_md5", "files"} <= set(record) or not isinstance(record["files"], dict):
        raise ValueError("a field is missing")
    return record


def read_provenance(directory: Path) -> dict | None:
    """The provenance record of a prepared data directory, or None if there is none.

    A record that cannot be read is moved aside (to ``provenance.json.damaged``) and
    :class:`DataError` says so: nothing then vouches for the batches.
    """
    path = Path(directory) / PROVENANCE_NAME
    try:
        return _load_record(path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, AttributeError) as e:
        aside = path.with_name(PROVENANCE_NAME + ".damaged")
        os.replace(path, aside)
        raise DataError(f"{path}, the record of where the data came from, is damaged ({e}); moved to {aside}") from e


def prepare(data_dir: str | os.PathLike, url: str | None = None, md5: str | None = None, progress: bool = True,
            notify=None) -> dict:
    """Make sure verified CIFAR-10 batches are in ``data_dir``; return their provenance.

    The provenance is a dict: ``source``, ``archive_md5``, ``files`` (md5 of each
    batch), ``official`` (every checksum is the official one), ``mismatched``
    (batches whose md5 differs from the official one) and ``batch_dir``; it is
    kept in the data directory, which so remembers where its data came from.
    Data that is not official is still usable, and marked so.

    ``url`` (http(s), ``file://`` or a local path) and ``md5`` name the archive;
    when neither is given, batches prepared earlier are reused after checking
    them against their recorded md5s, and otherwise the official archive is
    fetched. A missing or damaged batch is named through ``notify`` (default: a
    line on stderr) and extracted again from the recorded source. A failed fetch
    leaves no directory behind that it created. Processes preparing one
    directory at once take turns: the later ones find the work done. Batches
    that match their record are used without writing anything, so a read-only
    data directory serves if it is complete. Every failure is a :class:`DataError`.
    """
    directory = Path(data_dir)
    if directory.exists() and not directory.is_dir():
        raise DataError(f"data directory {directory} is a file, not a directory: {_ELSEWHERE} a directory")
    ready, why_not = _as_it_is(directory, url, md5)
    if ready:
        return ready
    created = _missing_ancestors(directory)
    lock = directory / ".prepare.lock"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        while not files.claim(lock):
            time.sleep(0.2)
    except OSError as e:
        _remove(created)
        if files.not_writable(e):
            raise DataError(f"data directory {directory} cannot be written ({e.strerror}), and its data cannot be "
                            f"used as it is: {why_not}; make it writable, or {_ELSEWHERE} a directory you can write "
                            "in") from e
        raise _write_error(e, directory, "preparing the data") or DataError(f"cannot prepare {directory} ({e})") from e
    try:
        _remove_leftovers(directory)
        return _prepare(directory, url, md5, progress, notify)
    except (DataError, OSError) as e:
        files.release(lock)
        _remove(created)
        if isinstance(e, OSError):
            raise _write_error(e, directory, "preparing the data") or DataError(f"cannot prepare {directory} ({e})") \
                from e
        raise
    finally:
        files.release(lock)


def _as_it_is(directory: Path, url: str | None, md5: str | None) -> tuple[dict | None, str]:
    """The provenance of ``directory`` if it holds the batches of the archive asked for, each as its record says;
    else None and what stands in the way. Writes nothing, so it serves a read-only copy too."""
    path = directory / PROVENANCE_NAME
    try:
        known = _load_record(path)
    except FileNotFoundError:
        return None, "it holds no prepared data"
    except (OSError, ValueError, TypeError, AttributeError) as e:
        return None, f"{path} is damaged ({e})"
    wanted = (md5 or (OFFICIAL_MD5 if url else known["archive_md5"])).lower()  # as _prepare resolves it
    if known["archive_md5"] != wanted:
        return None, f"it holds the data of the archive with md5 {known['archive_md5']}, not {wanted}"
    batch_dir = directory / BATCH_DIR
    if problems := damaged_files(batch_dir, known["files"]):
        return None, f"{'; '.join(problems)} (in {batch_dir})"
    return {**known, "batch_dir": str(batch_dir)}, ""  # where it is now: a copy may have been moved


def _remove(created: list[Path]) -> None:
    """Remove the directories a failed fetch created, deepest first; one that holds anything is kept."""
    for d in created:
        with contextlib.suppress(OSError):
            d.rmdir()


def _remove_leftovers(directory: Path) -> None:
    """Delete what killed fetches left in ``directory``: half-extracted batches, a partial download, temporary files.

    Called holding the directory's lock: a fetch writes there only while it holds that lock, so whatever is
    found belongs to a process that is gone, never to a live fetch.
    """
    for tmp in directory.glob(".extract-*"):
        shutil.rmtree(tmp, ignore_errors=True)
    (directory / (ARCHIVE_NAME + ".part")).unlink(missing_ok=True)
    files.remove_orphans(directory)


def _prepare(directory: Path, url: str | None, md5: str | None, progress: bool, notify) -> dict:
    damaged = []
    try:
        known = read_provenance(directory)
    except DataError as e:  # the batches are checked against the archive again
        known, damaged = None, [str(e)]
        (notify or _to_stderr)(f"{e}: checking the batches against the archive again")
    if known and not (url or md5):
        url, md5 = known["source"], known["archive_md5"]  # the source this directory was prepared from
    url, md5 = url or OFFICIAL_URL, (md5 or OFFICIAL_MD5).lower()
    batch_dir = directory / BATCH_DIR
    if known and known.get("archive_md5") == md5:
        damaged = [f"{problem} (in {batch_dir})" for problem in damaged_files(batch_dir, known["files"])]
        if not damaged:  # another process did the work while this one waited for the lock
            return {**known, "batch_dir": str(batch_dir)}
        (notify or _to_stderr)(f"{'; '.join(damaged)}: extracting the data again from {url}")
    try:
        archive = obtain_archive(url, md5, directory, progress=progress)
        safe_extract(archive, directory)
        batches = _verify_batches(batch_dir)
    except DataError as e:
        if damaged:
            raise DataError(f"{'; '.join(damaged)}, and extracting again failed: {e}") from e
        raise
    mismatched = sorted(n for n, h in batches.items() if h != OFFICIAL_BATCH_MD5[n])
    provenance = {
        "source": url,
        "archive_md5": md5,
        "files": batches,
        "official": md5 == OFFICIAL_MD5 and not mismatched,
        "mismatched": mismatched,
        "batch_dir": str(batch_dir),
    }
    files.write_atomic(directory / PROVENANCE_NAME, json.dumps(provenance, indent=2) + "\n")
    return provenance


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def describe(provenance: dict) -> str:
    """One paragraph saying where the data came from and whether it is official."""
    if provenance["official"]:
        verdict = "the official CIFAR-10 (every checksum matches)"
    else:
        verdict = (
            "NOT the official CIFAR-10: the checksums of "
            f"{', '.join(provenance['mismatched']) or 'the archive'} differ from the official "
            "ones, so results may differ slightly from published ones"
        )
    return f"Data from {provenance['source']} (archive md5 {provenance['archive_md5']}): {verdict}."
