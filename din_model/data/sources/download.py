"""Download the owners' data files with resume, checks and atomic renames (stdlib only).

WHY each step:

- *resume*: the Amazon and MovieLens 20M files are hundreds of MB; a dropped
  connection should not cost the part already received. Bytes go to
  ``<file>.part``; a later attempt (the automatic retries, or running the
  command again) asks for the rest with an HTTP ``Range`` request and appends.
  A server that ignores ``Range`` answers 200 with the whole file: the part is
  then truncated and the download starts cleanly from byte 0.
- *checks*: a truncated or altered file would fail much later, inside
  ``din prepare``, with a confusing parse error. A file is checked against its
  published MD5/SHA-256 where the owner publishes one, else against the size
  the server announced, before it is renamed into place.
- *atomic rename*: ``<file>`` only ever exists complete and checked; archives
  are extracted into a temporary folder that is renamed when done.
- *offline*: a DNS failure, a refused connection or a timeout ends in a
  :class:`OfflineError` that lists each file's URL and the exact path to put
  it at by hand; a file already in place is checked and used without network.

``base_url`` (option ``--base-url`` or the ``DIN_FETCH_BASE_URL`` variable)
fetches every file from ``<base_url>/<file name>`` instead of the owner, for
mirrors and for the tests' local server.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import shutil
import ssl
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from din_model.data.sources.catalog import DEFAULT_DEST, RemoteFile, Source
from din_model.errors import DinError
from din_model.io.atomic import atomic_output_dir

log = logging.getLogger(__name__)

BASE_URL_ENV = "DIN_FETCH_BASE_URL"
USER_AGENT = "din-pipeline-fetch/1.0 (+https://github.com/; research use)"
BLOCK = 1 << 20
LOG_EVERY = 64 << 20  # bytes between log lines when no progress bar is shown


class FetchError(DinError):
    """A download that could not finish: bad answer, wrong checksum, interrupted transfer."""


class OfflineError(FetchError):
    """The owner's server cannot be reached; the message says how to place the files by hand."""


@dataclass
class FetchResult:
    """What ``fetch`` did: the folder to give ``din prepare`` and each file's fate."""

    source: Source
    target_dir: Path
    prepare_dir: Path
    downloaded: list[Path] = field(default_factory=list)
    already_present: list[Path] = field(default_factory=list)
    extracted: list[Path] = field(default_factory=list)


# --------------------------------------------------------------------------------------
# one file


def _digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm, usedforsecurity=False)
    with path.open("rb") as handle:
        while block := handle.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


def verify_file(
    path: Path,
    *,
    size: int | None = None,
    md5: str | None = None,
    sha256: str | None = None,
    what: str | None = None,
) -> None:
    """Raise :class:`FetchError` unless ``path`` has the given size and checksums.

    ``what`` names the file in the message (default: ``path``).
    """
    what = what or str(path)
    published = ", ".join(
        f"{name} {value}" for name, value in (("md5", md5), ("sha256", sha256)) if value
    )
    actual = path.stat().st_size
    if size is not None and actual != size:
        raise FetchError(
            f"{what}: expected {size:,} bytes{f' ({published})' if published else ''}, "
            f"got {actual:,}: an incomplete or altered download"
        )
    for algorithm, expected in (("md5", md5), ("sha256", sha256)):
        if expected is not None:
            got = _digest(path, algorithm)
            if got != expected.lower():
                raise FetchError(
                    f"{what}: {algorithm} checksum mismatch: expected {expected}, got {got} "
                    "(a corrupted download, or the owner changed the file)"
                )


def _is_offline(error: BaseException) -> bool:
    """A DNS failure, refused or reset connection, unreachable network or timeout.

    These are all ``OSError`` subclasses; HTTP errors (the server answered) and
    TLS errors (it answered, but badly) are not "offline".
    """
    if isinstance(error, urllib.error.HTTPError):
        return False
    reason = error.reason if isinstance(error, urllib.error.URLError) else error
    return isinstance(reason, OSError) and not isinstance(reason, ssl.SSLError)


def _content_range_total(header: str | None) -> tuple[int | None, int | None]:
    """(start, total) of a ``Content-Range: bytes start-end/total`` header."""
    match = re.match(r"bytes\s+(\d+)-\d+/(\d+|\*)", header or "")
    if match:
        total = None if match.group(2) == "*" else int(match.group(2))
        return int(match.group(1)), total
    match = re.match(r"bytes\s+\*/(\d+)", header or "")
    if match:
        return None, int(match.group(1))
    return None, None


