"""The demo's sample export: new customers and invoices as a French accounting package
exports its open items (``;``, Windows-1252, decimal comma, dd/mm/yyyy), in the shape of the
demo seed (references C-2001…, numbers F2026-2xxx, amounts of the seed's sizes). One row has a due
date before its issue date and one repeats another's customer, amount and date, so that the
preview shows a rejected row and a row flagged for review.

    python -m portal.demo.sample        # rewrites portal/demo/sample-export.csv
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

from portal.imports.export import ExportedInvoice, write_invoices_csv

SAMPLE_FILE = Path(__file__).with_name("sample-export.csv")
# The export's day: the invoices are due around it.
EXPORTED_ON = dt.date(2026, 12, 1)
NEW_CUSTOMERS = (
    ("C-2001", "Fromagerie Lefèvre & Fils"),
    ("C-2002", "Garage Rousseau SAS"),
    ("C-2003", "Hôtel du Parc"),
    ("C-2004", "Imprimerie Nouvelle"),
)
# Existing demo customers get new invoices too (the import finds them by reference).
EXISTING = (("C-1001", "Boulangerie Martin SARL"), ("C-1003", "Northwind Traders Ltd"))
PLAN = ((-20, 48_000), (5, 125_050), (35, 9_990))  # (due in days from EXPORTED_ON, amount)
# Each customer's size, as in the seed: amounts differ from one customer to the next.
SCALE = (1.0, 2.4, 0.45, 1.3, 0.7, 1.85)


def sample_invoices() -> list[ExportedInvoice]:
    rows = []
    for index, (reference, name) in enumerate((*NEW_CUSTOMERS, *EXISTING)):
        for position, (due_in, amount) in enumerate(PLAN):
            due = EXPORTED_ON + dt.timedelta(days=due_in - index)
            rows.append(
                ExportedInvoice(
                    reference,
                    name,
                    f"F2026-2{index + 1:01d}{position + 1:02d}",
                    due - dt.timedelta(days=30),
                    due,
                    int(round(amount * SCALE[index] * (1 + (index + position) % 5 / 23), -1)),
                )
            )
    first = rows[0]
    # An entry error: the due date typed before the issue date (rejected).
    rows.append(
        ExportedInvoice(
            first.customer_reference,
            first.customer_name,
            "F2026-2901",
            first.issue_date,
            first.issue_date - dt.timedelta(days=1),
            15_000,
        )
    )
    # The same customer, amount and date as the first invoice under another number (flagged).
    rows.append(
        ExportedInvoice(
            first.customer_reference,
            first.customer_name,
            "F2026-2902",
            first.issue_date,
            first.due_date,
            first.amount_minor,
        )
    )
    return rows


def sample_bytes() -> bytes:
    text = io.StringIO(newline="")
    write_invoices_csv(text, sample_invoices())
    return text.getvalue().encode("cp1252")


if __name__ == "__main__":
    SAMPLE_FILE.write_bytes(sample_bytes())
    print(f"wrote {SAMPLE_FILE}")
