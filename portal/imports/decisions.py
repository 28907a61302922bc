"""The SQL of the set-based invoice import (``portal.imports.bulk``): typed rows from the
staged cells, the customers to create, one decision per row (new, changed, unchanged,
settle, or why it is rejected), the flags for review, and the writes with their timeline
events. Temporary tables: ``import_invoices`` (typed rows), ``import_customers`` (customers
the file names that are not stored yet), ``import_plan`` (the decisions)."""

from __future__ import annotations

import dataclasses
from functools import cache
from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.orm import Session

from portal.changes import FieldErrors, plain
from portal.customers import batch as customers
from portal.customers.validation import (
    ContactFields,
    CustomerFields,
    validate_contact,
    validate_customer,
)
from portal.imports import fingerprints, staging
from portal.imports import plain as cell
from portal.imports.apply import ROW_TWICE
from portal.imports.kinds import SAME_AS, UNKNOWN_CUSTOMER, refused
from portal.imports.rows import MAX_NAME, MAX_REFERENCE, Rejection
from portal.invoices.editing import currencies
from portal.money import minor_digits

CUSTOMER_FIELDS = tuple(f.name for f in dataclasses.fields(CustomerFields))
_SQL_TYPES = {"strategic": "boolean", "owner_user_id": "bigint"}


@cache
def _plain_currencies() -> list[str]:
    return sorted(code for code in currencies() if minor_digits(code) == 2)


def currency_params(default: str) -> dict[str, Any]:
    return {
        "default_currency": default,
        "plain_currencies": _plain_currencies(),
        "currencies": sorted(currencies()),
    }


# --- typed rows -------------------------------------------------------------------------------


def typed_table(columns: dict[int, str], source: str = staging.CELLS) -> str:
    """``import_invoices`` from ``source`` (``import_cells`` or the lines not set aside by
    ``fingerprints``): each row's typed values, its fingerprint, and whether the row is
    plain (every value read in SQL as Python would read it)."""
    by_field = {name: staging.column(index) for index, name in columns.items()}

    def c(name: str) -> str:
        return by_field.get(name, "CAST(NULL AS text)")

    outstanding = c("outstanding")

    def day(name: str) -> str:
        return f"{name}.day" if name in by_field else "CAST(NULL AS date)"

    return f"""
    CREATE TEMP TABLE import_invoices ON COMMIT DROP AS
    SELECT line, number, customer_reference, customer_name, customer_email, issue_date,
           due_date, currency, amount_minor, outstanding_minor, digest,
           (number IS NOT NULL AND customer_reference IS NOT NULL AND issue_date IS NOT NULL
            AND due_date IS NOT NULL AND currency IS NOT NULL AND amount_minor IS NOT NULL
            AND (name_blank OR customer_name IS NOT NULL)
            AND (email_blank OR customer_email IS NOT NULL)
            AND (outstanding_blank OR outstanding_minor BETWEEN 0 AND greatest(amount_minor, 0))
           ) AS plain
    FROM (
      SELECT line,
        {cell.trimmed(c("number"), MAX_REFERENCE)} AS number,
        {cell.trimmed(c("customer_reference"), MAX_REFERENCE)} AS customer_reference,
        {cell.trimmed(c("customer_name"), MAX_NAME)} AS customer_name,
        {cell.blank(c("customer_name"))} AS name_blank,
        {cell.trimmed(c("customer_email"), 254)} AS customer_email,
        {cell.blank(c("customer_email"))} AS email_blank,
        {day("issue_date")} AS issue_date,
        {day("due_date")} AS due_date,
        {cell.currency(by_field.get("currency"))} AS currency,
        {cell.amount(c("amount"))} AS amount_minor,
        {cell.blank(outstanding)} AS outstanding_blank,
        {cell.amount(outstanding)} AS outstanding_minor,
        {fingerprints.expression(columns)} AS digest
      FROM {source} AS {staging.CELLS} {_joined_days(by_field)}
      OFFSET 0
    ) AS cells
    """  # noqa: S608


def _joined_days(by_field: dict[str, str]) -> str:
    return " ".join(
        f"LEFT JOIN {cell.DAYS_TABLE} {name} ON {name}.text = {staging.CELLS}.{by_field[name]}"
        for name in ("issue_date", "due_date")
        if name in by_field
    )


