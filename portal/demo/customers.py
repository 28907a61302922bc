"""The demo's first ten customers, each with its own history (portfolio.py has the other six
and the seeding). Figures are fixed, so every demo and every test sees the same portfolio.

Invoices are listed by due date; ``due_in`` is days from today (negative: overdue). No
invoice falls due within a day of today, so "overdue" means the same in every timezone.
"""

from __future__ import annotations

from portal.customers.models import RiskSegment
from portal.demo.portfolio import DemoInvoice, Profile

FIRST_TEN = (
    Profile(
        "C-1001",
        "Boulangerie Martin SARL",
        "fr",
        "",
        "Europe/Paris",
        RiskSegment.LOW,
        "Claire Martin",
        "claire.martin@boulangerie-martin.example",
        # Paid the spring order early, then fell behind; part of the big order is paid.
        (
            DemoInvoice(-96, 74_380, 100, 4, pdf=True),
            DemoInvoice(-38, 61_215),
            DemoInvoice(-13, 187_240, 35, pdf=True),
            DemoInvoice(16, 23_990),
        ),
        phone="+33612345678",
    ),
    Profile(
        "C-1002",
        "Atelier Dubois",
        "fr",
        "",
        "Europe/Paris",
        RiskSegment.MEDIUM,
        "Julien Dubois",
        "julien@atelier-dubois.example",
        # Pays, but a couple of weeks late.
        (
            DemoInvoice(-58, 9_870, 100, -12),
            DemoInvoice(-31, 42_870),
            DemoInvoice(-4, 118_530),
            DemoInvoice(24, 15_640),
        ),
        phone="+33698765432",
    ),
    Profile(
        "C-1003",
        "Northwind Traders Ltd",
        "en",
        "",
        "Europe/London",
        RiskSegment.MEDIUM,
        "Amelia Hughes",
        "accounts@northwind.example",
        # A monthly account, paid on time for months; the latest one is late.
        (
            DemoInvoice(-131, 312_600, 100, 2),
            DemoInvoice(-102, 298_450, 100, 1),
            DemoInvoice(-71, 305_120, 100, 6),
            DemoInvoice(-44, 286_900, 100, 0),
            DemoInvoice(-15, 331_780, pdf=True),
            DemoInvoice(14, 279_350),
        ),
        phone="+447700900123",
        strategic=True,
    ),
    Profile(
        "C-1004",
        "Maple Leaf Supplies Inc.",
        "en",
        "",
        "America/Toronto",
        RiskSegment.LOW,
        "Liam Tremblay",
        "ap@mapleleaf.example",
        (
            DemoInvoice(-203, 14_300, 100, 9),
            DemoInvoice(-52, 57_340),
            DemoInvoice(9, 6_480),
        ),
        phone="+14165550142",
    ),
    Profile(
        "C-1005",
        "Transports Lefèvre",
        "fr",
        "",
        "Europe/Paris",
        RiskSegment.HIGH,
        "Sophie Lefèvre",
        "compta@transports-lefevre.example",
        # Half a year behind, one small payment on account.
        (
            DemoInvoice(-187, 452_900, pdf=True),
            DemoInvoice(-126, 238_410, 20),
            DemoInvoice(-63, 97_560),
        ),
        phone="+33611223344",
    ),
    Profile(
        "C-1006",
        "Café du Port",
        "fr",
        "",
        "America/Martinique",
        RiskSegment.MEDIUM,
        "Marc Joseph",
        "cafeduport@example.com",
        # Small deliveries every fortnight.
        (
            DemoInvoice(-24, 3_480),
            DemoInvoice(-6, 1_275),
            DemoInvoice(11, 2_190),
            DemoInvoice(25, 960),
        ),
        phone="+596696112233",
    ),
    Profile(
        "C-1007",
        "Harbour Logistics Pty",
        "en",
        "",
        "Australia/Sydney",
        RiskSegment.MEDIUM,
        "Olivia Chen",
        "finance@harbour-logistics.example",
        # One large shipment, just overdue.
        (DemoInvoice(-9, 1_463_250),),
        phone="+61491570156",
    ),
    Profile(
        "C-1008",
        "Pharmacie Girard",
        "fr",
        "",
        "Indian/Reunion",
        RiskSegment.LOW,
        "Nathalie Girard",
        "pharmacie.girard@example.org",
        (
            DemoInvoice(-44, 26_940, pdf=True),
            DemoInvoice(-17, 71_385, 60),
            DemoInvoice(3, 18_210),
            DemoInvoice(38, 44_600),
        ),
        phone="+262692001122",
    ),
    Profile(
        "C-1009",
        "Brightside Studio LLC",
        "en",
        "",
        "America/New_York",
        RiskSegment.HIGH,
        "Jordan Blake",
        "billing@brightside.example",
        # Has paid nothing for four months.
        (
            DemoInvoice(-112, 67_825),
            DemoInvoice(-81, 41_190),
            DemoInvoice(-50, 55_460, pdf=True),
            DemoInvoice(-20, 38_905),
        ),
        phone="+12125550199",
    ),
    Profile(
        "C-1010",
        "Menuiserie Roux",
        "fr",
        "",
        "Europe/Paris",
        RiskSegment.MEDIUM,
        "Paul Roux",
        "paul.roux@menuiserie-roux.example",
        # A new customer: nothing is due yet.
        (DemoInvoice(12, 213_700), DemoInvoice(47, 96_350)),
        phone="+33655443322",
        strategic=True,
    ),
)
