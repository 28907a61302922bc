"""/admin/branding (admins): the company's logo, colours, texts per language and email
sender, with a preview before saving (branding/service.py checks and stores them)."""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portal.branding import colours
from portal.branding import service as branding
from portal.branding.logo import MAX_BYTES as LOGO_MAX_BYTES
from portal.branding.service import BrandingForm, Look, Texts
from portal.i18n import gettext_ as _
from portal.users.models import Role, User
from portal.web.backoffice import PREFIX, _context, require_role
from portal.web.forms import body_too_large, read_form
from portal.web.rendering import is_htmx, render, unit_of_work

PATH = f"{PREFIX}/branding"
TEXT_FIELDS = ("welcome", "footer", "legal", "support")


def error_text(reason: str, values: dict[str, Any]) -> str:
    if reason == "contrast":
        return _(
            "%(colour)s is refused: against %(against)s its contrast is %(ratio)s:1, and "
            "WCAG AA asks for at least %(needed)s:1 so that everyone can read the text. "
            "Choose a darker colour.",
            **values,
        )
    messages = {
        "shape": _("Enter a colour as # and six hexadecimal digits, such as #1f4e79."),
        "name": _("The sender's name must fit on one line, without < > or quotes."),
        "email": _("Enter an email address such as billing@example.com."),
        "logo_size": _("The logo must be a file of at most 512 KB."),
        "logo_type": _("The logo must be a PNG or an SVG file."),
        "logo_png": _("This PNG file cannot be read."),
        "logo_svg": _(
            "This SVG file holds scripts, styles, links or other content a logo does not "
            "need, so it is refused. Export it again as a plain SVG, or use a PNG."
        ),
    }
    if reason == "too_long":
        return _("At most %(limit)d characters.", **values)
    return messages[reason]


def _form(form: FormData, languages: tuple[str, ...], logo: bytes | None) -> BrandingForm:
    def text(name: str, limit: int = 300) -> str:
        value = form.get(name)
        return value.strip()[:limit] if isinstance(value, str) else ""

    return BrandingForm(
        primary_colour=text("primary_colour", 20),
        accent_colour=text("accent_colour", 20),
        sender_name=text("sender_name", 200),
        sender_email=text("sender_email", 300),
        texts={
            language: Texts(**{name: text(f"{name}_{language}", 3000) for name in TEXT_FIELDS})
            for language in languages
        },
        logo=logo,
        remove_logo=form.get("remove_logo") == "1",
    )


def _values(look: Look, stored: BrandingForm | None, languages: tuple[str, ...]) -> dict[str, str]:
    """What the form fields show: what was typed, else what is saved."""
    if stored is not None:
        values = {
            "primary_colour": stored.primary_colour,
            "accent_colour": stored.accent_colour,
            "sender_name": stored.sender_name,
            "sender_email": stored.sender_email,
        }
        texts = stored.texts
    else:
        values = {"primary_colour": "", "accent_colour": "", "sender_name": "", "sender_email": ""}
        texts = look.texts
    for language in languages:
        for name in TEXT_FIELDS:
            values[f"{name}_{language}"] = getattr(texts.get(language, Texts()), name)
    return values


def _page(
    request: Request,
    db: Session,
    user: User,
    *,
    typed: BrandingForm | None = None,
    errors: dict[str, str] | None = None,
    preview: Look | None = None,
    status_code: int = 200,
    full: bool = False,
) -> Response:
    state = request.app.state
    settings = state.settings
    saved: Look = branding.load_look(db, state.company_id, settings)
    shown = preview or saved
    logo_url = "/logo"
    if preview is not None and typed is not None and typed.logo:
        logo_url = f"data:{preview.logo_type};base64,{base64.b64encode(typed.logo).decode()}"
    context = _context(
        user,
        values=_values(saved, typed, settings.languages),
        errors=errors or {},
        preview=shown,
        previewing=preview is not None,
        preview_logo=logo_url,
        defaults=branding.default_look(settings),
        text_fields=TEXT_FIELDS,
        notice=request.query_params.get("done") == "saved",
        logo_limit_kb=LOGO_MAX_BYTES // 1024,
    )
    block = None if full else "preview"
    return render(
        request, "backoffice/branding.html", context, status_code=status_code, block=block
    )


def branding_page(request: Request) -> Response:
    with unit_of_work(request) as db:
        user = require_role(request, db, Role.ADMIN)
        if isinstance(user, Response):
            return user
        return _page(request, db, user)


async def save_branding(request: Request) -> Response:
    if body_too_large(request, LOGO_MAX_BYTES):
        form, logo = await read_form(request, max_fields=40)
        logo = b"\0" * (LOGO_MAX_BYTES + 1)
    else:
        form, logo = await read_form(
            request, file_field="logo", max_bytes=LOGO_MAX_BYTES, max_fields=40
        )
    return await run_in_threadpool(_save_branding, request, form, logo)


def _save_branding(request: Request, form: FormData, logo: bytes | None) -> Response:
    state = request.app.state
    with unit_of_work(request) as db:
        user = require_role(request, db, Role.ADMIN)
        if isinstance(user, Response):
            return user
        typed = _form(form, state.settings.languages, logo)
        problems, logo_type = branding.check(typed)
        errors = {field: error_text(reason, values) for field, (reason, values) in problems.items()}
        if errors:
            if is_htmx(request):
                # The whole page, so the messages stand next to their fields (htmx swaps
                # a 200 only, and the preview button asked for the preview alone).
                response = _page(request, db, user, typed=typed, errors=errors, full=True)
                response.headers.update(
                    {"HX-Retarget": "#main", "HX-Reselect": "#main", "HX-Reswap": "outerHTML"}
                )
                return response
            return _page(request, db, user, typed=typed, errors=errors, status_code=400)
        if form.get("action") == "preview":
            saved = branding.load_look(db, state.company_id, state.settings)
            look = branding.preview(saved, typed, logo_type)
            return _page(request, db, user, typed=typed, preview=look)
        branding.save(db, state.company_id, typed, logo_type, user_id=user.id)
        db.flush()
        state.site.load(db, state.company_id)
    return RedirectResponse(f"{PATH}?done=saved", status_code=303)


async def preview_css(request: Request) -> Response:
    """The preview's colours (no inline style under the CSP); hex colours only."""
    primary = request.query_params.get("primary", "")
    accent = request.query_params.get("accent", "")
    if not (colours.HEX.match(primary) and colours.HEX.match(accent)):
        return Response("", media_type="text/css", status_code=400)
    css = f".brand-preview{{--brand:{primary};--accent:{accent};}}\n"
    return Response(css, media_type="text/css", headers={"Cache-Control": "no-store"})


routes = [
    Route(PATH, branding_page, name="admin_branding"),
    Route(PATH, save_branding, methods=["POST"], name="admin_branding_save"),
    Route(f"{PATH}/preview.css", preview_css, name="admin_branding_preview_css"),
]
