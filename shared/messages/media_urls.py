"""Checking the media URLs of a send before accepting it.

This service's own URLs are checked against the media record (the tenant's own, not failed);
the carrier gets the record's signed URL. Any other URL must be https and pass a HEAD (or ranged
GET) through the SSRF-guarded outbound client: 200, a supported Content-Type, at most 5 MB.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from shared.errors import Unprocessable, UnsupportedMediaType, ValidationFailed
from shared.media.store import MediaStore
from shared.media.types import normalise_declared
from shared.outbound import MAX_URL_LENGTH, OutboundClient, OutboundRefused, Reason, redact_url

# Refusals that a look at the URL alone decides: the request is malformed (400), not unreachable.
_STATIC = {
    Reason.INVALID_URL,
    Reason.SCHEME_NOT_ALLOWED,
    Reason.CREDENTIALS_IN_URL,
    Reason.URL_TOO_LONG,
}


@dataclass(frozen=True)
class CheckedMedia:
    url: str  # what the carrier will fetch
    content_type: str
    size: int
    media_id: str | None = None  # set for this service's own media

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "contentType": self.content_type, "size": self.size,
                "mediaId": self.media_id}  # fmt: skip

    @classmethod
    def from_json(cls, entity: dict[str, Any]) -> CheckedMedia:
        return cls(url=entity["url"], content_type=entity["contentType"], size=int(entity["size"]),
                   media_id=entity.get("mediaId"))  # fmt: skip


class MediaUrlRejected(Unprocessable):
    code = "media_url_rejected"


class _Rejected(Exception):
    def __init__(self, reason: str, message: str, *, static: bool = False) -> None:
        super().__init__(message)
        self.reason, self.message, self.static = reason, message, static


class MediaUrlChecker:
    """Checks a send's media URLs: this service's own against the media records (under
    `container_url`), any other through the SSRF-guarded outbound client."""

    def __init__(
        self, media: MediaStore, outbound: OutboundClient, *, container_url: str, max_bytes: int
    ) -> None:
        self._media = media
        self._outbound = outbound
        self._container = urlsplit(container_url)
        self._max_bytes = max_bytes

    def own_media_id(self, url: str) -> tuple[str, str] | None:
        """(media id, blob name) when `url` points into this service's media container."""
        prefix = self._container
        try:
            parts = urlsplit(url)
        except ValueError:  # e.g. an unclosed IPv6 bracket: not ours; the outbound check says why
            return None
        if (parts.scheme, parts.netloc) != (prefix.scheme, prefix.netloc):
            return None
        base = prefix.path.rstrip("/") + "/"
        if not parts.path.startswith(base):
            return None
        blob_name = unquote(parts.path[len(base) :])
        media_id, _, _ = blob_name.partition("/")
        return (media_id, blob_name) if media_id else None

    def _check_own(self, tenant_id: str, media_id: str, blob_name: str) -> CheckedMedia:
        record = self._media.get({tenant_id}, media_id)
        if record is None or record.blob_name != blob_name:
            raise _Rejected("media_not_found", "no such media belongs to the sending tenant")
        if record.optimization_state == "failed":
            why = record.optimization.get("reason", "unknown")
            raise _Rejected("media_failed", f"the media could not be prepared for carriers ({why})")
        return CheckedMedia(record.uri, record.content_type, record.size, record.media_id)

    def _check_external(self, url: str) -> CheckedMedia:
        if len(url) > MAX_URL_LENGTH:
            raise _Rejected(Reason.URL_TOO_LONG, "the URL is too long", static=True)
        try:
            probe = self._outbound.probe(url)
        except OutboundRefused as exc:
            # Only the URL as given can be malformed (400); a bad redirect target is the
            # server's doing, so the URL is unusable (422) rather than invalid.
            static = exc.reason in _STATIC and "(redirected to" not in exc.message
            raise _Rejected(exc.reason, exc.message, static=static) from None
        if probe.content_type is None:
            raise _Rejected("content_type_missing", "the server sent no Content-Type")
        try:
            content_type = normalise_declared(probe.content_type)
        except UnsupportedMediaType:
            raise _Rejected(
                "unsupported_content_type",
                f"the Content-Type {probe.content_type} is not supported",
            ) from None
        if probe.size is None:
            raise _Rejected("size_unknown", "the server did not say how large the media is")
        if probe.size > self._max_bytes:
            raise _Rejected("too_large", "the media is larger than 5 MB")
        return CheckedMedia(url, content_type, probe.size)

    def _check(self, tenant_id: str, url: str) -> CheckedMedia:
        own = self.own_media_id(url)
        if own is not None:
            return self._check_own(tenant_id, *own)
        return self._check_external(url)

    def check(self, tenant_id: str, urls: list[str]) -> list[CheckedMedia]:
        """All URLs checked concurrently; every failure is reported, naming the URL and the
        reason."""
        if not urls:
            return []

        def attempt(url: str) -> CheckedMedia | _Rejected:
            try:
                return self._check(tenant_id, url)
            except _Rejected as rejected:
                return rejected

        with ThreadPoolExecutor(max_workers=len(urls)) as pool:
            results = list(pool.map(attempt, urls))
        failures = [
            (i, url, r) for i, (url, r) in enumerate(zip(urls, results, strict=True))
            if isinstance(r, _Rejected)
        ]  # fmt: skip
        if not failures:
            return [r for r in results if isinstance(r, CheckedMedia)]
        errors = [
            {"field": f"mediaUrls[{i}]", "url": redact_url(url), "reason": str(r.reason),
             "message": r.message}
            for i, url, r in failures
        ]  # fmt: skip
        detail = f"mediaUrls[{failures[0][0]}] {errors[0]['url']}: {failures[0][2].message}"
        if all(r.static for _, _, r in failures):
            raise ValidationFailed(detail, errors, code="media_url_invalid")
        raise MediaUrlRejected(detail, extra={"errors": errors})
