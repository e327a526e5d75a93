"""The checksummed download path, served from a local HTTP server (loopback only)."""

import functools
import http.server
import shutil
import threading

import pytest

from smfusion.errors import DataError
from smfusion.io import registry


@pytest.fixture
def served(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def _subset(monkeypatch, conus_root, names, base):
    full = registry.load_registry()
    monkeypatch.setattr(registry, "load_registry", lambda: {n: full[n] for n in names})
    monkeypatch.setattr(registry, "url_for", lambda n: base + n)


@pytest.mark.realdata
def test_fetch_verifies_checksums(conus_root, served, tmp_path, monkeypatch):
    www, base = served
    names = ["CONUSv4f1/crd.csv", "Statistics/SMAP_AM_stat.csv", "CONUSv4f1/const/Sand.csv"]
    for n in names:
        (www / n).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(conus_root / n, www / n)
    _subset(monkeypatch, conus_root, names, base)
    got = registry.fetch_conus(tmp_path / "cache", progress=False)
    assert all((got / n).read_bytes() == (conus_root / n).read_bytes() for n in names)

    # a file that differs from the published one is refused, naming it
    (www / names[1]).write_text("0\n0\n0\n0\n")
    with pytest.raises(DataError, match="SMAP_AM_stat.csv.*sha256"):
        registry.fetch_conus(tmp_path / "cache2", progress=False)