# --- customers --------------------------------------------------------------------------------


def new_customers(db: Session, params: dict[str, Any]) -> None:
    """``import_customers``: each reference the file names that is not stored, with the
    name (and email) of its first line that gives one; ``plain`` when the name is as
    ``validate_customer`` would keep it and there is no contact to check."""
    db.execute(
        text(
            f"""
            CREATE TEMP TABLE import_customers ON COMMIT DROP AS
            SELECT DISTINCT ON (t.customer_reference)
                   t.customer_reference AS reference, t.customer_name AS name,
                   t.customer_email AS email, t.line, CAST(NULL AS bigint) AS id,
                   CAST(NULL AS text) AS problem,
                   (t.customer_email IS NULL AND {cell.single_spaced("t.customer_name")}) AS plain
            FROM import_invoices t
            WHERE t.customer_name IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM customers c
                WHERE c.company_id = :company_id AND c.reference = t.customer_reference)
            ORDER BY t.customer_reference, t.line
            """  # noqa: S608
        ),
        params,
    )


def _validated(
    name: str, reference: str, email: str | None
) -> tuple[CustomerFields, ContactFields | None]:
    """What ``kinds._customer_ids`` checks for a customer an invoice row creates."""
    fields = validate_customer(CustomerFields(reference=reference, name=name))
    contact = None
    if email:
        contact = validate_contact(ContactFields(email=email, is_primary=True), fields.country)
    return fields, contact


def _unusual(raw: psycopg.Connection[Any], page: int) -> list[list[tuple[str, str, str | None]]]:
    with raw.cursor() as cursor:
        cursor.execute(
            "SELECT reference, name, email FROM import_customers "
            "WHERE NOT plain AND problem IS NULL ORDER BY line"
        )
        rows = cursor.fetchall()
    return [rows[start : start + page] for start in range(0, len(rows), page)]


def check_customers(db: Session, raw: psycopg.Connection[Any], page: int) -> None:
    """Customers that are not plain, checked by ``validate_customer``: a refusal is kept as
    the reason their rows are rejected."""
    for chunk in _unusual(raw, page):
        problems = []
        for reference, name, email in chunk:
            try:
                _validated(name, reference, email)
            except FieldErrors as error:
                problems.append((refused(0, error).message, reference))
        if problems:
            with raw.cursor() as cursor:
                cursor.executemany(
                    "UPDATE import_customers SET problem = %s WHERE reference = %s", problems
                )


def customers_count(db: Session) -> int:
    return int(
        db.execute(text("SELECT count(*) FROM import_customers WHERE problem IS NULL")).scalar_one()
    )


@cache
def _customer_defaults() -> dict[str, Any]:
    fields = validate_customer(CustomerFields(reference="-", name="-"))
    return {name: plain(getattr(fields, name)) for name in CUSTOMER_FIELDS}


def _customer_value(name: str) -> str:
    if name in ("reference", "name"):
        return name
    return f"CAST(:d_{name} AS {_SQL_TYPES.get(name, 'text')})"


