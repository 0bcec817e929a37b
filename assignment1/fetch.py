"""Getting CIFAR-10 onto disk: download (by pooch), checksums, safe extraction, provenance; see docs/data.md."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.parse
from pathlib import Path

import pooch
from tqdm import tqdm

from . import files

OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
OFFICIAL_MD5 = "c58f30108f718f92721af3b95e74349a"
BATCH_DIR = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META = "batches.meta"
OFFICIAL_BATCH_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f", "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751", "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb", "test_batch": "40351d587109b95175f43aff81a1287e",
}
REQUIRED_FILES = (*TRAIN_BATCHES, TEST_BATCH, META)
MEMBERS = frozenset(f"{BATCH_DIR}/{name}" for name in (*REQUIRED_FILES, "readme.html"))  # the archive's files
ARCHIVE_NAME = "cifar-10-python.tar.gz"
PROVENANCE_NAME = "provenance.json"
_ELSEWHERE = "point A1_DATA_DIR (or --data-dir, or the data_dir parameter) at"


class DataError(RuntimeError):
    """A problem with the data, worded as one line a user can act on."""


class _Bar(tqdm):
    """The download's bar as pooch drives it: asked whether it is one before its size is known (it shows once data
    flows, so a refused connection shows none), and ended with ``reset()`` and ``update(total)``."""

    def __bool__(self):
        return True

    def reset(self, total=None):  # restarting the clock would show the rate of no time at all (GB/s)
        self.n, self.delay = 0, 0  # and a quick download still ends with its bar


def _archive(url: str, md5: str, directory: Path, progress: bool) -> Path:
    """The archive at ``url`` with md5 ``md5``: downloaded into ``directory`` (once), or a local file as it is."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme in ("http", "https"):
        log, level = pooch.get_logger(), pooch.get_logger().level
        bar = _Bar(desc=ARCHIVE_NAME, unit="B", unit_scale=True, delay=0.5) if progress else False
        try:
            log.setLevel("WARNING")  # not its "Downloading data from ..." line: the bar says what arrives
            # 1 MiB chunks: pooch's default of 1 KiB takes 7.5 s instead of 1.9 s for the archive from localhost
            return Path(pooch.retrieve(url, f"md5:{md5}", ARCHIVE_NAME, directory, downloader=pooch.HTTPDownloader(
                progressbar=bar, chunk_size=1 << 20)))
        except (OSError, ValueError) as e:  # requests' errors are OSErrors too; a checksum mismatch is a ValueError
            if not isinstance(e, OSError):  # pooch's checksum mismatch: "... but got <hex>. Deleted ..."
                raise DataError(f"checksum mismatch for {url}: expected md5 {md5}, got "
                                f"{str(e).partition(' but got ')[2].partition('.')[0]}; the file was deleted (set "
                                "CIFAR10_MD5 if this is the archive you meant)") from None
            if files.disk_full(e) or files.not_writable(e):
                raise  # the disk's fault, not the network's: prepare says so
            cause = e  # the innermost error says what failed (the socket's, or the HTTP status)
            while cause.__cause__ or cause.__context__:
                cause = cause.__cause__ or cause.__context__
            raise DataError(f"could not download {url} ({cause}); download {url} by hand and save it as "
                            f"{directory / ARCHIVE_NAME}, or point CIFAR10_URL at a local copy (and CIFAR10_MD5 at its "
                            "md5 if it is not the official archive)") from None
        finally:
            log.setLevel(level)
            if progress:  # ended before the error is said
                bar.close()
    if parsed.scheme not in ("", "file"):
        raise DataError(f"unsupported data source {url!r}: use http(s)://, file:// or a local path")
    local = Path(urllib.parse.unquote(parsed.path) if parsed.scheme else url).expanduser()
    if not local.is_file():
        raise DataError(f"data source {local} does not exist or is not a file: put the archive (md5 {md5}) there, "
                        f"or point CIFAR10_URL at a copy of it (or at {OFFICIAL_URL})")
    if (actual := pooch.file_hash(local, alg="md5")) != md5:
        raise DataError(f"checksum mismatch for {local}: expected md5 {md5}, got {actual} (set CIFAR10_MD5 to the md5 "
                        "of the archive you mean to use)")
    return local


