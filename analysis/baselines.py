"""Fetch the published score files at the pinned commit and verify their sha256.

    python -m analysis.baselines download [--to DIR] [--source URL_OR_DIR]

A file is saved only after its hash matches the manifest (analysis.reference.MANIFEST); files
already in DIR with the right hash are kept, so the command can be re-run after an interruption.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from analysis.reference import BASE_URL, COMMIT, MANIFEST, REPOSITORY, url

ENV_VAR = "DREAMER_BASELINES"


def default_dir() -> Path:
    """Where the published files are kept: $DREAMER_BASELINES when set, else results/baselines."""
    return Path(os.environ.get(ENV_VAR) or "results/baselines")


def locate(root: Path = Path("."), fallbacks=(), environ=os.environ) -> Path | None:
    """The first folder that holds the published files: $DREAMER_BASELINES alone when set, else
    results/baselines under `root`, else each of `fallbacks`; None when none does."""
    candidates = [Path(environ[ENV_VAR])] if environ.get(ENV_VAR) else [root / "results" / "baselines", *fallbacks]
    return next((c for c in candidates if (c / next(iter(MANIFEST))).exists()), None)


class DownloadError(RuntimeError):
    """A file could not be fetched or did not match its published hash."""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(source: str, dest: Path, expected: str) -> None:
    """Save `source` (any URL urllib opens, file:// included) as `dest` if its sha256 is `expected`.

    The bytes go to a temporary file first, so a failed or corrupt download never replaces `dest`.
    """
    part = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(source, timeout=60) as response, open(part, "wb") as f:
            while block := response.read(1 << 20):
                f.write(block)
    except (urllib.error.URLError, OSError) as error:
        part.unlink(missing_ok=True)
        raise DownloadError(f"cannot fetch {source}: {getattr(error, 'reason', error)}") from None
    actual = sha256(part)
    if actual != expected:
        part.unlink()
        raise DownloadError(f"{source} has sha256 {actual}, expected {expected}; not saved")
    os.replace(part, dest)


def download(to: Path, source: str = BASE_URL, manifest: dict[str, str] = MANIFEST) -> list[Path]:
    """Fetch each file of `manifest` (name -> sha256) from `source` into `to`; returns the paths."""
    to.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, expected in tqdm(manifest.items(), desc="published scores", unit="file"):
        dest = to / name
        if not (dest.exists() and sha256(dest) == expected):
            fetch(url(name, source), dest, expected)
        paths.append(dest)
    return paths


def _source(text: str) -> str:
    """A local directory becomes a file:// URL so mirrors on disk go through the same checks."""
    return Path(text).resolve().as_uri() if Path(text).is_dir() else text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.baselines",
        description=f"Published DreamerV3 score files from {REPOSITORY} at commit {COMMIT}, "
        "checked against their sha256.")
    commands = parser.add_subparsers(dest="command", required=True)
    down = commands.add_parser("download", help="fetch and verify the published score files")
    down.add_argument("--to", type=Path, default=default_dir(),
                      help=f"where to save them (default: ${ENV_VAR} if set, else results/baselines; "
                      "the default --baselines of analysis.report)")
    down.add_argument("--source", type=_source, default=BASE_URL,
                      help="base URL, or a local directory holding copies (default: the "
                      f"repository's raw files at the pinned commit, {BASE_URL})")
    args = parser.parse_args(argv)
    try:
        paths = download(args.to, args.source)
    except DownloadError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{len(paths)} published score files verified in {args.to}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