def create_customers(
    db: Session,
    raw: psycopg.Connection[Any],
    actor: Any,
    actor_id: str | None,
    details: dict[str, Any],
    params: dict[str, Any],
    page: int,
) -> None:
    """Plain customers inserted with their ``customer.created`` events in one statement;
    the others through ``customers.batch.create_customers`` (their first contact too)."""
    defaults = {f"d_{name}": value for name, value in _customer_defaults().items()}
    values = ", ".join(_customer_value(name) for name in CUSTOMER_FIELDS)
    fields_json = ", ".join(f"'{name}', {_customer_value(name)}" for name in CUSTOMER_FIELDS)
    db.execute(
        text(
            f"""
            WITH created AS (
              INSERT INTO customers (company_id, {", ".join(CUSTOMER_FIELDS)}, link_version,
                                     created_at)
              SELECT :company_id, {values}, 1, :now FROM import_customers
              WHERE plain AND problem IS NULL ORDER BY line
              RETURNING id, {", ".join(CUSTOMER_FIELDS)}
            ), events AS (
              INSERT INTO timeline_events (company_id, customer_id, occurred_at, actor,
                                           actor_id, action, subject_type, subject_id, details)
              SELECT :company_id, id, :now, :actor, :actor_id, 'customer.created', 'customer',
                     CAST(id AS text),
                     json_build_object('fields', json_build_object({fields_json}),
                                       'source', CAST(:source AS text),
                                       'import_id', CAST(:import_id AS bigint))
              FROM created
            )
            UPDATE import_customers SET id = created.id FROM created
            WHERE import_customers.reference = created.reference
            """  # noqa: S608
        ),
        params | defaults,
    )
    for chunk in _unusual(raw, page):
        checked = [_validated(name, reference, email) for reference, name, email in chunk]
        ids = customers.create_customers(
            db, params["company_id"], checked, actor=actor, actor_id=actor_id, details=details
        )
        with raw.cursor() as cursor:
            cursor.executemany(
                "UPDATE import_customers SET id = %s WHERE reference = %s",
                [(new_id, reference) for reference, new_id in ids.items()],
            )


# --- decisions --------------------------------------------------------------------------------

# Rows found unchanged are only counted: a re-import of the same file keeps nothing here;
# those whose invoice does not keep their fingerprint yet ('stamp') are unchanged too.
PLAN = """
CREATE TEMP TABLE import_plan ON COMMIT DROP AS
SELECT * FROM (
SELECT t.line, t.number, t.customer_reference, t.issue_date, t.due_date, t.currency,
       t.amount_minor, t.outstanding_minor, t.digest, i.id AS invoice_id,
       CASE WHEN nc.reference IS NULL THEN c.id ELSE nc.id END AS customer_id,
       nc.problem,
       CASE
         WHEN row_number() OVER (PARTITION BY t.number ORDER BY t.line) > 1 THEN 'twice'
         WHEN nc.reference IS NULL AND c.id IS NULL THEN 'unknown'
         WHEN nc.reference IS NOT NULL AND t.line < nc.line THEN 'unknown'
         WHEN nc.problem IS NOT NULL THEN 'customer'
         WHEN i.id IS NULL THEN
           CASE WHEN t.due_date >= t.issue_date AND t.amount_minor > 0
                     AND t.currency = ANY(CAST(:currencies AS text[]))
                THEN 'new' ELSE 'invalid' END
         WHEN (CASE WHEN nc.reference IS NULL THEN c.id ELSE nc.id END) IS NULL
              OR (CASE WHEN nc.reference IS NULL THEN c.id ELSE nc.id END, t.issue_date,
                  t.due_date, t.currency, t.amount_minor)
                 IS DISTINCT FROM (i.customer_id, i.issue_date, i.due_date, i.currency,
                                   i.amount_minor)
           THEN 'changed'
         WHEN t.outstanding_minor = 0 AND i.status = 'open' THEN 'settle'
         WHEN i.import_digest IS DISTINCT FROM t.digest THEN 'stamp'
         ELSE 'unchanged'
       END AS decision
FROM import_invoices t
LEFT JOIN customers c ON c.company_id = :company_id AND c.reference = t.customer_reference
LEFT JOIN import_customers nc ON nc.reference = t.customer_reference
LEFT JOIN invoices i ON i.company_id = :company_id AND i.number = t.number
) AS decided WHERE decision <> 'unchanged'
"""


def plan(db: Session, params: dict[str, Any]) -> None:
    db.execute(text(PLAN), params)


def counts(db: Session) -> dict[str, int]:
    query = text("SELECT decision, count(*) FROM import_plan GROUP BY decision")
    found = {decision: int(number) for decision, number in db.execute(query).all()}
    stale = found.pop("stamp", 0)
    rows = int(db.execute(text("SELECT count(*) FROM import_invoices")).scalar_one())
    found["unchanged"] = rows - sum(found.values())
    assert stale <= found["unchanged"]
    return found


