"""GET /api/docs: an interactive reference (Swagger UI) for the API's own `openapi.yaml`, with
Swagger UI's files from the `swagger-ui-bundle-v2` package, so the page works offline.

Only the files named here are served: the request's path is looked up in a fixed table, never
joined to a directory, so no path reaches any other file. Swagger UI's files sit under a folder
named for its version and are cached for a year; the page and its initializer are revalidated on
every load, so a deployment that changes the version is seen at once. Files are read on first use
and kept; nothing is read, and the package is not imported, at import time.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath
from string import Template
from urllib.parse import urlsplit

import azure.functions as func

from shared.app import App
from shared.errors import NotFound

HERE = Path(__file__).resolve().parent
PAGE = "index.html"
INITIALIZER = "swagger-initializer.js"
# The files the page loads, and the source maps their last lines name (for browser dev tools).
SWAGGER_UI_FILES = frozenset(
    {
        "swagger-ui.css",
        "swagger-ui.css.map",
        "swagger-ui-bundle.js",
        "swagger-ui-bundle.js.map",
        "index.css",
        "favicon-16x16.png",
        "favicon-32x32.png",
    }
)
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".map": "application/json; charset=utf-8",
    ".png": "image/png",
}
COMPRESSED = frozenset({".html", ".js", ".css", ".map"})
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
_QUALITY = re.compile(r"q\s*=\s*(0(?:\.\d{0,3})?|1(?:\.0{0,3})?)", re.IGNORECASE)  # RFC 9110 qvalue
# Swagger UI styles elements inline and draws icons from data: URLs; everything else is ours.
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    cache_control: str
    gzipped: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()

    def response(self, accept_gzip: bool) -> func.HttpResponse:
        headers = {
            "Content-Type": self.media_type,
            "Cache-Control": self.cache_control,
            "X-Content-Type-Options": "nosniff",
            **dict(self.headers),
        }
        body = self.body
        if self.gzipped is not None:
            headers["Vary"] = "Accept-Encoding"
            if accept_gzip:
                headers["Content-Encoding"] = "gzip"
                body = self.gzipped
        return func.HttpResponse(body, status_code=200, headers=headers)


def api_docs(req: func.HttpRequest, app: App) -> func.HttpResponse:
    asset = req.route_params.get("asset") or ""
    if asset in ("", PAGE):
        found = page(base_href(urlsplit(req.url).path, asset))
    elif asset == INITIALIZER:
        found = read(HERE / INITIALIZER, REVALIDATE)
    else:
        folder, _, name = asset.partition("/")
        if folder != swagger_ui().name or name not in SWAGGER_UI_FILES:
            raise NotFound("The API reference has no such file.")
        found = read(swagger_ui() / name, IMMUTABLE)
    return found.response(accepts_gzip(req.headers.get("Accept-Encoding", "")))


def base_href(path: str, asset: str) -> str:
    """The page's files are relative to the folder `/api/docs/`; at `/api/docs` (no slash) the
    browser would resolve them against `/api/`, so the page names its folder itself."""
    if asset == "" and not path.endswith("/"):
        return PurePosixPath(path).name + "/"
    return "./"


@cache
def swagger_ui() -> Path:
    from swagger_ui_bundle import swagger_ui_path

    return Path(str(swagger_ui_path))


@cache
def page(base: str) -> Asset:
    html = Template((HERE / PAGE).read_text(encoding="utf-8"))
    body = html.substitute(base=base, assets=swagger_ui().name).encode()
    headers = (("Content-Security-Policy", PAGE_POLICY), ("Referrer-Policy", "no-referrer"))
    return Asset(body, MEDIA_TYPES[".html"], REVALIDATE, gzip.compress(body), headers)


@cache
def read(path: Path, cache_control: str) -> Asset:
    body = path.read_bytes()
    gzipped = gzip.compress(body) if path.suffix in COMPRESSED else None
    return Asset(body, MEDIA_TYPES[path.suffix], cache_control, gzipped)


def accepts_gzip(accept_encoding: str) -> bool:
    """RFC 9110 section 12.5.3: `gzip`, or else `*`, listed with a quality above zero."""
    qualities: dict[str, float] = {}
    for item in accept_encoding.split(","):
        coding, _, params = item.partition(";")
        quality = _QUALITY.fullmatch(params.strip())
        qualities[coding.strip().lower()] = float(quality.group(1)) if quality else 1.0
    return qualities.get("gzip", qualities.get("*", 0.0)) > 0