def _open(url: str, offset: int, timeout: float) -> http.client.HTTPResponse:
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def _transfer(url: str, part: Path, timeout: float, progress: bool, label: str) -> int | None:
    """One attempt: continue ``part`` from its current size; return the total size if known.

    Raises the network errors it meets; what was received stays in ``part``.
    """
    from tqdm.auto import tqdm

    offset = part.stat().st_size if part.exists() else 0
    try:
        response = _open(url, offset, timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # nothing left to send: the part may be complete
            _, total = _content_range_total(error.headers.get("Content-Range"))
            if total is not None and total == offset:
                return total
            log.warning("%s: server refused to resume at byte %d; starting again", label, offset)
            part.unlink()
            return _transfer(url, part, timeout, progress, label)
        raise
    with response:
        length = response.headers.get("Content-Length")
        if offset and response.status == 206:
            start, total = _content_range_total(response.headers.get("Content-Range"))
            if start != offset:
                raise FetchError(f"{url}: asked for bytes from {offset}, server sent from {start}")
            mode = "ab"
            if total is None and length is not None:
                total = offset + int(length)
            log.info("%s: resuming at byte %d", label, offset)
        else:
            if offset:
                log.info("%s: server ignored the Range request; downloading from the start", label)
            offset = 0
            mode = "wb"
            total = int(length) if length is not None else None
        with (
            part.open(mode) as handle,
            tqdm(
                total=total,
                initial=offset,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=label,
                disable=not progress,
                leave=False,
            ) as bar,
        ):
            done = offset
            while block := response.read(BLOCK):
                handle.write(block)
                bar.update(len(block))
                done += len(block)
                if not progress and done % LOG_EVERY < len(block):  # no bar: a log line
                    shown = f" of {total:,}" if total else ""
                    log.info("%s: %s%s bytes", label, f"{done:,}", shown)
    received = part.stat().st_size
    if total is not None and received < total:
        raise http.client.IncompleteRead(b"", total - received)
    return total


def download_file(
    url: str,
    target: str | Path,
    *,
    size: int | None = None,
    md5: str | None = None,
    sha256: str | None = None,
    timeout: float = 30.0,
    retries: int = 3,
    progress: bool = False,
) -> Path:
    """Download ``url`` to ``target`` through ``target.part``, resuming and checking.

    The server's announced size is checked when no ``size`` is given. A
    checksum mismatch removes the part (starting over is the only cure) and
    raises :class:`FetchError`; a transfer still incomplete after ``retries``
    resumed attempts raises :class:`FetchError` and keeps the part for the
    next run; an unreachable server raises :class:`OfflineError`.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    label = target.name
    total: int | None = None
    last_error: BaseException | None = None
    for attempt in range(retries + 1):
        before = part.stat().st_size if part.exists() else 0
        try:
            total = _transfer(url, part, timeout, progress, label)
            last_error = None
            break
        except urllib.error.HTTPError as error:
            raise FetchError(
                f"{url}: the server answered HTTP {error.code} {error.reason}"
            ) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            received = part.stat().st_size if part.exists() else 0
            if received <= before and _is_offline(error):
                raise OfflineError(f"{url}: cannot reach the server ({_reason(error)})") from None
            if isinstance(error, urllib.error.URLError) and not _is_offline(error):
                raise FetchError(f"{url}: {_reason(error)}") from None
            last_error = error
            if attempt < retries:
                log.warning(
                    "%s: transfer interrupted after %s bytes (%s); resuming (%d/%d)",
                    label,
                    f"{received:,}",
                    _reason(error),
                    attempt + 1,
                    retries,
                )
                time.sleep(min(0.2 * 2.0**attempt, 5.0))
    if last_error is not None:
        kept = part.stat().st_size if part.exists() else 0
        raise FetchError(
            f"{url}: transfer interrupted ({_reason(last_error)}); {kept:,} bytes "
            f"kept in {part}: run the same command again to resume"
        )
    expected_size = size if size is not None else total
    try:
        verify_file(part, size=expected_size, md5=md5, sha256=sha256, what=f"{url} -> {target}")
    except FetchError as error:
        part.unlink(missing_ok=True)  # a wrong file cannot be resumed: the next run starts over
        raise FetchError(f"{error}; the download was removed") from None
    os.replace(part, target)
    log.info("%s: downloaded %s bytes", label, f"{target.stat().st_size:,}")
    return target


def _reason(error: BaseException) -> str:
    reason = error.reason if isinstance(error, urllib.error.URLError) else error
    text = str(reason) or type(reason).__name__
    return f"{type(reason).__name__}: {text}" if type(reason).__name__ not in text else text


# --------------------------------------------------------------------------------------
# archives


def extract_zip(archive: Path, dest: Path) -> Path:
    """Extract ``archive`` into ``dest`` atomically; return the folder it created.

    An archive with one top folder (``ml-1m/...``) becomes ``dest/ml-1m``;
    otherwise ``dest/<archive stem>``. Members that would land outside the
    folder (absolute paths, ``..``) are refused.
    """
    try:
        bundle = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as error:
        raise FetchError(f"{archive}: not a readable zip archive ({error})") from None
    with bundle:
        names = [n for n in bundle.namelist() if n and not n.startswith("__MACOSX/")]
        for name in names:
            parts = PurePosixPath(name).parts
            if name.startswith(("/", "\\")) or ".." in parts or ":" in name:
                raise FetchError(f"{archive}: member {name!r} would be written outside {dest}")
        tops = {n.split("/", 1)[0] for n in names}
        single = len(tops) == 1 and all("/" in n for n in names)
        top = next(iter(tops)) if single else archive.stem
        final = dest / top
        with atomic_output_dir(final) as tmp:
            for name in names:
                relative = name.split("/", 1)[1] if single else name
                if not relative:
                    continue
                out = (tmp / relative).resolve()
                if not out.is_relative_to(tmp.resolve()):
                    raise FetchError(f"{archive}: member {name!r} would be written outside {final}")
                if name.endswith("/"):
                    out.mkdir(parents=True, exist_ok=True)
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                with bundle.open(name) as src, out.open("wb") as dst:
                    shutil.copyfileobj(src, dst, BLOCK)
    return final


# --------------------------------------------------------------------------------------
# a whole source


def manual_instructions(source: Source, dest_root: str | Path = DEFAULT_DEST) -> str:
    """Which files to get from where, and exactly where to put them."""
    target = source.target_dir(dest_root)
    lines = []
    if source.login_required:
        lines.append(source.manual + ", and put the files exactly here:")
        lines += [f"  {target / f.name}" for f in source.files]
    else:
        lines.append("Download these files by hand and put them exactly here:")
        for remote in source.files:
            check = f" (md5 {remote.md5})" if remote.md5 else ""
            lines.append(f"  {remote.url}{check}\n    -> {target / remote.name}")
        lines.append(f"Owner's page: {source.page}")
        lines += [f"Mirror: {mirror}" for mirror in source.mirrors]
        extract = " and extracts the archive" if any(f.extract for f in source.files) else ""
        lines.append(f"`din fetch {source.dataset}` then checks them without network{extract}.")
    lines.append(
        f"Then: din prepare --dataset {source.dataset} --source {source.prepare_dir(dest_root)}"
    )
    return "\n".join(lines)


def _with_base_url(remote: RemoteFile, base_url: str | None) -> RemoteFile:
    if not base_url:
        return remote
    return replace(remote, url=f"{base_url.rstrip('/')}/{remote.name}")


def fetch(
    source: Source,
    dest_root: str | Path = DEFAULT_DEST,
    *,
    base_url: str | None = None,
    timeout: float = 30.0,
    retries: int = 3,
    progress: bool = False,
) -> FetchResult:
    """Bring every file of ``source`` into ``dest_root/<dataset>/<folder>``, checked.

    Files already in place are checked and kept; archives are extracted once.
    ``base_url`` defaults to ``$DIN_FETCH_BASE_URL``.
    """
    base_url = base_url if base_url is not None else os.environ.get(BASE_URL_ENV) or None
    target_dir = source.target_dir(dest_root)
    result = FetchResult(source, target_dir, source.prepare_dir(dest_root))
    if source.login_required:
        missing = [f for f in source.files if not (target_dir / f.name).is_file()]
        if missing:
            raise FetchError(manual_instructions(source, dest_root))
        result.already_present = [target_dir / f.name for f in source.files]
        return result
    for remote in source.files:
        remote = _with_base_url(remote, base_url)
        target = target_dir / remote.name
        if target.is_file():  # placed by hand or by an earlier run: check, never overwrite
            try:
                verify_file(target, size=remote.size, md5=remote.md5, sha256=remote.sha256)
            except FetchError as error:
                raise FetchError(
                    f"{error}. It was already in place; delete or replace it, then run again"
                ) from None
            result.already_present.append(target)
            log.info("%s: already present and checked", target)
        else:
            try:
                download_file(
                    remote.url,
                    target,
                    size=remote.size,
                    md5=remote.md5,
                    sha256=remote.sha256,
                    timeout=timeout,
                    retries=retries,
                    progress=progress,
                )
            except OfflineError as error:
                raise OfflineError(
                    f"{error}\nThis machine looks offline (or the server is down).\n"
                    + manual_instructions(source, dest_root)
                ) from None
            result.downloaded.append(target)
        if remote.extract:
            folder = target_dir / source.prepare_subdir if source.prepare_subdir else None
            if folder is None or not folder.is_dir():
                result.extracted.append(extract_zip(target, target_dir))
    return result
