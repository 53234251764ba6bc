"""Fetch one Neural Latents Benchmark dandiset from DANDI, or adopt a copy already on disk.

Either way the result is a manifest JSON (the rule's output) listing the NWB files and their sizes.
It is written last and atomically, so a crashed, refused or partial download never looks complete:
dandi itself writes each file under `<file>.dandidownload/` and renames it only once it is complete
and checksum-verified, and resumes from there on the next run.

Without network the dandi client retries for about a minute; instead the API is probed first with a
short, hard deadline and any failure becomes one line saying how to supply the files by hand.
"""

import json
import threading
import urllib.error
import urllib.request
from pathlib import Path

from latentdyn.errors import InputError
from latentdyn.io import write_json

DANDI_API_URL = "https://api.dandiarchive.org/api"
LOCAL_DIR_KEY = "nlb_sources.<dataset>.local_dir"  # the config key that points at files on disk
MANIFEST_FORMAT = "latentdyn-dandi-manifest"
MANIFEST_VERSION = 1
# every NLB dandiset holds a training file and a test file per subject
REQUIRED_NWB_PATTERNS = ("sub-*/*_desc-train_*.nwb", "sub-*/*_desc-test_*.nwb")


class DandiUnavailableError(RuntimeError):
    """DANDI could not be reached or could not deliver; the message is one line with the manual route."""


def download_dandiset(dandiset_id, version, download_dir, manifest_path, *, api_url=DANDI_API_URL,
                      local_dir_key=LOCAL_DIR_KEY, probe_timeout_s=10.0):
    """Download `dandiset_id` at `version` into `download_dir/<dandiset_id>/` and write the manifest.

    Files already present with the right checksum are kept; partial downloads resume.
    `local_dir_key` is the config key named in the error message for supplying the files by hand.
    """
    api_url = api_url.rstrip("/")
    version_url = f"{api_url}/dandisets/{dandiset_id}/versions/{version}/"

    def unavailable(problem):
        return DandiUnavailableError(
            f"{problem}; to supply the files by hand, run `dandi download -o DIR --existing "
            f"overwrite-different DANDI:{dandiset_id}/{version}` where DANDI is reachable and set the "
            f"config key `{local_dir_key}` to the resulting DIR/{dandiset_id}")

    status = _probe(version_url, probe_timeout_s)
    if status == 404:
        raise unavailable(f"DANDI at {api_url} has no dandiset {dandiset_id} version {version}")
    if not isinstance(status, int) or status >= 400:
        reason = f"HTTP {status}" if isinstance(status, int) else status
        raise unavailable(f"cannot reach the DANDI API at {api_url} ({reason}) to download "
                          f"dandiset {dandiset_id} version {version}")
    from dandi.download import DownloadExisting, download  # slow import: only once DANDI answers

    try:
        # OVERWRITE_DIFFERENT skips a file only when its size and checksum match the archive's
        Path(download_dir).mkdir(parents=True, exist_ok=True)
        download(version_url, download_dir, existing=DownloadExisting.OVERWRITE_DIFFERENT)
    except (OSError, RuntimeError) as error:  # requests' exceptions are OSErrors
        reason = " ".join(str(error).split())
        raise unavailable(f"downloading dandiset {dandiset_id} version {version} from {api_url} "
                          f"failed ({reason})") from error
    return _write_manifest(Path(download_dir) / dandiset_id, manifest_path, dandiset_id, version,
                           source=version_url)


def register_local_dandiset(local_dir, manifest_path, *, dandiset_id, version):
    """Check that `local_dir` holds the dandiset's NWB files (as `dandi download` lays them out) and
    write the same manifest a download would, so later rules cannot tell the two routes apart."""
    return _write_manifest(Path(local_dir), manifest_path, dandiset_id, version, source="local")


def read_manifest(manifest_path):
    """Load a manifest and check its files are still there with the recorded sizes."""
    manifest_path = Path(manifest_path)
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as error:
        raise InputError(manifest_path, "<file>", f"cannot read manifest ({error})") from error
    if manifest.get("format") != MANIFEST_FORMAT:
        raise InputError(manifest_path, "format", f"not a {MANIFEST_FORMAT} file")
    root = Path(manifest["root"])
    for entry in manifest["files"]:
        path = root / entry["path"]
        if not path.is_file() or path.stat().st_size != entry["size"]:
            raise InputError(manifest_path, "files", f"{path} is missing or has changed size")
    return manifest


def manifest_nwb_paths(manifest_path):
    """The NWB files a manifest lists, checked to be present and unchanged."""
    manifest = read_manifest(manifest_path)
    root = Path(manifest["root"])
    return [root / entry["path"] for entry in manifest["files"] if entry["path"].endswith(".nwb")]


def _write_manifest(root, manifest_path, dandiset_id, version, source):
    root = root.resolve()
    if not root.is_dir():
        raise InputError(root, "<directory>", f"dandiset {dandiset_id} directory does not exist")
    for pattern in REQUIRED_NWB_PATTERNS:
        if not any(path.stat().st_size > 0 for path in root.glob(pattern)):
            raise InputError(root, pattern, f"no non-empty NWB file of dandiset {dandiset_id} "
                             f"version {version} matches (expected the layout `dandi download` makes)")
    files = sorted(root.glob("sub-*/*.nwb"))
    manifest = {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_VERSION,
        "dandiset": dandiset_id,
        "version": version,
        "source": source,
        "root": str(root),
        "files": [{"path": path.relative_to(root).as_posix(), "size": path.stat().st_size}
                  for path in files],
    }
    write_json(manifest_path, manifest)
    return manifest


def _probe(url, timeout_s):
    """GET `url`: its HTTP status, or a short reason it failed. Name lookups ignore socket timeouts,
    so the request runs in a daemon thread that is abandoned at the deadline."""
    outcome = {}

    def request():
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:
                outcome["result"] = response.status
        except urllib.error.HTTPError as error:
            outcome["result"] = error.code
        except (OSError, ValueError) as error:
            reason = getattr(error, "reason", error)
            outcome["result"] = " ".join(str(reason).split()) or type(error).__name__

    thread = threading.Thread(target=request, name="dandi-probe", daemon=True)
    thread.start()
    thread.join(timeout_s)
    return outcome.get("result", f"no answer within {timeout_s:g} s")