def _extract(archive: Path, directory: Path) -> None:
    """Extract ``archive``, if it has the official archive's members and no others, into ``directory``."""
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            names = [os.path.normpath(m.name) for m in members]
            for m, name in zip(members, names):
                if not ((m.isdir() and name == BATCH_DIR) or (m.isfile() and name in MEMBERS)):
                    why = ("links and devices are not allowed" if not (m.isfile() or m.isdir())
                           else "absolute path" if name.startswith("/")
                           else "it escapes the data directory" if name.split("/")[0] == ".."
                           else "not part of the CIFAR-10 python archive")
                    raise DataError(f"refusing archive member {m.name!r}: {why}")
            if missing := [name for name in REQUIRED_FILES if f"{BATCH_DIR}/{name}" not in names]:
                raise DataError(f"archive {archive} lacks {', '.join(missing)}")
            with tempfile.TemporaryDirectory(dir=directory, prefix=".extract-") as tmp:
                tar.extractall(tmp, filter="data")  # a second guard behind the check above
                shutil.rmtree(directory / BATCH_DIR, ignore_errors=True)
                os.replace(Path(tmp) / BATCH_DIR, directory / BATCH_DIR)
    except (tarfile.TarError, EOFError, OSError) as e:
        if isinstance(e, OSError) and (files.disk_full(e) or files.not_writable(e)):
            raise  # the disk's fault, not the archive's: prepare says so
        raise DataError(f"archive {archive} is truncated or corrupt ({e}); fetch it again") from e


def read_provenance(directory: str | os.PathLike, move_aside: bool = True) -> dict | None:
    """The provenance record of a data directory, or None; a damaged one raises (``move_aside``: renamed first)."""
    path = Path(directory) / PROVENANCE_NAME
    try:
        record = json.loads(path.read_text())
        if not {"source", "archive_md5", "files"} <= set(record) or not isinstance(record["files"], dict):
            raise ValueError("a field is missing")
        return record
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, AttributeError) as e:
        if move_aside:
            os.replace(path, aside := path.with_name(PROVENANCE_NAME + ".damaged"))
        raise DataError(f"{path}, the record of where the data came from, is damaged ({e})"
                        + (f"; moved to {aside}" if move_aside else "")) from e


def _as_it_is(directory: Path, url: str | None, md5: str | None) -> tuple[dict | None, str]:
    """``directory``'s provenance if its batches are those asked for, as recorded (else None, why); writes nothing."""
    try:
        known = read_provenance(directory, move_aside=False)
    except DataError as e:
        return None, str(e)
    if known is None:
        return None, "it holds no prepared data"
    if known["archive_md5"] != (wanted := (md5 or (OFFICIAL_MD5 if url else known["archive_md5"])).lower()):
        return None, f"it holds the data of the archive with md5 {known['archive_md5']}, not {wanted}"
    batch_dir = directory / BATCH_DIR
    problems = [f"{name} is missing" for name in REQUIRED_FILES if not (batch_dir / name).is_file()] + [
        f"{name} has md5 {actual}, not the {expected} recorded when it was extracted"
        for name, expected in known["files"].items() if (batch_dir / name).is_file()
        and (actual := pooch.file_hash(batch_dir / name, alg="md5")) != expected]
    if problems:
        return None, f"{'; '.join(problems)} (in {batch_dir})"
    return {**known, "batch_dir": str(batch_dir)}, ""  # where it is now: a copy may have been moved


