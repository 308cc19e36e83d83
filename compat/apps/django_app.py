"""A Django project in one module, served through Django's ASGI handler.

Sync views (run by Django in a thread), async views, the middleware most projects
keep (sessions on signed cookies, CommonMiddleware, GZip, CSRF exempted where a
client cannot get a token), StreamingHttpResponse with an async iterator, and
FileResponse.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import django
from django.conf import settings

from .common import BIG_TEXT, SSE_EVENTS, data_dir, digest, pattern

DATA = data_dir()
BACKGROUND: list[str] = []

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="compat-secret-key-compat-secret-key-compat-secret-key",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=["django.contrib.sessions"],
        MIDDLEWARE=[
            "django.middleware.gzip.GZipMiddleware",
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
        ],
        SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
        DATABASES={},
        USE_TZ=True,
        LOGGING_CONFIG=None,
        DATA_UPLOAD_MAX_MEMORY_SIZE=16 << 20,
    )
    django.setup()

from django.core.asgi import get_asgi_application  # noqa: E402
from django.http import (  # noqa: E402
    FileResponse,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.http.response import Http404, HttpResponseBase  # noqa: E402
from django.urls import path, register_converter  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402
from django.views.decorators.http import require_http_methods  # noqa: E402


class TeapotError(Exception):
    pass


def json_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"hello": "world", "unicode": "café ✓", "path": request.path})


async def item(request: HttpRequest, item_id: int) -> JsonResponse:
    q = request.GET.getlist("q")
    return JsonResponse(
        {
            "item_id": item_id,
            "q": q[-1] if q else None,
            "all_q": q,
            "limit": int(request.GET.get("limit", 10)),
        }
    )


@csrf_exempt
@require_http_methods(["POST"])
def create_item(request: HttpRequest) -> JsonResponse:
    try:
        data = json.loads(request.body)
    except json.JSONDecodeError:
        return JsonResponse({"detail": "invalid JSON"}, status=400)
    if not isinstance(data, dict) or "name" not in data:
        return JsonResponse({"detail": "name is required"}, status=422)
    return JsonResponse({"created": data}, status=201)


@csrf_exempt
def form(request: HttpRequest) -> JsonResponse:
    out: dict[str, Any] = {key: request.POST.getlist(key) for key in request.POST}
    for key in request.FILES:
        out[key] = [
            {"filename": f.name, "type": f.content_type, **digest(f.read())}
            for f in request.FILES.getlist(key)
        ]
    return JsonResponse(out)


def cookies(request: HttpRequest) -> JsonResponse:
    response = JsonResponse({"received": dict(request.COOKIES)})
    response.set_cookie("a", "1")
    response.set_cookie("b", "two words", httponly=True, samesite="Strict", max_age=60)
    response.delete_cookie("gone")
    return response


def redirect(request: HttpRequest) -> HttpResponseRedirect:
    response = HttpResponseRedirect(request.GET.get("to", "/json"))
    response.status_code = int(request.GET.get("status", "302"))
    return response


def teapot(request: HttpRequest) -> HttpResponse:
    raise TeapotError


def missing(request: HttpRequest) -> HttpResponse:
    raise Http404("no such thing")


def crash(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("unhandled")


async def big(request: HttpRequest) -> HttpResponse:
    return HttpResponse(BIG_TEXT, content_type="text/plain; charset=utf-8")


async def numbers() -> AsyncIterator[bytes]:
    for i in range(5):
        await asyncio.sleep(0)
        yield b"chunk %d\n" % i


async def stream(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(numbers(), content_type="text/plain")


async def events() -> AsyncIterator[str]:
    for event in SSE_EVENTS:
        yield event
        await asyncio.sleep(0.01)


async def sse(request: HttpRequest) -> StreamingHttpResponse:
    response = StreamingHttpResponse(events(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    return response


def file(request: HttpRequest) -> FileResponse:
    return FileResponse(open(DATA / "data.bin", "rb"), filename="data.bin")  # closed by Django


def background_result(request: HttpRequest) -> JsonResponse:
    return JsonResponse(BACKGROUND, safe=False)


@csrf_exempt
def body(request: HttpRequest) -> JsonResponse:
    return JsonResponse(digest(request.body))


async def download(request: HttpRequest) -> HttpResponse:
    return HttpResponse(
        pattern(int(request.GET.get("size", 1 << 20))), content_type="application/octet-stream"
    )


@csrf_exempt
def headers(request: HttpRequest) -> JsonResponse:
    skip = {"host", "user-agent"}
    return JsonResponse(
        {
            "headers": [[k.lower(), v] for k, v in request.headers.items() if k.lower() not in skip],
            "client": request.META.get("REMOTE_ADDR"),
            "scheme": request.scheme,
            "url": request.build_absolute_uri(),
            "http_version": request.META.get("SERVER_PROTOCOL"),
        }
    )


def path_echo(request: HttpRequest, name: str) -> JsonResponse:
    return JsonResponse(
        {
            "name": name,
            "path": request.path,
            "raw_path": request.get_full_path(),
            "query": request.GET.urlencode(),
        }
    )


def session_set(request: HttpRequest) -> JsonResponse:
    request.session["value"] = request.GET.get("value", "")
    return JsonResponse({"stored": request.session["value"]})


def session_get(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"value": request.session.get("value")})


def status(request: HttpRequest, code: int) -> HttpResponseBase:
    return HttpResponse(b"" if code in (204, 304) else b"status body", status=code)


def handler500(request: HttpRequest) -> HttpResponse:
    return HttpResponse("server error", status=500, content_type="text/plain")


class _Teapot:
    """Exception handling the Django way: a middleware turning TeapotError into 418."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response: HttpResponse = self.get_response(request)
        return response

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if isinstance(exc, TeapotError):
            return JsonResponse({"error": "teapot", "path": request.path}, status=418)
        return None


settings.MIDDLEWARE = [*settings.MIDDLEWARE, f"{__name__}._Teapot"]


class _AnyPath:
    regex = ".+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(_AnyPath, "anypath")

urlpatterns = [
    path("json", json_view),
    path("items/<int:item_id>", item),
    path("items", create_item),
    path("form", form),
    path("upload", form),
    path("cookies", cookies),
    path("redirect", redirect),
    path("teapot", teapot),
    path("missing", missing),
    path("crash", crash),
    path("big", big),
    path("stream", stream),
    path("sse", sse),
    path("file", file),
    path("background/result", background_result),
    path("body", body),
    path("download", download),
    path("headers", headers),
    path("paths/<anypath:name>", path_echo),
    path("session/set", session_set),
    path("session/get", session_get),
    path("status/<int:code>", status),
]

app = get_asgi_application()
