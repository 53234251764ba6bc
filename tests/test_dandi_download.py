"""DANDI download and local-copy manifests. Never touches the network: every URL is on loopback."""

import contextlib
import http.server
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from latentdyn.data import dandi_download
from latentdyn.data.dandi_download import (DandiUnavailableError, download_dandiset, read_manifest,
                                           register_local_dandiset)
from latentdyn.errors import InputError

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "download_dandi.py"
DANDISET, VERSION = "000128", "0.220113.0400"
CLOSED_PORT_URL = "http://127.0.0.1:9/api"  # discard port on loopback: nothing listens, refused at once
NWB_FILES = {
    "sub-Jenkins/sub-Jenkins_ses-full_desc-train_behavior+ecephys.nwb": b"train" * 10,
    "sub-Jenkins/sub-Jenkins_ses-full_desc-test_ecephys.nwb": b"test" * 7,
}


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Refuse any connection or name lookup beyond loopback, so no test can reach DANDI by accident."""
    loopback = ("127.0.0.1", "::1", "localhost")
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(self, address):
        if isinstance(address, tuple) and address[0] not in loopback:
            raise OSError(f"network disabled in tests: {address}")
        return real_connect(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if host not in loopback:
            raise OSError(f"network disabled in tests: {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def make_dandiset_copy(root, files=NWB_FILES):
    for relative, content in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(content)
    return root


@contextlib.contextmanager
def loopback_api(status):
    """A local HTTP server answering every GET with `status`; yields its API base URL."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/api"
    finally:
        server.shutdown()
        server.server_close()


def test_unreachable_api_fails_fast_with_one_line(tmp_path):
    manifest = tmp_path / "manifest.json"
    started = time.monotonic()
    with pytest.raises(DandiUnavailableError) as caught:
        download_dandiset(DANDISET, VERSION, tmp_path / "dandi", manifest, api_url=CLOSED_PORT_URL,
                          local_dir_key="datasets.mc_maze.local_dir")
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert "\n" not in message
    for part in ("cannot reach the DANDI API at http://127.0.0.1:9/api",
                 f"dandi download -o DIR --existing overwrite-different DANDI:{DANDISET}/{VERSION}",
                 "datasets.mc_maze.local_dir"):
        assert part in message
    assert list(tmp_path.iterdir()) == []


def test_silent_api_is_abandoned_at_the_deadline(tmp_path):
    with socket.socket() as listener:  # accepts connections into its backlog, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        started = time.monotonic()
        with pytest.raises(DandiUnavailableError, match="cannot reach the DANDI API"):
            download_dandiset(DANDISET, VERSION, tmp_path / "dandi", tmp_path / "manifest.json",
                              api_url=f"http://127.0.0.1:{listener.getsockname()[1]}/api",
                              probe_timeout_s=0.5)
        assert time.monotonic() - started < 3
    assert list(tmp_path.iterdir()) == []


def test_unknown_version_is_reported_as_such(tmp_path):
    with loopback_api(404) as api_url, pytest.raises(DandiUnavailableError, match="has no dandiset"):
        download_dandiset(DANDISET, VERSION, tmp_path / "dandi", tmp_path / "manifest.json",
                          api_url=api_url)
    assert list(tmp_path.iterdir()) == []


def test_download_writes_manifest_of_what_dandi_fetched(tmp_path, monkeypatch):
    import dandi.download

    calls = []

    def fake_download(url, output_dir, *, existing):
        calls.append((url, existing))
        make_dandiset_copy(Path(output_dir) / DANDISET)

    monkeypatch.setattr(dandi.download, "download", fake_download)
    with loopback_api(200) as api_url:
        manifest = download_dandiset(DANDISET, VERSION, tmp_path / "dandi", tmp_path / "manifest.json",
                                     api_url=api_url)
    assert calls == [(f"{api_url}/dandisets/{DANDISET}/versions/{VERSION}/",
                      dandi.download.DownloadExisting.OVERWRITE_DIFFERENT)]
    assert manifest == json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["root"] == str((tmp_path / "dandi" / DANDISET).resolve())
    assert {f["path"]: f["size"] for f in manifest["files"]} == {k: len(v) for k, v in NWB_FILES.items()}


