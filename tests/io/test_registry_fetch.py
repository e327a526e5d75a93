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


def _closed_port_url() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_network_failure_is_one_line_naming_the_url(tmp_path, monkeypatch):
    base = _closed_port_url()
    full = registry.load_registry()
    monkeypatch.setattr(registry, "load_registry", lambda: {"CONUSv4f1/crd.csv": full["CONUSv4f1/crd.csv"]})
    monkeypatch.setattr(registry, "url_for", lambda n: base + n)
    with pytest.raises(DataError) as exc:
        registry.fetch_conus(tmp_path / "cache", progress=False)
    msg = str(exc.value)
    assert msg.startswith(base + "CONUSv4f1/crd.csv: cannot download") and "SMFUSION_DATA_DIR" in msg
    assert "\n" not in msg


def test_configured_data_folder_is_used_or_refused_never_downloaded(tmp_path, monkeypatch):
    from smfusion import settings

    monkeypatch.setattr(registry, "fetch_conus", lambda *a, **k: pytest.fail("downloaded despite SMFUSION_DATA_DIR"))
    monkeypatch.setenv(settings.ENV_VAR, str(tmp_path / "nope"))
    with pytest.raises(DataError, match=r"nope: the data folder named by SMFUSION_DATA_DIR does not exist"):
        registry.conus_root()
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv(settings.ENV_VAR, str(tmp_path / "empty"))
    with pytest.raises(DataError, match=r"empty/conus_smap: .* has no conus_smap/ folder"):
        registry.conus_root()
    (tmp_path / "part" / "conus_smap" / "CONUSv4f1").mkdir(parents=True)
    monkeypatch.setenv(settings.ENV_VAR, str(tmp_path / "part"))
    first = next(iter(registry.load_registry()))
    with pytest.raises(DataError, match=f"conus_smap/{first}: file of the CONUS sample missing"):
        registry.conus_root()
    with pytest.raises(DataError, match="data.root.*does not exist"):
        registry.resolve_root(tmp_path / "no_root")


def test_download_only_without_any_data_folder(tmp_path, monkeypatch):
    from smfusion import settings

    monkeypatch.delenv(settings.ENV_VAR, raising=False)
    monkeypatch.setattr(settings, "_candidates", lambda: [tmp_path / "absent"])
    monkeypatch.setenv(settings.CACHE_ENV, str(tmp_path / "cache"))
    assert settings.cache_dir() == tmp_path / "cache" / "conus_smap"
    calls = []
    monkeypatch.setattr(registry, "fetch_conus", lambda *a, **k: calls.append(1) or tmp_path / "fetched")
    assert registry.conus_root() == tmp_path / "fetched" and calls == [1]
    # a found (not configured) folder without conus_smap does not stop the download
    (tmp_path / "other").mkdir()
    monkeypatch.setattr(settings, "_candidates", lambda: [tmp_path / "other"])
    assert registry.conus_root() == tmp_path / "fetched"
