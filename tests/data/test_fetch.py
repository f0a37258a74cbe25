"""`din fetch` against a real HTTP server on 127.0.0.1: resume, checks, offline message."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import socket
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from din_model.data.sources.catalog import (
    RemoteFile,
    Source,
    amazon_source,
    get_source,
    movielens_source,
)
from din_model.data.sources.download import (
    BASE_URL_ENV,
    FetchError,
    OfflineError,
    download_file,
    extract_zip,
    fetch,
)

PAYLOAD = os.urandom(3 * 1024 * 1024 + 12_345)  # several read blocks, not a round size


@dataclass
class FileServer:
    """What the test server serves and how it misbehaves; it records every request."""

    files: dict[str, bytes] = field(default_factory=dict)
    cut_first: set[str] = field(default_factory=set)  # send half of the body once, then hang up
    cut_always: bool = False
    ignore_range: bool = False
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _handler(state: FileServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep the test output clean
            pass

        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            name = self.path.lstrip("/")
            wanted = self.headers.get("Range")
            state.requests.append((name, wanted))
            if name not in state.files:
                self.send_error(404, "not here")
                return
            body = state.files[name]
            start = 0
            if wanted and not state.ignore_range:
                start = int(wanted.removeprefix("bytes=").split("-")[0])
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            part = body[start:]
            self.send_header("Content-Length", str(len(part)))
            self.send_header("Accept-Ranges", "none" if state.ignore_range else "bytes")
            self.end_headers()
            if state.cut_always or name in state.cut_first:
                state.cut_first.discard(name)
                self.wfile.write(part[: len(part) // 2])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)  # the "network" drops here
                return
            self.wfile.write(part)

    return Handler


@pytest.fixture
def server() -> Iterator[FileServer]:
    state = FileServer()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def closed_port() -> int:
    """A local port nobody listens on: connections are refused, as when offline."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_download_is_checked_and_renamed(server: FileServer, tmp_path: Path) -> None:
    server.files["data.bin"] = PAYLOAD
    target = download_file(
        f"{server.url}/data.bin", tmp_path / "data.bin", md5=md5(PAYLOAD), retries=0
    )
    assert target.read_bytes() == PAYLOAD
    assert not (tmp_path / "data.bin.part").exists()
    assert server.requests == [("data.bin", None)]


def test_a_cut_transfer_resumes_with_a_range_request(server: FileServer, tmp_path: Path) -> None:
    server.files["data.bin"] = PAYLOAD
    server.cut_first.add("data.bin")
    target = download_file(f"{server.url}/data.bin", tmp_path / "data.bin", md5=md5(PAYLOAD))
    assert target.read_bytes() == PAYLOAD
    assert len(server.requests) == 2
    assert server.requests[1] == ("data.bin", f"bytes={len(PAYLOAD) // 2}-")


def test_a_part_left_by_an_earlier_run_is_continued(server: FileServer, tmp_path: Path) -> None:
    server.files["data.bin"] = PAYLOAD
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD[:1_000_000])
    target = download_file(f"{server.url}/data.bin", tmp_path / "data.bin", sha256=None)
    assert target.read_bytes() == PAYLOAD
    assert server.requests == [("data.bin", "bytes=1000000-")]


def test_a_complete_part_is_finished_without_a_body(server: FileServer, tmp_path: Path) -> None:
    server.files["data.bin"] = PAYLOAD
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD)
    target = download_file(f"{server.url}/data.bin", tmp_path / "data.bin", md5=md5(PAYLOAD))
    assert target.read_bytes() == PAYLOAD
    assert server.requests == [("data.bin", f"bytes={len(PAYLOAD)}-")]  # answered 416


def test_a_server_ignoring_range_restarts_cleanly(server: FileServer, tmp_path: Path) -> None:
    server.files["data.bin"] = PAYLOAD
    server.ignore_range = True
    (tmp_path / "data.bin.part").write_bytes(b"stale bytes from another version")
    target = download_file(f"{server.url}/data.bin", tmp_path / "data.bin", md5=md5(PAYLOAD))
    assert target.read_bytes() == PAYLOAD


def test_wrong_checksum_fails_and_leaves_nothing(server: FileServer, tmp_path: Path) -> None:
    server.files["data.bin"] = PAYLOAD
    with pytest.raises(FetchError, match="md5 checksum mismatch: expected 0{32}"):
        download_file(f"{server.url}/data.bin", tmp_path / "data.bin", md5="0" * 32)
    assert list(tmp_path.iterdir()) == []