def test_download_broken_midway_leaves_no_manifest(tmp_path, monkeypatch):
    import dandi.download
    import requests

    def broken_download(url, output_dir, *, existing):
        raise requests.ConnectionError("Connection reset by peer\nwhile reading")

    monkeypatch.setattr(dandi.download, "download", broken_download)
    with loopback_api(200) as api_url, pytest.raises(DandiUnavailableError) as caught:
        download_dandiset(DANDISET, VERSION, tmp_path / "dandi", tmp_path / "manifest.json",
                          api_url=api_url)
    assert "Connection reset by peer while reading" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "manifest.json").exists()


def test_local_copy_gets_the_same_manifest(tmp_path):
    root = make_dandiset_copy(tmp_path / "mine")
    manifest = register_local_dandiset(root, tmp_path / "manifest.json", dandiset_id=DANDISET,
                                       version=VERSION)
    assert manifest["format"] == dandi_download.MANIFEST_FORMAT
    assert (manifest["dandiset"], manifest["version"], manifest["source"]) == (DANDISET, VERSION, "local")
    assert [f["path"] for f in manifest["files"]] == sorted(NWB_FILES)
    assert read_manifest(tmp_path / "manifest.json") == manifest

    (root / sorted(NWB_FILES)[0]).write_bytes(b"truncated")
    with pytest.raises(InputError, match="changed size"):
        read_manifest(tmp_path / "manifest.json")


@pytest.mark.parametrize("files, field", [
    ({"sub-Jenkins/sub-Jenkins_ses-full_desc-train_behavior+ecephys.nwb": b"x"}, "_desc-test_"),
    ({"sub-Jenkins/sub-Jenkins_ses-full_desc-train_behavior+ecephys.nwb": b"",
      "sub-Jenkins/sub-Jenkins_ses-full_desc-test_ecephys.nwb": b"x"}, "_desc-train_"),
    ({"sub-Jenkins_ses-full_desc-train_behavior+ecephys.nwb": b"x"}, "_desc-train_"),
])
def test_incomplete_local_copy_is_refused(tmp_path, files, field):
    root = make_dandiset_copy(tmp_path / "mine", files)
    with pytest.raises(InputError, match=field):
        register_local_dandiset(root, tmp_path / "manifest.json", dandiset_id=DANDISET, version=VERSION)
    assert not (tmp_path / "manifest.json").exists()


def test_missing_local_dir_is_refused(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        register_local_dandiset(tmp_path / "absent", tmp_path / "manifest.json", dandiset_id=DANDISET,
                                version=VERSION)


def run_cli(*args):
    started = time.monotonic()
    result = subprocess.run([sys.executable, str(SCRIPT), "--dandiset", DANDISET, "--version", VERSION,
                             *args], capture_output=True, text=True, timeout=60)
    return result, time.monotonic() - started


def test_cli_offline_prints_one_line_and_fails(tmp_path):
    result, seconds = run_cli("--manifest", str(tmp_path / "m.json"), "--out-dir", str(tmp_path / "dandi"),
                              "--api-url", CLOSED_PORT_URL, "--local-dir-key", "nlb_sources.mc_maze.local_dir")
    assert result.returncode == 1 and seconds < 30
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("error: cannot reach the DANDI API")
    assert "nlb_sources.mc_maze.local_dir" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_cli_prefers_local_dir(tmp_path):
    root = make_dandiset_copy(tmp_path / "mine")
    result, _ = run_cli("--manifest", str(tmp_path / "m.json"), "--out-dir", str(tmp_path / "dandi"),
                        "--local-dir", str(root), "--api-url", CLOSED_PORT_URL)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "m.json").read_text())["root"] == str(root.resolve())


def test_cli_bad_local_dir_exits_2(tmp_path):
    result, _ = run_cli("--manifest", str(tmp_path / "m.json"), "--out-dir", str(tmp_path / "dandi"),
                        "--local-dir", str(tmp_path / "absent"))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "m.json").exists()
