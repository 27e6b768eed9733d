"""Resumable, atomic downloads with a progress bar, and archive extraction.

A download goes to ``<dest>.part``; an interrupted one resumes with an HTTP Range request
(or restarts if the server ignores it), and only a complete file is renamed to ``dest``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from tqdm.auto import tqdm

CHUNK = 1 << 20


class DownloadError(RuntimeError):
    pass


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def download_file(url: str, dest: str | Path, *, sha256: str | None = None, progress: bool = True, timeout: float = 60) -> Path:
    """Fetch ``url`` to ``dest`` atomically, resuming a previous partial download."""
    dest = Path(dest)
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    total: int | None = None
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if have and response.status != 206:  # the server ignored Range: start again
                have = 0
            length = response.headers.get("Content-Length")
            total = have + int(length) if length is not None else None
            with (
                open(part, "ab" if have else "wb") as f,
                tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=dest.name, disable=not progress) as bar,
            ):
                for block in iter(lambda: response.read(CHUNK), b""):
                    f.write(block)
                    bar.update(len(block))
                f.flush()
                os.fsync(f.fileno())
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # range not satisfiable: the partial file is already complete
            pass
        else:
            raise DownloadError(f"could not download {url}: HTTP {e.code} {e.reason}") from e
    except (urllib.error.URLError, OSError) as e:
        raise DownloadError(
            f"could not download {url}: {e}. Check the internet connection; a partial download is kept in {part} "
            "and resumes on the next try."
        ) from e
    if total is not None and part.stat().st_size != total:
        raise DownloadError(f"download of {url} ended early ({part.stat().st_size} of {total} bytes); run again to resume")
    if sha256 is not None and (digest := sha256_of(part)) != sha256:
        part.unlink()
        raise DownloadError(f"checksum mismatch for {url}: expected {sha256}, got {digest}; the file was removed")
    os.replace(part, dest)
    return dest


def extract_zip_subdir(archive: str | Path, member_prefix: str, dest: str | Path) -> Path:
    """Extract the members under ``member_prefix`` of a zip into ``dest`` atomically (temp dir + rename)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    prefix = member_prefix.rstrip("/") + "/"
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}-extract-") as tmp:
        tmp_dest = Path(tmp) / "out"
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.infolist() if m.filename.startswith(prefix) and not m.is_dir()]
            if not members:
                raise DownloadError(f"{archive} has no folder {member_prefix!r}")
            for m in tqdm(members, desc=f"extract {dest.name}", unit="file", disable=len(members) < 50):
                rel = Path(m.filename[len(prefix) :])
                if rel.is_absolute() or ".." in rel.parts:  # refuse path traversal from a hostile archive
                    raise DownloadError(f"unsafe path in archive: {m.filename}")
                target = tmp_dest / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(m) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp_dest, dest)
    return dest
