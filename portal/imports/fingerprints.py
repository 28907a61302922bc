"""Fingerprints of invoice lines, so that a re-import of the same file is nearly a COPY.

Each invoice the set-based import (``portal.imports.bulk``) writes or finds unchanged keeps
the fingerprint of its line (``invoices.import_digest``): a 64-bit hash
(``hashtextextended``) of the line's mapped cells as the file gives them, joined by U+0001,
seeded with what else decides how they are read (the mapping, the default currency, the
version of these rules). md5 would cost more than the COPY of the file itself; a hash of 64
bits keyed by the invoice's number lets a changed line pass for unchanged once in about
10^19. The next import of a file finds the lines
whose fingerprint is stored on the invoice of their number and counts them unchanged without
typing or comparing them; only the others go through the typed rows and the plan.

A fingerprint is only as good as the invoice it sits on: on PostgreSQL a trigger clears it
when one of the columns a re-import compares changes by any path (a form, the API, a
payment settling it, a merge), and another when the customer's reference changes
(migration ``0022_import_fingerprints``). The accounting system stays the source of truth:
a line whose invoice was changed in Relance since is compared again and updated back.

Lines set aside must not hide a number written twice in the file: when one of the other
lines names the invoice of a set-aside line, or two set-aside lines are the same
invoice's, every line is read again the usual way.
"""

from __future__ import annotations

import hashlib
import json

from sqlalchemy import text
from sqlalchemy.orm import Session

from portal.imports import staging

RULES = 1  # bump when the way a plain cell is read changes: every fingerprint is then stale
KNOWN = "import_known"
REST = "import_rest"


def salt(columns: dict[int, str], default_currency: str) -> int:
    """The hash's seed: a signed 64-bit integer."""
    what = json.dumps([RULES, default_currency, sorted(columns.items())]).encode()
    return int.from_bytes(hashlib.sha256(what).digest()[:8], "big", signed=True)


def expression(columns: dict[int, str], alias: str = staging.CELLS) -> str:
    """The fingerprint of a line of ``import_cells`` (``:digest_salt`` bound). An empty
    cell is '' (as our reader gives it), so each value keeps its place."""
    cells = ", ".join(f"coalesce({alias}.{staging.column(i)}, '')" for i in sorted(columns))
    return f"hashtextextended(concat_ws(chr(1), {cells}), CAST(:digest_salt AS bigint))"


def set_aside(
    db: Session, company_id: int, columns: dict[int, str], digest_salt: int, sample: int
) -> int:
    """``import_known``: the lines whose fingerprint their invoice keeps (line, invoice);
    ``import_rest``: the other lines' cells, and the first ``sample`` lines of the file
    (the preview shows them). Returns how many lines are known; 0 when none is, or when
    two known lines are the same invoice's (the file lists it twice)."""
    number = {name: index for index, name in columns.items()}.get("number")
    if number is None:
        return 0
    c = staging.CELLS
    params = {"company_id": company_id}
    db.execute(
        text(
            f"""
            CREATE TEMP TABLE {KNOWN} ON COMMIT DROP AS
            SELECT {c}.line, i.id AS invoice_id FROM {c} JOIN invoices i
              ON i.company_id = :company_id AND i.number = {c}.{staging.column(number)}
             AND i.import_digest = {expression(columns)}
            """  # noqa: S608
        ),
        params | {"digest_salt": digest_salt},
    )
    known = int(db.execute(text(f"SELECT count(*) FROM {KNOWN}")).scalar_one())  # noqa: S608
    twice = (
        known
        and db.execute(
            text(
                f"SELECT 1 FROM {KNOWN} GROUP BY invoice_id HAVING count(*) > 1 LIMIT 1"  # noqa: S608
            )
        ).first()
    )
    if not known or twice:
        db.execute(text(f"DROP TABLE {KNOWN}"))
        return 0
    db.execute(
        text(
            f"""
            CREATE TEMP TABLE {REST} ON COMMIT DROP AS
            SELECT {c}.* FROM {c} LEFT JOIN {KNOWN} k ON k.line = {c}.line
            WHERE k.line IS NULL OR {c}.line <= (
              SELECT max(line) FROM (SELECT line FROM {c} ORDER BY line LIMIT :sample) AS first)
            """  # noqa: S608
        ),
        {"sample": sample},
    )
    return known


def named_elsewhere(db: Session, company_id: int) -> bool:
    """Whether a line read the usual way (``import_invoices``) names the invoice of a
    known line other than itself: the number is in the file twice."""
    found = db.execute(
        text(
            f"""
            SELECT 1 FROM import_invoices t
            JOIN invoices i ON i.company_id = :company_id AND i.number = t.number
            JOIN {KNOWN} k ON k.invoice_id = i.id AND k.line <> t.line
            LIMIT 1
            """  # noqa: S608
        ),
        {"company_id": company_id},
    ).first()
    return found is not None


def drop_known_lines(db: Session) -> None:
    """The known lines typed for the preview's sample leave the typed rows."""
    db.execute(
        text(f"DELETE FROM import_invoices t USING {KNOWN} k WHERE k.line = t.line")  # noqa: S608
    )


def stamp(db: Session, lines: list[int] | None = None) -> None:
    """The fingerprints of the lines written or confirmed by this import onto their
    invoices (after every other write: those clear them): ``import_plan``'s new, settled
    and stale lines, and the changed ``lines`` the services accepted."""
    db.execute(
        text(
            """
            UPDATE invoices i SET import_digest = p.digest FROM import_plan p
            WHERE i.id = p.invoice_id AND p.digest IS NOT NULL
              AND i.import_digest IS DISTINCT FROM p.digest
              AND (p.decision IN ('settle', 'stamp') OR p.line = ANY(:lines))
            """
        ),
        {"lines": lines or []},
    )
