"""Reading photos out of an HTTP request: multipart files or JSON with base64, with every failure a clear 4xx.

Also holds :class:`BodyLimit`, the ASGI middleware that refuses a body larger than the limit while it streams
in, so neither a lying ``Content-Length`` nor a chunked upload can make the service buffer gigabytes.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from autoinspect.serving.inspection import Photo, RequestRejectedError
from autoinspect.serving.schemas import InspectBatchJson, InspectJson

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"(?=.*[A-Za-z0-9])[A-Za-z0-9._:-]{1,100}")
"""Client-chosen request ids (idempotency keys) are short and URL-safe: they become log keys and metric-free
identifiers, never paths or labels. At least one letter or digit: ids of punctuation alone (``.``, ``..``) read
as path parts wherever an id ends up in a file name or URL."""
Body = TypeVar("Body", bound=BaseModel)
MULTIPART = "multipart/form-data"
JSON = "application/json"


def request_id(request: Request, generated: str) -> str:
    """The client's ``X-Request-ID`` when valid (a resent request is then logged once), else ``generated``."""
    given = request.headers.get(REQUEST_ID_HEADER)
    if given is None:
        return generated
    if not _REQUEST_ID.fullmatch(given):
        raise RequestRejectedError(
            400, f"{REQUEST_ID_HEADER} must be 1-100 characters of A-Z a-z 0-9 . _ : -, with a letter or digit"
        )
    return given


async def read_photos(request: Request, *, field: str, max_files: int) -> tuple[list[Photo], str | None]:
    """The photos and the vehicle id of an inspect request, in either accepted encoding.

    ``field`` is the multipart field name (``image`` or ``images``); one photo is expected when ``max_files`` is 1.
    """
    kind = media_type(request)
    if kind == MULTIPART:
        return await _read_multipart(request, field=field, max_files=max_files)
    if kind == JSON:
        return _read_json(await request.body(), max_files=max_files)
    raise unsupported_media(kind, field)


def media_type(request: Request) -> str:
    """The request's content type without its parameters (``multipart/form-data`` of ``...; boundary=...``)."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def unsupported_media(kind: str, field: str) -> RequestRejectedError:
    """The 415 for a body that is neither of the two accepted encodings."""
    return RequestRejectedError(
        415, f"send the photo(s) as {MULTIPART} (field '{field}') or {JSON} with base64, not '{kind or 'nothing'}'"
    )


async def _read_multipart(request: Request, *, field: str, max_files: int) -> tuple[list[Photo], str | None]:
    photos, form = await multipart_photos(request, field=field, max_files=max_files)
    return photos, text_field(form, "vehicle_id")


async def multipart_photos(
    request: Request, *, field: str, max_files: int, max_fields: int = 8
) -> tuple[list[Photo], FormData]:
    """The photos of multipart field ``field`` (1 to ``max_files``, none empty) and the whole form."""
    try:
        form = await request.form(max_files=max_files, max_fields=max_fields)
    except HTTPException as error:  # malformed multipart, or more parts than allowed: Starlette says which
        if "Too many files" in str(error.detail):
            raise RequestRejectedError(
                413, f"more than {max_files} photos sent; at most {max_files} per request"
            ) from None
        raise RequestRejectedError(400, f"cannot read the multipart body: {error.detail}") from None
    uploads = [value for value in form.getlist(field) if isinstance(value, UploadFile)]
    if not uploads:
        raise RequestRejectedError(400, f"no photo in the multipart field '{field}'")
    if len(uploads) > max_files:
        raise RequestRejectedError(413, f"{len(uploads)} photos sent; at most {max_files} per request")
    photos = [
        Photo(data=await upload.read(), name=upload.filename or f"{field}[{index}]")
        for index, upload in enumerate(uploads)
    ]
    for photo in photos:
        if not photo.data:
            raise RequestRejectedError(400, f"{photo.name} is empty")
    return photos, form


def text_field(form: FormData, name: str, max_length: int = 128) -> str | None:
    """A short text field of a multipart form; absent or empty is ``None``."""
    value = form.get(name)
    if value is not None and not isinstance(value, str):
        raise RequestRejectedError(400, f"{name} must be a text field, not a file")
    if value is not None and len(value) > max_length:
        raise RequestRejectedError(400, f"{name} is longer than {max_length} characters")
    return value or None


def _read_json(body: bytes, *, max_files: int) -> tuple[list[Photo], str | None]:
    hint = "the photo in 'image_base64'"
    parsed = parse_json(body, InspectJson, hint) if max_files == 1 else parse_json(body, InspectBatchJson, hint)
    encoded = [parsed.image_base64] if isinstance(parsed, InspectJson) else parsed.images_base64
    return base64_photos(encoded, max_files=max_files), parsed.vehicle_id


def parse_json(body: bytes, model: type[Body], hint: str) -> Body:
    """The JSON body as ``model``: 400 when empty (``hint`` says what to send), 422 naming the first errors."""
    if not body:
        raise RequestRejectedError(400, f"empty body: send a JSON object with {hint}")
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        raise RequestRejectedError(422, f"invalid JSON body: {first_errors(error.errors())}") from None


def base64_photos(encoded: Sequence[str], *, max_files: int) -> list[Photo]:
    """The base64 photos of a JSON body, named ``photo <index>``; 413 over ``max_files``."""
    if len(encoded) > max_files:
        raise RequestRejectedError(413, f"{len(encoded)} photos sent; at most {max_files} per request")
    return [Photo(data=_b64decode(text, index), name=f"photo {index}") for index, text in enumerate(encoded)]


def _b64decode(text: str, index: int) -> bytes:
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise RequestRejectedError(422, f"photo {index} is not valid base64") from None
    if not data:
        raise RequestRejectedError(400, f"photo {index} is empty")
    return data


def first_errors(errors: Iterable[Any], limit: int = 3) -> str:
    """Pydantic's errors as one line: ``field: message`` for the first few."""
    parts = []
    for error in list(errors)[:limit]:
        where = ".".join(str(part) for part in error.get("loc", ())) or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` (or the limit of their exact path in ``per_path``) with 413,
    checked on ``Content-Length`` and while streaming."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, per_path: dict[str, int] | None = None) -> None:
        self._app = app
        self._default = max_bytes
        self._per_path = per_path or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        limit = self._per_path.get(scope["path"], self._default)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(send, limit)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLargeError
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._app(scope, limited_receive, tracking_send)
        except _BodyTooLargeError:
            if not started:
                await _too_large(send, limit)


class _BodyTooLargeError(Exception):
    """Raised inside the app's receive call; caught by :class:`BodyLimit` to answer 413."""


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps({"detail": f"request body larger than {limit:,} bytes"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