def rejections(db: Session, limit: int) -> list[Rejection]:
    """Rows rejected by the plan, the first ``limit`` by line."""
    rows = db.execute(
        text(
            "SELECT line, decision, number, customer_reference, problem FROM import_plan "
            "WHERE decision IN ('twice', 'unknown', 'customer') ORDER BY line LIMIT :limit"
        ),
        {"limit": limit},
    ).all()
    found = []
    for line, decision, number, reference, problem in rows:
        if decision == "twice":
            found.append(Rejection(line, ROW_TWICE, {"key": number}))
        elif decision == "unknown":
            found.append(Rejection(line, UNKNOWN_CUSTOMER, {"reference": reference}))
        else:
            found.append(Rejection(line, problem))
    return found


def count_decision(db: Session, decision: str) -> int:
    query = text("SELECT count(*) FROM import_plan WHERE decision = :decision")
    return int(db.execute(query, {"decision": decision}).scalar_one())


SAME_AMOUNT_AND_DATE = """
WITH fresh AS (
  SELECT line, number, customer_id, customer_reference, amount_minor, issue_date
  FROM import_plan WHERE decision = 'new'
), stored AS (
  SELECT f.line, min(i.number) AS other
  FROM fresh f JOIN invoices i ON i.customer_id = f.customer_id
   AND i.amount_minor = f.amount_minor AND i.issue_date = f.issue_date
  GROUP BY f.line
), repeated AS (
  SELECT customer_reference, amount_minor, issue_date, min(line) AS first
  FROM fresh GROUP BY customer_reference, amount_minor, issue_date HAVING count(*) > 1
)
SELECT count(*) OVER () AS total, f.line, f.number, coalesce(s.other, 'line ' || r.first)
FROM fresh f
LEFT JOIN stored s ON s.line = f.line
LEFT JOIN repeated r ON r.customer_reference = f.customer_reference
 AND r.amount_minor = f.amount_minor AND r.issue_date = f.issue_date AND f.line > r.first
WHERE s.other IS NOT NULL OR r.first IS NOT NULL
ORDER BY f.line LIMIT :limit
"""


def same_amount_and_date(db: Session, limit: int) -> tuple[int, list[dict[str, Any]]]:
    """New invoices with the customer, amount and issue date of a stored invoice (its
    number) or of an earlier line of the file: imported, flagged. Before they are written."""
    rows = db.execute(text(SAME_AMOUNT_AND_DATE), {"limit": limit}).all()
    warnings = [
        {"line": line, "message": SAME_AS, "values": {"number": number, "other": other}}
        for _total, line, number, other in rows
    ]
    return (int(rows[0][0]) if rows else 0), warnings


CREATE_INVOICES = """
WITH created AS (
  INSERT INTO invoices (company_id, customer_id, number, issue_date, due_date, currency,
                        amount_minor, paid_minor, status, created_at, import_digest)
  SELECT :company_id, customer_id, number, issue_date, due_date, currency, amount_minor, 0,
         'open', :now, digest
  FROM import_plan WHERE decision = 'new'
  RETURNING id, customer_id, number, issue_date, due_date, currency, amount_minor
)
INSERT INTO timeline_events (company_id, customer_id, occurred_at, actor, actor_id, action,
                             subject_type, subject_id, details)
SELECT :company_id, customer_id, :now, :actor, :actor_id, 'invoice.created', 'invoice',
       CAST(id AS text),
       json_build_object('number', number, 'amount_minor', amount_minor, 'currency', currency,
                         'issue_date', to_char(issue_date, 'YYYY-MM-DD'),
                         'due_date', to_char(due_date, 'YYYY-MM-DD'),
                         'source', CAST(:source AS text),
                         'import_id', CAST(:import_id AS bigint))
FROM created
"""


def create_invoices(db: Session, params: dict[str, Any]) -> None:
    db.execute(text(CREATE_INVOICES), params)


def missing_open_invoices(db: Session, company_id: int) -> list[int]:
    """Open invoices the file does not list (an anti-join on the numbers)."""
    query = text(
        "SELECT i.id FROM invoices i WHERE i.company_id = :company_id AND i.status = 'open' "
        "AND NOT EXISTS (SELECT 1 FROM import_invoices t WHERE t.number = i.number) "
        "ORDER BY i.id"
    )
    return [int(each) for each in db.execute(query, {"company_id": company_id}).scalars()]
