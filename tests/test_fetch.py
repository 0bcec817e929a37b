import json
import socket
import subprocess
import sys
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from assignment1 import fetch
from assignment1.fetch import DataError

from cifar_format import add_file, make_batches, write_archive
from conftest import run_env


class ArchiveServer:
    """An HTTP server on 127.0.0.1 serving one payload, counting requests.

    ``mode``: ``ok``; ``drop`` (announce the full length, send half, hang up).
    """

    def __init__(self, payload: bytes, mode: str = "ok"):
        self.payload, self.mode, self.requests = payload, mode, 0
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

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/cifar-10-python.tar.gz"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def fetch_cli(*args, **env):
    return subprocess.run([sys.executable, "-m", "assignment1", "fetch", *args], capture_output=True,
                          text=True, env=run_env(**env), timeout=120)


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
    assert provenance["archive_md5"] == md5 == fetch.md5sum(tmp_path / "data" / fetch.ARCHIVE_NAME)


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
    assert "by hand" in r.stderr and str(dest) in r.stderr
    assert not dest.exists() and not dest.with_name(dest.name + ".part").exists()


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
    md5 = fetch.md5sum(cut)
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
        fetch.obtain_archive(str(path), fetch.OFFICIAL_MD5, tmp_path)


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
    assert fetch.md5sum(victim) == provenance["files"]["data_batch_3"]
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