def test_wrong_size_fails(server: FileServer, tmp_path: Path) -> None:
    server.files["data.bin"] = PAYLOAD
    with pytest.raises(FetchError, match=f"expected {len(PAYLOAD) + 1:,} bytes"):
        download_file(f"{server.url}/data.bin", tmp_path / "data.bin", size=len(PAYLOAD) + 1)
    assert not (tmp_path / "data.bin").exists()


def test_interrupted_beyond_retries_keeps_the_part(server: FileServer, tmp_path: Path) -> None:
    server.files["data.bin"] = PAYLOAD
    server.cut_always = True
    with pytest.raises(FetchError, match="run the same command again to resume"):
        download_file(f"{server.url}/data.bin", tmp_path / "data.bin", retries=1)
    part = tmp_path / "data.bin.part"
    kept = part.stat().st_size
    assert len(PAYLOAD) // 2 <= kept < len(PAYLOAD)
    assert not (tmp_path / "data.bin").exists()
    server.cut_always = False  # the network is back: the next run finishes the file
    target = download_file(f"{server.url}/data.bin", tmp_path / "data.bin", md5=md5(PAYLOAD))
    assert target.read_bytes() == PAYLOAD
    assert server.requests[-1] == ("data.bin", f"bytes={kept}-")


def test_http_error_names_the_status(server: FileServer, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="HTTP 404"):
        download_file(f"{server.url}/missing.bin", tmp_path / "missing.bin")


def test_fetch_amazon_from_a_mirror_then_offline_reuse(server: FileServer, tmp_path: Path) -> None:
    source = amazon_source()
    for remote in source.files:
        server.files[remote.name] = remote.name.encode() * 1000
    result = fetch(source, tmp_path / "raw", base_url=server.url)
    target = tmp_path / "raw" / "amazon" / "2014-electronics"
    assert result.prepare_dir == target
    assert sorted(p.name for p in target.iterdir()) == [
        "meta_Electronics.json.gz",
        "reviews_Electronics_5.json.gz",
    ]
    assert [p.name for p in result.downloaded] == [f.name for f in source.files]
    # a second run needs no network: the files are there
    again = fetch(source, tmp_path / "raw", base_url="http://127.0.0.1:9")
    assert again.downloaded == [] and len(again.already_present) == 2