def prepare(data_dir: str | os.PathLike, url: str | None = None, md5: str | None = None, progress: bool = True,
            notify=None) -> dict:
    """Make sure verified CIFAR-10 batches are in ``data_dir`` (from ``url`` with ``md5``, else the source it records,
    else the official archive); return their provenance: ``source``, ``archive_md5``, ``files`` (each batch's md5),
    ``official``, ``mismatched``, ``batch_dir``. Repairs are told to ``notify``; failures raise :class:`DataError`."""
    directory, notify = Path(data_dir), notify or (lambda line: print(line, file=sys.stderr))
    if directory.exists() and not directory.is_dir():
        raise DataError(f"data directory {directory} is a file, not a directory: {_ELSEWHERE} a directory")
    ready, why_not = _as_it_is(directory, url, md5)
    if ready:
        return ready
    created = [d for d in (directory, *directory.parents) if not d.exists()]  # by this fetch, deepest first
    lock, doing = directory / ".prepare.lock", "preparing the data"  # doing: what a full disk stops
    try:
        directory.mkdir(parents=True, exist_ok=True)
        while not files.claim(lock):  # processes preparing one directory take turns
            time.sleep(0.2)
        # only the holder of the lock writes here: what is found belongs to a fetch that was killed
        for extraction in directory.glob(".extract-*"):
            shutil.rmtree(extraction, ignore_errors=True)
        for part in directory.glob("tmp" + "?" * 8):  # pooch's partial download
            part.unlink()
        files.remove_orphans(directory)
        try:
            known, damaged = read_provenance(directory), ""
        except DataError as e:  # moved aside: the batches are checked against the archive again
            known, damaged = None, str(e)
            notify(f"{e}: checking the batches against the archive again")
        if known and not (url or md5):
            url, md5 = known["source"], known["archive_md5"]  # the source this directory was prepared from
        url, md5 = url or OFFICIAL_URL, (md5 or OFFICIAL_MD5).lower()
        if known and known["archive_md5"] == md5:
            ready, damaged = _as_it_is(directory, url, md5)
            if ready:  # another process did the work while this one waited for the lock
                return ready
            notify(f"{damaged}: extracting the data again from {url}")
        try:
            doing = f"downloading {url}"
            archive = _archive(url, md5, directory, progress)
            doing = f"extracting {archive} (the archive is fine: its md5 matched)"
            _extract(archive, directory)
        except DataError as e:
            raise DataError(f"{damaged}, and extracting again failed: {e}") if damaged else e from None
        batches = {name: pooch.file_hash(directory / BATCH_DIR / name, alg="md5") for name in OFFICIAL_BATCH_MD5}
        mismatched = sorted(name for name, h in batches.items() if h != OFFICIAL_BATCH_MD5[name])
        provenance = {"source": url, "archive_md5": md5, "files": batches, "official": md5 == OFFICIAL_MD5 and not
                      mismatched, "mismatched": mismatched, "batch_dir": str(directory / BATCH_DIR)}
        files.write_atomic(directory / PROVENANCE_NAME, json.dumps(provenance, indent=2) + "\n")
        return provenance
    except (DataError, OSError) as e:
        files.release(lock)
        for d in created:  # a failed fetch leaves no directory it created, unless it holds something
            with contextlib.suppress(OSError):
                d.rmdir()
        if not isinstance(e, OSError):
            raise
        if files.disk_full(e):
            free = shutil.disk_usage(next(d for d in (directory, *directory.parents) if d.exists())).free / 1e6
            raise DataError(f"the disk holding {directory} is full ({e.strerror}): {doing} needs room there and "
                            f"{free:.1f} MB is free; free some space there, or {_ELSEWHERE} a disk with room") from e
        if files.not_writable(e):
            raise DataError(f"data directory {directory} cannot be written ({e.strerror}), and its data cannot be "
                            f"used as it is: {why_not}; make it writable, or {_ELSEWHERE} a directory you can write "
                            "in") from e
        raise DataError(f"cannot prepare {directory} ({e})") from e
    finally:
        files.release(lock)


def describe(provenance: dict) -> str:
    """One paragraph saying where the data came from and whether it is official."""
    verdict = ("the official CIFAR-10 (every checksum matches)" if provenance["official"] else
               f"NOT the official CIFAR-10: the checksums of {', '.join(provenance['mismatched']) or 'the archive'} "
               "differ from the official ones, so results may differ slightly from published ones")
    return f"Data from {provenance['source']} (archive md5 {provenance['archive_md5']}): {verdict}."
