import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from assignment1 import fetch
from assignment1.fetch import DataError

from cifar_format import add_file, make_batches, write_archive
from conftest import run_env


class ArchiveServer:
    """An HTTP server on 127.0.0.1 serving one payload, counting requests.

    ``mode``: ``ok``; ``drop`` (announce the full length, send half, hang up); ``hang`` (send half, then wait until
    the server stops).
    """

    def __init__(self, payload: bytes, mode: str = "ok"):
        self.payload, self.mode, self.requests, self.stopping = payload, mode, 0, threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests += 1
                self.send_response(200)
                self.send_header("Content-Length", str(len(server.payload)))
                self.end_headers()
                body = server.payload if server.mode == "ok" else server.payload[: len(server.payload) // 2]
                self.wfile.write(body)
                self.wfile.flush()
                if server.mode == "hang":
                    server.stopping.wait(120)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/cifar-10-python.tar.gz"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def md5_of(path) -> str:
    """The md5 of a file, by hashlib (the reference the package's pooch-computed sums are checked against)."""
    return hashlib.md5(open(path, "rb").read()).hexdigest()


def fetch_cli(*args, **env):
    return subprocess.run([sys.executable, "-m", "assignment1", "fetch", *args], capture_output=True,
                          text=True, env=run_env(**env), timeout=120)


@pytest.fixture
def mount():
    """``mount(*args)`` runs ``mount *args`` (the target last), skipping the test where it cannot; every mount is
    undone when the test ends, the latest first."""
    targets = []

    def do(*args):
        if os.geteuid() != 0 or shutil.which("mount") is None:
            pytest.skip("mounting needs root and mount(8) (CI runs as root)")
        r = subprocess.run(["mount", *map(str, args)], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount here: {(r.stderr.strip() or str(r.returncode)).splitlines()[0]}")
        if str(args[-1]) not in targets:
            targets.append(str(args[-1]))

    try:
        yield do
    finally:
        for target in reversed(targets):
            if subprocess.run(["umount", target], capture_output=True).returncode != 0:
                subprocess.run(["umount", "--lazy", target], capture_output=True)


def read_only_copy(mount, src, dst):
    """``src`` shown read-only at ``dst`` (a bind mount), as a shared copy of a data directory is."""
    dst.mkdir()
    mount("--bind", src, dst)
    mount("-o", "remount,bind,ro", dst)
    if os.access(dst, os.W_OK):
        pytest.skip(f"{dst} is still writable after a read-only remount")
    return dst


def last_line(r) -> str:
    """The last line the command wrote on stderr."""
    return r.stderr.rstrip("\n").rsplit("\n", 1)[-1]


def test_fetch_end_to_end_over_http(tiny_archive, tmp_path):
    path, md5 = tiny_archive
    data_dir = tmp_path / "data"
    with ArchiveServer(path.read_bytes()) as server:
        # first run: download, verify, extract, print provenance
        r = fetch_cli("--url", server.url, "--md5", md5, "--data-dir", str(data_dir))
        assert r.returncode == 0, r.stderr
        assert "NOT the official CIFAR-10" in r.stdout
        provenance = json.loads(r.stdout[r.stdout.index("{"):])
        assert provenance["official"] is False and provenance["archive_md5"] == md5
        assert sorted(provenance["files"]) == sorted(fetch.OFFICIAL_BATCH_MD5)
        assert (data_dir / "cifar-10-batches-py" / "test_batch").is_file()
        assert not list(data_dir.glob("*.part"))
        assert server.requests == 1
        # second run: nothing downloaded again
        assert fetch_cli("--url", server.url, "--md5", md5, "--data-dir", str(data_dir)).returncode == 0
        # extracted files lost: the verified archive is reused, still without a download
        for f in (data_dir / "cifar-10-batches-py").iterdir():
            f.unlink()
        r = fetch_cli("--url", server.url, "--md5", md5, "--data-dir", str(data_dir))
        assert r.returncode == 0, r.stderr
        assert (data_dir / "cifar-10-batches-py" / "data_batch_1").is_file()
        assert server.requests == 1


def test_a_download_of_many_chunks_arrives_whole(tmp_path):
    # the download streams 1 MiB chunks: the tiny archive is one; this one (about 4 MB) is several
    archive = tmp_path / "big.tar.gz"
    md5 = write_archive(archive, make_batches(n_per_batch=200))
    assert archive.stat().st_size > 3 * 2**20
    with ArchiveServer(archive.read_bytes()) as server:
        provenance = fetch.prepare(url=server.url, md5=md5, data_dir=tmp_path / "data", progress=False)
    assert provenance["archive_md5"] == md5 == md5_of(tmp_path / "data" / fetch.ARCHIVE_NAME)


def test_checksum_mismatch_leaves_no_file(tiny_archive, tmp_path):
    path, md5 = tiny_archive
    wrong = "0" * 32
    with ArchiveServer(path.read_bytes()) as server:
        with pytest.raises(DataError, match=f"expected md5 {wrong}, got {md5}"):
            fetch.prepare(url=server.url, md5=wrong, data_dir=tmp_path / "data", progress=False)
    assert not (tmp_path / "data").exists()  # nor the directory the fetch created


def test_dropped_connection_leaves_no_file(tiny_archive, tmp_path):
    path, md5 = tiny_archive
    with ArchiveServer(path.read_bytes(), mode="drop") as server:
        with pytest.raises(DataError, match="127.0.0.1"):
            fetch.prepare(url=server.url, md5=md5, data_dir=tmp_path / "data", progress=False)
    assert not (tmp_path / "data").exists()


def test_unreachable_server_says_how_to_download_by_hand(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dest = tmp_path / "data" / "cifar-10-python.tar.gz"
    r = fetch_cli("--url", f"http://127.0.0.1:{port}/x.tar.gz", "--data-dir", str(tmp_path / "data"))
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: could not download")
    # the socket's own reason, not requests' wrapping of it ("Max retries exceeded ... HTTPConnection object at")
    assert "Connection refused); download" in r.stderr and "Max retries" not in r.stderr, r.stderr
    assert "by hand" in r.stderr and str(dest) in r.stderr and "CIFAR10_URL at a local copy" in r.stderr
    assert not dest.parent.exists()  # nothing written, not even the directory


def test_a_download_from_python_http_server_is_verified_and_a_wrong_md5_is_one_line(tiny_archive, tmp_path):
    path, md5 = tiny_archive
    wrong = "0123456789abcdef" * 2
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # the archive served as a user would serve it: python -m http.server in its folder
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                              cwd=path.parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/{path.name}"
    try:
        for _ in range(100):  # until it listens
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        # a wrong md5: one line naming both sums, after the progress bar; nothing left behind, not even the directory
        r = fetch_cli("--url", url, "--md5", wrong, "--data-dir", str(tmp_path / "bad"))
        assert r.returncode == 1 and "Traceback" not in r.stderr and "pooch" not in r.stderr.lower(), r.stderr
        assert last_line(r) == (f"error: checksum mismatch for {url}: expected md5 {wrong}, got {md5}; the file was "
                                "deleted (set CIFAR10_MD5 if this is the archive you meant)"), r.stderr
        assert r.stderr.count("error:") == 1 and not (tmp_path / "bad").exists()
        # the right md5: downloaded, kept, and its batches are the archive's (read back with tarfile)
        r = fetch_cli("--url", url, "--md5", md5, "--data-dir", str(tmp_path / "good"))
        assert r.returncode == 0, r.stderr
        assert "Downloading data from" not in r.stderr  # our bar, not pooch's log line
        assert f"{fetch.ARCHIVE_NAME}: 100%" in r.stderr, r.stderr  # named, and full even for a quick download
        assert md5_of(tmp_path / "good" / fetch.ARCHIVE_NAME) == md5
        with tarfile.open(path) as tar:
            for name in fetch.OFFICIAL_BATCH_MD5:
                expected = tar.extractfile(f"{fetch.BATCH_DIR}/{name}").read()
                assert (tmp_path / "good" / fetch.BATCH_DIR / name).read_bytes() == expected
        assert sorted(p.name for p in (tmp_path / "good").iterdir()) == sorted([fetch.ARCHIVE_NAME, fetch.BATCH_DIR,
                                                                                 fetch.PROVENANCE_NAME])
    finally:
        server.kill()
        server.wait()


def test_a_download_leaves_pooch_logging_as_it_was(tiny_archive, tmp_path):
    import pooch

    path, md5 = tiny_archive
    log = pooch.get_logger()
    before = log.level
    with ArchiveServer(path.read_bytes()) as server:
        fetch.prepare(url=server.url, md5=md5, data_dir=tmp_path / "data", progress=False)
        with pytest.raises(DataError, match="checksum mismatch"):
            fetch.prepare(url=server.url, md5="0" * 32, data_dir=tmp_path / "other", progress=False)
    assert log.level == before


def test_a_download_killed_midway_is_cleaned_up_by_the_next_fetch(tmp_path):
    path = tmp_path / "big.tar.gz"
    md5 = write_archive(path, make_batches(n_per_batch=200))  # half of it (2 MB) is more than a chunk of the download
    data_dir = tmp_path / "data"
    with ArchiveServer(path.read_bytes(), mode="hang") as server:
        args = ["--url", server.url, "--md5", md5, "--data-dir", str(data_dir)]
        killed = subprocess.Popen([sys.executable, "-m", "assignment1", "fetch", *args], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, env=run_env())
        try:
            # half the archive has arrived, in a temporary file of the download, when the fetch is killed (kill -9)
            deadline = time.monotonic() + 60
            while not [p for p in data_dir.glob("*") if p.is_file() and p.stat().st_size > 0 and p.name[0] != "."]:
                assert time.monotonic() < deadline and killed.poll() is None, "the download never started"
                time.sleep(0.05)
        finally:
            killed.kill()
            killed.wait()
        left = sorted(p.name for p in data_dir.iterdir() if p.name != ".prepare.lock")
        assert len(left) == 1 and left[0] != fetch.ARCHIVE_NAME, left  # the partial file, never under the final name
    # the next fetch, from a server that works, removes it and prepares the data
    with ArchiveServer(path.read_bytes()) as server:
        r = fetch_cli("--url", server.url, "--md5", md5, "--data-dir", str(data_dir))
    assert r.returncode == 0, r.stderr
    expected = sorted([fetch.ARCHIVE_NAME, fetch.BATCH_DIR, fetch.PROVENANCE_NAME])
    assert sorted(p.name for p in data_dir.iterdir()) == expected


def hostile(kind):
    def extra(tar):
        if kind == "dotdot":
            add_file(tar, "cifar-10-batches-py/../../escaped", b"x")
        elif kind == "absolute":
            add_file(tar, "/tmp/a1-absolute-escape", b"x")
        elif kind == "symlink":
            info = tarfile.TarInfo("cifar-10-batches-py/link")
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
        elif kind == "device":
            info = tarfile.TarInfo("cifar-10-batches-py/dev")
            info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
            tar.addfile(info)
        elif kind == "unexpected":
            add_file(tar, "cifar-10-batches-py/run_me.sh", b"#!/bin/sh\n")

    return extra


@pytest.mark.parametrize(
    "kind, message",
    [("dotdot", "escapes the data directory"), ("absolute", "absolute path"),
     ("symlink", "links and devices"), ("device", "links and devices"), ("unexpected", "not part of")],
)
def test_hostile_archive_members_are_refused(tmp_path, kind, message):
    archive = tmp_path / "src" / "evil.tar.gz"
    archive.parent.mkdir()
    md5 = write_archive(archive, extra=hostile(kind))
    data_dir = tmp_path / "deep" / "data"
    with pytest.raises(DataError, match=message):
        fetch.prepare(url=str(archive), md5=md5, data_dir=data_dir, progress=False)
    # nothing was written: not inside the data directory, not beside it, and not the directories themselves
    assert not (tmp_path / "escaped").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_missing_batch_is_named(tmp_path):
    from cifar_format import make_batches

    files = make_batches(n_per_batch=10)
    del files["test_batch"]
    archive = tmp_path / "a.tar.gz"
    md5 = write_archive(archive, files)
    with pytest.raises(DataError, match="lacks test_batch"):
        fetch.prepare(url=archive.as_uri(), md5=md5, data_dir=tmp_path / "data", progress=False)


def test_truncated_archive_is_refused(tiny_archive, tmp_path):
    path, _ = tiny_archive
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    md5 = md5_of(cut)
    with pytest.raises(DataError, match="truncated or corrupt"):
        fetch.prepare(url=str(cut), md5=md5, data_dir=tmp_path / "data", progress=False)
    assert not (tmp_path / "data" / "cifar-10-batches-py").exists()


def test_local_source_is_not_copied(tiny_archive, tmp_path):
    path, md5 = tiny_archive
    provenance = fetch.prepare(url=path.as_uri(), md5=md5, data_dir=tmp_path / "data", progress=False)
    assert provenance["source"] == path.as_uri()
    assert not (tmp_path / "data" / fetch.ARCHIVE_NAME).exists()
    # named with no source afterwards, the prepared data is reused as it is
    assert fetch.prepare(data_dir=tmp_path / "data", progress=False) == provenance


def test_stand_in_is_usable_and_marked_unofficial(stand_in, tmp_path):
    path, md5 = stand_in
    provenance = fetch.prepare(url=f"file://{path}", md5=md5, data_dir=tmp_path / "data", progress=False)
    assert provenance["official"] is False
    assert provenance["mismatched"] == sorted(fetch.OFFICIAL_BATCH_MD5)
    # and its official md5 is refused with both checksums named
    with pytest.raises(DataError, match=f"expected md5 {fetch.OFFICIAL_MD5}, got {md5}"):
        fetch.prepare(url=str(path), md5=fetch.OFFICIAL_MD5, data_dir=tmp_path / "other", progress=False)


def test_a_damaged_batch_is_named_and_extracted_again_from_the_recorded_source(tiny_archive, tmp_path):
    path, md5 = tiny_archive
    data_dir = tmp_path / "data"
    provenance = fetch.prepare(url=path.as_uri(), md5=md5, data_dir=data_dir, progress=False)
    victim = data_dir / fetch.BATCH_DIR / "data_batch_3"
    victim.write_bytes(victim.read_bytes()[:1000])
    said = []
    # no source named: the directory's own record says where the data came from (not the official URL)
    assert fetch.prepare(data_dir=data_dir, progress=False, notify=said.append) == provenance
    assert len(said) == 1 and "data_batch_3 has md5" in said[0] and f"again from {path.as_uri()}" in said[0]
    assert md5_of(victim) == provenance["files"]["data_batch_3"]
    # the source gone too: the error names the damaged file and what to put where
    victim.unlink()
    path.rename(path.with_suffix(".moved"))
    with pytest.raises(DataError, match=r"data_batch_3 is missing .* extracting again failed: data source .* does not "
                                        rf"exist .* put the archive \(md5 {md5}\) there"):
        fetch.prepare(data_dir=data_dir, progress=False, notify=said.append)


def test_train_on_a_damaged_data_directory_repairs_it_and_says_so(tiny_archive, tmp_path):
    path, md5 = tiny_archive
    data_dir = tmp_path / "data"
    assert fetch_cli("--url", path.as_uri(), "--md5", md5, "--data-dir", str(data_dir)).returncode == 0
    victim = data_dir / fetch.BATCH_DIR / "test_batch"
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    r = subprocess.run([sys.executable, "-m", "assignment1", "train", "--data-dir", str(data_dir), "--epochs", "1",
                        "--batch", "10", "--val-size", "20", "--quiet"], capture_output=True, text=True,
                       env=run_env(), timeout=300)
    assert r.returncode == 0, r.stderr
    assert "test_batch has md5" in r.stderr and path.as_uri() in r.stderr and "cs.toronto.edu" not in r.stderr
    assert "test loss" in r.stdout


@pytest.mark.parametrize("case", ["download", "extraction of the download", "extraction of a local archive"])
def test_a_full_data_disk_is_named_as_such_and_the_archive_kept(tiny_archive, tmp_path, mount, case):
    path, md5 = tiny_archive
    archive_size = path.stat().st_size
    with tarfile.open(path) as tar:
        extracted_size = sum(m.size for m in tar.getmembers())
    # a disk too small for the download, or with room for the download but not for the batches as well
    size = archive_size // 2 if case != "extraction of the download" else archive_size + extracted_size // 2
    disk = tmp_path / "disk"
    disk.mkdir()
    mount("-t", "tmpfs", "-o", f"size={size // 1024}k", "tmpfs", disk)
    data_dir = disk / "data"
    with ArchiveServer(path.read_bytes()) as server:
        source = path.as_uri() if case == "extraction of a local archive" else server.url
        r = fetch_cli("--url", source, "--md5", md5, "--data-dir", str(data_dir))
    # one line naming the full disk, the step, and what to do; the archive is not blamed
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    line = last_line(r)
    doing = "downloading" if case == "download" else "extracting"
    assert line.startswith(f"error: the disk holding {data_dir} is full (No space left on device): {doing} "), line
    assert "free some space there, or point A1_DATA_DIR" in line
    assert "corrupt" not in line and "by hand" not in line
    # nothing half-written is left; a verified download is kept for the next try, a local archive untouched
    kept = sorted(p.name for p in data_dir.iterdir()) if data_dir.exists() else []
    assert kept == (["cifar-10-python.tar.gz"] if case == "extraction of the download" else [])
    if kept:
        assert md5_of(data_dir / kept[0]) == md5
    assert md5_of(path) == md5


def test_a_read_only_data_directory_is_used_as_it_is_and_named_when_it_needs_work(tiny_archive, tmp_path, mount):
    path, md5 = tiny_archive
    prepared = tmp_path / "prepared"
    assert fetch_cli("--url", path.as_uri(), "--md5", md5, "--data-dir", str(prepared)).returncode == 0
    shared = read_only_copy(mount, prepared, tmp_path / "shared")
    # a complete, verified copy: fetch vouches for it where it is, and train uses it
    r = fetch_cli("--data-dir", str(shared))
    assert r.returncode == 0, r.stderr
    provenance = json.loads(r.stdout[r.stdout.index("{"):])
    assert provenance["archive_md5"] == md5 and provenance["batch_dir"] == str(shared / fetch.BATCH_DIR)
    r = subprocess.run([sys.executable, "-m", "assignment1", "train", "--data-dir", str(shared), "--epochs", "1",
                        "--batch", "10", "--val-size", "20", "--quiet"], capture_output=True, text=True,
                       env=run_env(), timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.rstrip().rsplit("\n", 1)[-1].startswith("test loss")
    # a batch gone from it: one line says the directory cannot be written, what is wrong, and what to do
    (prepared / fetch.BATCH_DIR / "data_batch_3").unlink()
    r = fetch_cli("--data-dir", str(shared))
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith(f"error: data directory {shared} cannot be written (Read-only file system), and its "
                               "data cannot be used as it is: data_batch_3 is missing"), r.stderr
    assert r.stderr.rstrip().endswith("point A1_DATA_DIR (or --data-dir, or the data_dir parameter) at a directory "
                                      "you can write in")
    # an empty read-only directory: the same, saying it holds no data
    empty = tmp_path / "empty"
    empty.mkdir()
    r = fetch_cli("--url", path.as_uri(), "--md5", md5, "--data-dir", str(read_only_copy(mount, empty,
                                                                                           tmp_path / "shared-empty")))
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "it holds no prepared data" in r.stderr, r.stderr


# ``python -m assignment1`` that kills itself (SIGKILL, as kill -9) once three members are extracted
KILLED_MID_EXTRACTION = """
import os, runpy, signal, sys, tarfile
real, written = tarfile.TarFile.makefile, []
def makefile(self, tarinfo, targetpath):
    real(self, tarinfo, targetpath)
    written.append(targetpath)
    if len(written) == 3:
        os.kill(os.getpid(), signal.SIGKILL)
tarfile.TarFile.makefile = makefile
runpy.run_module("assignment1", run_name="__main__", alter_sys=True)
"""


def test_a_fetch_killed_mid_extraction_is_recovered_and_its_leftovers_removed(tiny_archive, tmp_path):
    path, md5 = tiny_archive
    data_dir = tmp_path / "data"
    args = ["fetch", "--url", path.as_uri(), "--md5", md5, "--data-dir", str(data_dir)]
    r = subprocess.run([sys.executable, "-c", KILLED_MID_EXTRACTION, *args], capture_output=True, text=True,
                       env=run_env(), timeout=120)
    # killed with three batches in a hidden temporary directory and its lock left behind
    assert r.returncode == -signal.SIGKILL, r.stderr
    (leftover,) = data_dir.glob(".extract-*")
    assert len(list(leftover.rglob("*_batch*"))) == 3 and (data_dir / ".prepare.lock").exists()
    # the next fetch takes the dead process's lock over, extracts everything, and removes what it left
    r = fetch_cli(*args[1:])
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in data_dir.iterdir()) == [fetch.BATCH_DIR, fetch.PROVENANCE_NAME]
    recorded = json.loads((data_dir / fetch.PROVENANCE_NAME).read_text())["files"]
    assert recorded == {name: md5_of(data_dir / fetch.BATCH_DIR / name) for name in fetch.OFFICIAL_BATCH_MD5}


def test_a_live_fetch_keeps_its_extraction_and_the_next_removes_it_once_it_is_gone(tiny_archive, tmp_path):
    path, md5 = tiny_archive
    data_dir = tmp_path / "data"
    (data_dir / ".extract-live" / fetch.BATCH_DIR).mkdir(parents=True)
    (data_dir / ".extract-live" / fetch.BATCH_DIR / "data_batch_1").write_bytes(b"half")
    # a live process holds the lock, as a fetch does while it extracts
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from assignment1 import files; "
                               "files.claim(sys.argv[1]); print(flush=True); time.sleep(60)",
                               data_dir / ".prepare.lock"], stdout=subprocess.PIPE, env=run_env())
    try:
        holder.stdout.readline()  # it holds the lock
        waiting = subprocess.Popen([sys.executable, "-m", "assignment1", "fetch", "--url", path.as_uri(), "--md5", md5,
                                    "--data-dir", str(data_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, env=run_env())
        time.sleep(2)
        # the other fetch waits, and leaves the live one's extraction alone
        assert waiting.poll() is None and (data_dir / ".extract-live" / fetch.BATCH_DIR / "data_batch_1").exists()
    finally:
        holder.kill()
        holder.wait()
    # the holder gone, the waiting fetch takes over, removes what it left and prepares the data
    _, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, err
    assert sorted(p.name for p in data_dir.iterdir()) == [fetch.BATCH_DIR, fetch.PROVENANCE_NAME]