def test_base_url_from_the_environment(
    server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = amazon_source("Musical_Instruments")
    for remote in source.files:
        server.files[remote.name] = b"x" * 10
    monkeypatch.setenv(BASE_URL_ENV, server.url)
    result = fetch(source, tmp_path)
    assert len(result.downloaded) == 2
    assert {name for name, _ in server.requests} == {
        "reviews_Musical_Instruments_5.json.gz",
        "meta_Musical_Instruments.json.gz",
    }


def test_offline_says_what_to_download_and_where(closed_port: int, tmp_path: Path) -> None:
    source = amazon_source()
    with pytest.raises(OfflineError) as caught:
        fetch(source, tmp_path / "raw", base_url=f"http://127.0.0.1:{closed_port}", retries=0)
    message = str(caught.value)
    target = tmp_path / "raw" / "amazon" / "2014-electronics"
    for remote in source.files:
        assert remote.url in message  # the owner's URL, not the unreachable mirror
        assert str(target / remote.name) in message
    assert "snap.stanford.edu" in message
    assert "offline" in message
    assert f"din prepare --dataset amazon --source {target}" in message
    assert not target.exists() or list(target.iterdir()) == []


@pytest.fixture
def din_fetch(monkeypatch: pytest.MonkeyPatch):
    """``din``'s real entry point with only the fetch command registered (others import torch)."""
    import din_model.cli._main as main
    from din_model.cli import fetch as fetch_command

    monkeypatch.setattr(main, "register_all", lambda sub, package: fetch_command.register(sub))
    return lambda argv: main.run(argv, ["din_model.cli"])


def test_cli_downloads_and_says_what_to_run_next(
    server: FileServer, tmp_path: Path, capsys: pytest.CaptureFixture, din_fetch
) -> None:
    for remote in amazon_source(edition="2018").files:
        server.files[remote.name] = b"{}\n"
    argv = ["fetch", "amazon", "--edition", "2018", "--dest", str(tmp_path)]
    assert din_fetch([*argv, "--base-url", server.url]) == 0
    out = capsys.readouterr().out
    folder = tmp_path / "amazon" / "2018-electronics"
    assert f"downloaded  {folder / 'Electronics_5.json.gz'}" in out
    assert f"next: din prepare --dataset amazon --source {folder}" in out


def test_offline_cli_prints_the_message_without_traceback(
    closed_port: int, tmp_path: Path, capsys: pytest.CaptureFixture, din_fetch
) -> None:
    argv = ["fetch", "movielens", "--version", "ml-100k", "--dest", str(tmp_path)]
    argv += ["--base-url", f"http://127.0.0.1:{closed_port}", "--no-progress"]
    assert din_fetch(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "din fetch: error:" in err
    assert "https://files.grouplens.org/datasets/movielens/ml-100k.zip" in err
    assert "0e33842e24a9c977be4e0107933c0723" in err
    assert str(tmp_path / "movielens" / "ml-100k.zip") in err


def test_movielens_archive_is_checked_against_the_published_md5(
    server: FileServer, tmp_path: Path
) -> None:
    server.files["ml-100k.zip"] = b"not the GroupLens archive"
    with pytest.raises(FetchError, match="0e33842e24a9c977be4e0107933c0723"):
        fetch(movielens_source("ml-100k"), tmp_path, base_url=server.url)
    assert not (tmp_path / "movielens" / "ml-100k.zip").exists()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    return buffer.getvalue()


def test_archives_are_extracted_once(server: FileServer, tmp_path: Path) -> None:
    archive = _zip({"ml-test/u.data": b"1\t2\t5\t881250949\n", "ml-test/README": b"readme\n"})
    server.files["ml-test.zip"] = archive
    source = Source(
        dataset="movielens",
        variant="ml-test",
        page="test",
        files=(RemoteFile("unused", "ml-test.zip", md5=md5(archive), extract=True),),
        prepare_subdir="ml-test",
    )
    result = fetch(source, tmp_path, base_url=server.url)
    folder = tmp_path / "movielens" / "ml-test"
    assert result.extracted == [folder] and result.prepare_dir == folder
    assert (folder / "u.data").read_bytes() == b"1\t2\t5\t881250949\n"
    again = fetch(source, tmp_path, base_url=server.url)
    assert again.extracted == [] and len(server.requests) == 1


def test_archive_members_cannot_escape(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    archive.write_bytes(_zip({"../outside.txt": b"no"}))
    with pytest.raises(FetchError, match="outside"):
        extract_zip(archive, tmp_path / "dest")
    assert not (tmp_path / "outside.txt").exists()


def test_taobao_needs_a_login_and_says_where_files_go(tmp_path: Path) -> None:
    source = get_source("taobao", variant=None)
    with pytest.raises(FetchError) as caught:
        fetch(source, tmp_path)
    message = str(caught.value)
    assert "tianchi.aliyun.com/dataset/649" in message and "login" in message
    assert str(tmp_path / "taobao" / "user-behavior" / "UserBehavior.csv") in message
    placed = tmp_path / "taobao" / "user-behavior" / "UserBehavior.csv"
    placed.parent.mkdir(parents=True)
    placed.write_text("1,2,3,pv,1511544070\n")
    assert fetch(source, tmp_path).already_present == [placed]


def test_unresolvable_host_is_offline(tmp_path: Path) -> None:
    with pytest.raises(OfflineError, match="cannot reach the server"):
        download_file("http://din-fetch-test.invalid/x.bin", tmp_path / "x.bin", retries=0)


def test_silent_server_times_out_as_offline(tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/x.bin"
        with pytest.raises(OfflineError, match="timed out"):
            download_file(url, tmp_path / "x.bin", timeout=0.3, retries=0)


def test_a_wrong_file_placed_by_hand_is_reported_not_overwritten(tmp_path: Path) -> None:
    placed = tmp_path / "movielens" / "ml-100k.zip"
    placed.parent.mkdir(parents=True)
    placed.write_bytes(b"a damaged copy")
    with pytest.raises(FetchError, match="already in place; delete or replace it"):
        fetch(movielens_source("ml-100k"), tmp_path, base_url="http://127.0.0.1:9")
    assert placed.read_bytes() == b"a damaged copy"


def test_a_broken_archive_is_a_readable_error(tmp_path: Path) -> None:
    archive = tmp_path / "broken.zip"
    archive.write_bytes(b"PK not really")
    with pytest.raises(FetchError, match="not a readable zip archive"):
        extract_zip(archive, tmp_path / "dest")
